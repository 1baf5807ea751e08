"""Imports run one way: commands -> flags -> library (nfi_tf, export). Read from the source
(every import statement, those inside functions too), so a lazy import cannot hide a cycle."""

import ast
import os

from helpers import REPO

PACKAGES = ("nfi_tf", "export", "flags")
# The command layer: the only modules that may import absl or `flags/` (docs/conventions.md, 1).
COMMANDS = {"nfi_tf.commands", "nfi_tf.commands.entry", "nfi_tf.commands.train",
            "nfi_tf.commands.evaluate", "nfi_tf.commands.generate", "nfi_tf.commands.theory",
            "export.to_onnx", "export.predict"}
# `python -m nfi_tf.train` and its siblings: they only hand over to nfi_tf.commands.
ENTRY_SHIMS = {"nfi_tf.train", "nfi_tf.evaluate", "nfi_tf.generate", "nfi_tf.theory.__main__"}


def _modules() -> dict[str, str]:
    found = {}
    for package in PACKAGES:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for f in files:
                if f.endswith(".py"):
                    path = os.path.join(folder, f)
                    name = os.path.relpath(path, REPO)[:-3].replace(os.sep, ".")
                    found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(name: str, path: str) -> set[str]:
    """Every module `name` imports: `from a import b` counts as a.b when that is a module."""
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in MODULES else base)
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_walk_sees_the_layers():
    assert COMMANDS | ENTRY_SHIMS <= set(MODULES)  # an allow-listed module renamed: update the lists
    assert "nfi_tf.training.run" in MODULES and "flags.train" in MODULES


def test_only_commands_import_absl_or_flags():
    offenders = {name: sorted(m for m in imported if _top(m) in ("absl", "flags"))
                 for name, imported in IMPORTS.items()
                 if not name.startswith("flags") and name not in COMMANDS}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_library_never_imports_commands_or_export():
    library = {n for n in MODULES if _top(n) == "nfi_tf" and n not in COMMANDS | ENTRY_SHIMS}
    offenders = {n: sorted(m for m in IMPORTS[n] if _top(m) == "export" or m in COMMANDS)
                 for n in library}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_flags_and_export_library_never_import_commands():
    lower = {n for n in MODULES if _top(n) in ("flags", "export") and n not in COMMANDS}
    offenders = {n: sorted(m for m in IMPORTS[n] if m in COMMANDS | ENTRY_SHIMS) for n in lower}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_entry_shims_only_hand_over_to_the_command_layer():
    for name in ENTRY_SHIMS:
        assert {m for m in IMPORTS[name] if m in MODULES} == {
            "nfi_tf.commands." + name.split(".")[1]}, name


def test_no_import_cycle():
    graph = {n: {m for m in IMPORTS[n] if m in MODULES} for n in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = path[path.index(nxt):] + [nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
