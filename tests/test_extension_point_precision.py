"""An export precision is one module's worth of code and one registration line: a toy precision
defined in this file only (float32 weights rounded to bfloat16's 8 mantissa bits), registered
with one line, is converted, checked, written, served and reported by the unchanged
`export_model`, accepted by `--precision`, and refused when its check fails."""

import dataclasses
import json
import os

import numpy as np
import onnx
import pytest
from absl import flags
from onnx import numpy_helper

from export import precisions
from export.config import ExportConfig, SessionConfig
from export.exporter import ONNX_FILE, export_model
from export.precisions import Precision
from export.serve import Predictor
from flags import export as export_flags
from nfi_tf import outputs
from nfi_tf.errors import NfiError

CPU_ONLY = SessionConfig(providers=("CPUExecutionProvider",))

# === The toy precision ===

TOY = "bf16_weights"
TOLERANCE = {"probabilities": 0.02}  # its check's bound (bfloat16 rounds at 2^-9 relative)


def round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16-representable float32 (ties to even)."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).reshape(values.shape)


def convert(job, out_path):
    model = onnx.load(job.reference_path)  # the fp32 graph, metadata included
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(
                round_to_bfloat16(numpy_helper.to_array(tensor)), tensor.name))
    onnx.save_model(model, out_path)


@dataclasses.dataclass
class ToyReport:
    examples: int
    max_abs_diff: float  # of probabilities, against fp32
    same_class: float

    def lines(self):
        return [f"{TOY} on {self.examples} real test images: max abs diff of probabilities "
                f"{self.max_abs_diff:.2e}, same class {100 * self.same_class:.2f}%"]

    def to_dict(self):
        return dataclasses.asdict(self)


def check(job, path):
    fp32, toy = job.reference_test_outputs(), job.test_outputs(path)
    p32, p = fp32[outputs.PROBABILITIES], toy[outputs.PROBABILITIES]
    report = ToyReport(examples=len(p), max_abs_diff=float(np.max(np.abs(p - p32))),
                       same_class=float(np.mean(np.argmax(p, -1) == np.argmax(p32, -1))))
    if report.max_abs_diff > TOLERANCE["probabilities"]:
        raise NfiError(f"{TOY} check failed: probabilities differ from fp32 beyond "
                       f"{TOLERANCE['probabilities']:g}. Received: {report.max_abs_diff:.2e}")
    return report


SPEC = precisions.PrecisionSpec(name=TOY, convert=convert, check=check,
                                summary="float32 weights rounded to bfloat16")


@pytest.fixture
def toy():
    precisions.register(SPEC)  # the one line that adds a precision
    yield SPEC
    precisions.unregister(TOY)


# === The proof ===

def test_the_toy_precision_is_exported_checked_served_and_reported(toy, trained_mnist_dir,
                                                                  tmp_path, mnist_test_arrays):
    out = str(tmp_path)
    result = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out, precision=TOY,
                                       parity_examples=32, quantization_eval_examples=256))
    path = os.path.join(out, "model.bf16_weights.onnx")
    assert result.file(TOY) == path and os.path.exists(path)
    assert result.onnx == os.path.join(out, ONNX_FILE) and result.parity.ok
    assert result.fp16 is None and result.int8 is None
    # Really converted: every float weight is bfloat16-representable, and many moved.
    fp32_weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(result.onnx).graph.initializer
                    if t.data_type == onnx.TensorProto.FLOAT}
    toy_weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer
                   if t.data_type == onnx.TensorProto.FLOAT}
    assert toy_weights.keys() == fp32_weights.keys()
    assert all((w.view(np.uint32) & 0xFFFF == 0).all() for w in toy_weights.values())
    assert sum(not np.array_equal(toy_weights[k], fp32_weights[k]) for k in fp32_weights) >= 4

    # ONNX Runtime serves it, close to fp32 on real images it was not checked on.
    images, _ = mnist_test_arrays
    got, full = Predictor(path, CPU_ONLY).predict(images), Predictor(result.onnx, CPU_ONLY).predict(images)
    assert np.mean(got.classes == full.classes) >= 0.98
    np.testing.assert_allclose(got.probabilities, full.probabilities, atol=TOLERANCE["probabilities"])

    report = result.report_of(TOY)
    assert report.examples == 256 and 0 < report.max_abs_diff <= TOLERANCE["probabilities"]
    with open(result.report) as f:
        written = json.load(f)
    assert written["files"][TOY] == path and written[TOY] == report.to_dict()
    assert written["config"]["precision"] == TOY
    assert written["files"]["fp16"] is None and written["quantization"] is None  # built-ins kept
    assert written["parity"]["examples"] == 32
    lines = result.lines()
    assert f"bf16_weights ONNX: {path}" in lines and report.lines()[0] in lines

    # An export without it removes the now stale file, and says how to ask for it.
    again = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out,
                                      parity_examples=16))
    assert again.file(TOY) is None and not os.path.exists(path)
    assert f"removed the stale model.bf16_weights.onnx of an earlier export (use --precision={TOY})" \
        in again.notes


def test_a_failing_check_is_a_one_line_error_and_writes_nothing(toy, trained_mnist_dir, tmp_path,
                                                                monkeypatch):
    monkeypatch.setitem(TOLERANCE, "probabilities", 1e-9)
    out = str(tmp_path / "export")
    with pytest.raises(NfiError, match=rf"^{TOY} check failed: .* Received: \d") as info:
        export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out, precision=TOY,
                                  parity_examples=16, quantization_eval_examples=64))
    assert "\n" not in str(info.value)
    assert not os.path.exists(os.path.join(out, "model.bf16_weights.onnx"))
    assert not os.path.exists(os.path.join(out, ONNX_FILE))  # nothing committed


def test_precision_flag_takes_the_registered_name_beside_the_built_ins(toy):
    values = flags.FlagValues()
    export_flags.define_export_flags(flag_values=values)
    values(["prog", "--model_dir=m", f"--precision=fp16,{TOY}", "--quantize"])
    config = export_flags.export_config_from_flags(values)
    assert config.precisions == (Precision.FP32, Precision.INT8, Precision.FP16, TOY)
    precisions.unregister(TOY)
    with pytest.raises(NfiError, match=rf"precision must be one of fp32, int8, fp16, or several .* "
                                       rf"Received: precision='fp16,{TOY}'"):
        export_flags.export_config_from_flags(values)
    precisions.register(SPEC)  # for the fixture's teardown


@pytest.mark.parametrize("fields, message", [
    ({"name": TOY}, "precision 'bf16_weights' is already registered"),
    ({"file": "model.onnx"}, "file 'model.onnx' is taken by precision 'fp32'"),
    ({"report_key": "config"}, "report_key 'config' is export_report.json's own"),
    ({"reference": True}, r"there is already a reference precision \(fp32\)"),
    ({"name": "bf16,fp8"}, "a precision name is letters, digits and '_'"),
])
def test_registration_refuses_a_clash_in_one_line(toy, fields, message):
    spec = precisions.PrecisionSpec(**{"name": "other", "convert": convert, "check": check, **fields})
    with pytest.raises(NfiError, match=message):
        precisions.register(spec)
    assert precisions.names() == (Precision.FP32, Precision.INT8, Precision.FP16, TOY)
