"""`ExportResult`: what `export.exporter.export_model` wrote and what its checks found."""

from __future__ import annotations

import dataclasses

from export.parity import ParityReport
from export.precisions import registry as precision_registry
from export.precisions.registry import Precision, PrecisionReport, PrecisionSpec


@dataclasses.dataclass
class Produced:
    """One precision's file (committed) and its check's report."""

    spec: PrecisionSpec
    path: str
    report: PrecisionReport


@dataclasses.dataclass
class ExportResult:
    saved_model: str
    report: str  # export_report.json
    notes: list[str]
    produced: dict[str, Produced]  # precision name -> its file and report, the reference first
    # ONNX fp32 vs the Keras model under its training dtype policy (mixed precision only)
    as_trained: ParityReport | None = None
    trained_precision: str = "off"

    def file(self, precision: str) -> str | None:
        """The file written for `precision`, None when this export did not write it."""
        produced = self.produced.get(precision)
        return produced.path if produced else None

    def report_of(self, precision: str) -> PrecisionReport | None:
        produced = self.produced.get(precision)
        return produced.report if produced else None

    @property
    def onnx(self) -> str:
        return self.file(precision_registry.reference().name)

    @property
    def parity(self) -> ParityReport:
        return self.report_of(precision_registry.reference().name)

    # The built-in precisions' attributes from before the registry, for their callers.
    @property
    def int8(self) -> str | None:
        return self.file(Precision.INT8)

    @property
    def quantization(self) -> PrecisionReport | None:
        return self.report_of(Precision.INT8)

    @property
    def fp16(self) -> str | None:
        return self.file(Precision.FP16)

    @property
    def fp16_report(self) -> PrecisionReport | None:
        return self.report_of(Precision.FP16)

    def lines(self) -> list[str]:
        reference, *others = self.produced.values()
        out = [f"SavedModel: {self.saved_model}"]
        out += [f"{p.spec.title + ':':<11} {p.path}" for p in self.produced.values()]
        out += reference.report.lines()
        if self.as_trained:
            out.append(f"trained in {self.trained_precision}, exported as a float32 graph; "
                       f"against the model as trained:")
            out += self.as_trained.lines()[1:]
        for p in others:
            out += p.report.lines()
        return out + self.notes + [f"report:     {self.report}"]
