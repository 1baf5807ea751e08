"""Imports run one way: commands -> flags -> library (nfi_tf, export). Read from the source
(every import statement, those inside functions too), so a lazy import cannot hide a cycle."""

import ast
import os

from helpers import REPO

PACKAGES = ("nfi_tf", "export", "flags", "bench")
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
BENCH_MODULES = {n for n in MODULES if n.split(".")[0] == "bench"}


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
                 if not name.startswith("flags") and name not in COMMANDS | BENCH_MODULES}
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


# === Facts stated once (docs/conventions.md) ===

from nfi_tf import outputs as output_names  # noqa: E402

# Every output name, as outputs.py spells it: nowhere else may these strings be written.
OUTPUT_NAMES = {v for k, v in vars(output_names).items() if k.isupper() and isinstance(v, str)}
SUITE = ("apgd_ce", "apgd_t", "fab_t", "square")
LIBRARY = ("nfi_tf", "export", "flags", "bench")


def _library_files():
    for package in LIBRARY:
        for folder, _, files in os.walk(os.path.join(REPO, package)):
            for f in files:
                if f.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, f), REPO)


def _strings(path, skip_all=False):
    """Every string constant of a module that is not a docstring (nor, with `skip_all`, one of
    the public names listed in `__all__`), with its line."""
    tree = ast.parse(open(os.path.join(REPO, path)).read(), path)
    skip = _names_in_all(tree) if skip_all else set()
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
            and id(n) not in skip]


def test_the_walk_sees_the_output_names():
    assert {"routed", "tradeoff", "rob", "nr", "route", "routed_onnx"} <= OUTPUT_NAMES
    assert any(v == "tradeoff" for _, v in _strings("nfi_tf/outputs.py"))  # the scan does see them


# The same word meaning something else (not an output name).
HOMONYMS = {
    ("nfi_tf/evaluation/records.py", "adversarial"),  # eval.npz's array kind: the adversarial images
    ("nfi_tf/evaluation/keys.py", "route"),  # the route-aware attack family's registered name
}


def test_output_names_are_spelled_only_in_outputs_py():
    offenders = [f"{path}:{line} {value!r}" for path in _library_files() if path != "nfi_tf/outputs.py"
                 for line, value in _strings(path)
                 if value in OUTPUT_NAMES and (path, value) not in HOMONYMS]
    assert offenders == []


def test_autoattacks_suite_is_listed_only_in_the_registry():
    offenders = []
    for path in _library_files():
        if path.startswith(os.path.join("nfi_tf", "evaluation", "suite")):
            continue
        tree = ast.parse(open(os.path.join(REPO, path)).read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                names = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                if len(names & set(SUITE)) >= 2:
                    offenders.append(f"{path}:{node.lineno}")
    assert offenders == []


def test_library_code_never_patches_with_mock():
    offenders = sorted(n for n, imported in IMPORTS.items()
                       if any(m == "mock" or m.startswith(("unittest.mock", "mock.")) or m == "unittest"
                              for m in imported))
    assert offenders == []


# === Typed vocabularies (docs/conventions.md, 13): a member's text only where it is defined ===

from nfi_tf import vocab as _vocab  # noqa: E402
from nfi_tf.evaluation import vocab as _eval_vocab  # noqa: E402

VOCABULARIES = {
    _vocab.Method: "nfi_tf/vocab.py", _vocab.Norm: "nfi_tf/vocab.py",
    _eval_vocab.Column: "nfi_tf/evaluation/vocab.py", _eval_vocab.Switch: "nfi_tf/evaluation/vocab.py",
    _eval_vocab.WorstCaseMode: "nfi_tf/evaluation/vocab.py",
    _eval_vocab.RouteKind: "nfi_tf/evaluation/vocab.py",
}


def _precision_vocabulary():
    from export.precisions import registry
    from export.precisions.registry import Precision

    return {Precision: os.path.relpath(registry.__file__, REPO)}


def _vocabulary_members() -> dict[str, str]:
    """member text -> the file that defines it."""
    out = {}
    for kind, path in {**VOCABULARIES, **_precision_vocabulary()}.items():
        for member in kind:
            out[member.value] = path
    return out


# The same word meaning something else (not the vocabulary member), with why.
VOCABULARY_HOMONYMS = {
    ("nfi_tf/attacks/fab.py", "fab_t"),  # the attack core's own name: part of its random seeds
    ("nfi_tf/attacks/square.py", "square"),  # the attack core's own name: part of its random seeds
    ("nfi_tf/attacks/apgd.py", "apgd_ce"),  # the attack core's names of its losses: part of its seeds
    ("nfi_tf/attacks/apgd.py", "apgd_t"),
}


def _names_in_all(tree) -> set[int]:
    """ids of the string constants listing a module's public names (`__all__`)."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                out |= {id(n) for n in ast.walk(node.value) if isinstance(n, ast.Constant)}
    return out


def test_vocabulary_members_are_spelled_only_where_they_are_defined():
    members = _vocabulary_members()
    assert {"nfi", "trades", "linf", "l2", "worst_case", "clean", "fp16", "int8", "st"} <= set(members)
    offenders = []
    for path in _library_files():
        for line, value in _strings(path, skip_all=True):  # a name in __all__ is not the vocabulary
            if value in members and members[value] != path and (path, value) not in VOCABULARY_HOMONYMS:
                offenders.append(f"{path}:{line} {value!r}")
    assert offenders == []


# === Size and coupling (issue 34) ===

LONG_FUNCTION = 60


def test_no_function_is_longer_than_sixty_lines():
    long = []
    for package in ("nfi_tf", "export", "flags"):
        for name, path in MODULES.items():
            if name.split(".")[0] != package:
                continue
            for node in ast.walk(ast.parse(open(path).read(), path)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > LONG_FUNCTION:
                        where = os.path.relpath(path, REPO)
                        long.append(f"{where}:{node.lineno} {node.name} ({lines} lines)")
    assert long == []


def test_no_evaluation_module_imports_more_than_twelve_project_modules():
    heavy = {}
    for name in MODULES:
        if name.startswith("nfi_tf.evaluation"):
            project = {m for m in IMPORTS[name] if m in MODULES and m != name}
            if len(project) > 12:
                heavy[name] = sorted(project)
    assert heavy == {}


# Where text is cut in the evaluation, and why it is not an attack name parsed back into a key.
TEXT_CUTS = {
    "nfi_tf/evaluation/records.py",  # eval.npz's array names (kind|row|key): the file boundary
    "nfi_tf/evaluation/shard_records.py",  # a shard record's array names: the file boundary
    "nfi_tf/evaluation/config.py",  # --attacks' comma-separated list; the .onnx suffix of a path
    "nfi_tf/evaluation/subjects.py",  # a model file's suffix (.keras, .h5, .onnx)
}


def test_no_attack_name_is_cut_apart_in_the_evaluation():
    cuts = []
    for name, path in MODULES.items():
        rel = os.path.relpath(path, REPO)
        if not name.startswith("nfi_tf.evaluation") or rel in TEXT_CUTS:
            continue
        for node in ast.walk(ast.parse(open(path).read(), path)):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("split", "rsplit", "endswith", "startswith", "partition",
                                           "rpartition", "removesuffix", "removeprefix")):
                cuts.append(f"{rel}:{node.lineno} .{node.func.attr}()")
    assert cuts == []


def test_the_library_never_imports_bench_and_bench_is_in_the_walk():
    # bench/ is a tool layer above the library (its flags live in flags/, as every command's).
    assert any(n.startswith("bench.") for n in BENCH_MODULES)
    library = {n for n in MODULES if _top(n) in ("nfi_tf", "export")}
    offenders = {n: sorted(m for m in IMPORTS[n] if _top(m) == "bench") for n in library}
    assert {k: v for k, v in offenders.items() if v} == {}
