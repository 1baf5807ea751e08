"""The export precisions, registered once: what `--precision` accepts and what an export writes.

A precision is a `PrecisionSpec`: its name (what `--precision` takes), the file it writes, how
it is converted, how it is checked against the float32 model on real images (raising a one-line
`NfiError` when it fails), what it reports in `export_report.json`, and what it needs (real
training images, for int8 calibration). Exactly one precision is the *reference* (fp32): it is
converted from the serving tf.function and always written; every other one is converted from
the reference's ONNX file and checked against it. `export.exporter.export_model` reads this
registry and names no precision.

The built-ins (`export/precisions/__init__.py`) are `Precision` members, so JSON, flags and
`export_report.json` keep their strings; a precision registered later (a toy in a test, a
user's own) is its name, a plain string, and is accepted everywhere a member is.

Plain Python (no TensorFlow, ONNX or ONNX Runtime), so the export config imports it cheaply.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from nfi_tf.errors import NfiError
from nfi_tf.vocab import StrEnum


class Precision(StrEnum):
    """The built-in export precisions (registered in `export/precisions/__init__.py`)."""

    FP32 = "fp32"  # the reference: model.onnx, checked against Keras and the SavedModel
    FP16 = "fp16"  # model.fp16.onnx: float16 weights and compute
    INT8 = "int8"  # model.int8.onnx: static int8 backbone (--quantize)


class PrecisionReport(Protocol):
    """What a check returns: printed lines and its `export_report.json` section."""

    def lines(self) -> list[str]: ...

    def to_dict(self) -> dict: ...


# The job is an `export.precisions.job.ExportJob` (not imported: the job's config imports this
# registry).
Convert = Callable[[Any, str], None]  # (job, output path) -> writes the file there
Check = Callable[[Any, str], PrecisionReport]  # (job, written file) -> its report, or raise


@dataclasses.dataclass(frozen=True)
class PrecisionSpec:
    """One export precision. Empty `file`, `title`, `files_key` and `report_key` take the
    defaults made from the name (`model.<name>.onnx`, `<name> ONNX`, `<name>`, `<name>`)."""

    name: str
    convert: Convert  # the reference converts `job.serve`; the others `job.reference_path`
    check: Check
    file: str = ""  # in the export dir
    title: str = ""  # how the printed summary labels the file
    files_key: str = ""  # its entry under "files" in export_report.json
    report_key: str = ""  # the export_report.json section holding its check's report
    summary: str = ""  # one line for --precision's help
    # Why it needs real training images (the error says so when the dataset is missing);
    # None: test images suffice.
    training_images: str | None = None
    reference: bool = False

    def __post_init__(self) -> None:
        defaults = {"file": f"model.{self.name}.onnx", "title": f"{self.name} ONNX",
                    "files_key": self.name, "report_key": self.name}
        for attribute, default in defaults.items():
            if not getattr(self, attribute):
                object.__setattr__(self, attribute, default)


_SPECS: dict[str, PrecisionSpec] = {}
# export_report.json's sections and file entries that are no precision's (export.exporter)
RESERVED_KEYS = frozenset({"model_dir", "config", "metadata", "files", "images", "saved_model",
                           "trained_precision", "as_trained_parity", "versions", "seconds"})


def register(spec: PrecisionSpec) -> PrecisionSpec:
    """Add `spec` (after the ones already registered: exports convert and report in this
    order); its name, file and report keys must be new, and there is one reference."""
    name = str(spec.name)  # a Precision member's text, for the messages
    if not name or not str(name).replace("_", "").isalnum():
        raise NfiError(f"a precision name is letters, digits and '_'. Received: name={name!r}")
    if name in _SPECS:
        raise NfiError(f"precision {name!r} is already registered. Received: name={name!r}")
    for attribute in ("files_key", "report_key"):
        if getattr(spec, attribute) in RESERVED_KEYS:
            raise NfiError(f"precision {name!r}: {attribute} {getattr(spec, attribute)!r} is "
                           f"export_report.json's own. Received: {attribute}="
                           f"{getattr(spec, attribute)!r}")
    for attribute in ("file", "files_key", "report_key"):
        taken = {getattr(s, attribute): str(s.name) for s in _SPECS.values()}
        if getattr(spec, attribute) in taken:
            raise NfiError(f"precision {name!r}: {attribute} {getattr(spec, attribute)!r} is "
                           f"taken by precision {taken[getattr(spec, attribute)]!r}. Received: "
                           f"{attribute}={getattr(spec, attribute)!r}")
    if spec.reference and any(s.reference for s in _SPECS.values()):
        raise NfiError(f"precision {name!r}: there is already a reference precision "
                       f"({reference().name}). Received: reference=True")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    if _SPECS.pop(name, None) is None:
        raise NfiError(f"no registered precision {name!r}. Received: name={name!r}")


def get(name: str) -> PrecisionSpec:
    if name not in _SPECS:
        raise NfiError(f"precision must be one of {', '.join(_SPECS)}. Received: precision={name!r}")
    return _SPECS[name]


def names() -> tuple[str, ...]:
    return tuple(_SPECS)


def specs() -> tuple[PrecisionSpec, ...]:
    return tuple(_SPECS.values())


def reference() -> PrecisionSpec:
    found = [s for s in _SPECS.values() if s.reference]
    if not found:
        raise NfiError("no reference precision is registered (export.precisions registers fp32)")
    return found[0]


def resolve(precision: str | Iterable[Any], also: Iterable[str] = ()) -> tuple[str, ...]:
    """The precisions an export writes: those named in `precision` (a comma-separated string or
    names) and in `also`, the reference always, in registry order."""
    asked = precision.split(",") if isinstance(precision, str) else list(precision)
    wanted = {str(n).strip() for n in [*asked, *also]} - {""}
    unknown = sorted(wanted - set(_SPECS))
    if unknown:
        text = precision if isinstance(precision, str) else ",".join(map(str, precision))
        raise NfiError(f"precision must be one of {', '.join(_SPECS)}, or several of them "
                       f"comma-separated. Received: precision={text!r}")
    return tuple(s.name for s in _SPECS.values() if s.reference or s.name in wanted)
