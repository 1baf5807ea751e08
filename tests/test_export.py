"""Export of a briefly trained real-MNIST model: SavedModel + ONNX parity, graph shape,
metadata, int8, atomicity under injected failures, and the export CLI's failure exit."""

import json
import os

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from helpers import run_cli

import nfi_tf
from export import onnx_export
from export.config import ExportConfig
from export.exporter import ONNX_FILE, SAVED_MODEL_DIR, export_model
from export.parity import ParityError
from export.precisions.int8 import FILE as INT8_FILE
from export.saved_model import METADATA_FILE, LoadedSavedModel
from nfi_tf.model_io import load_classifier

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NFI_OUTPUTS = {"routed", "route", "probabilities", "tradeoff", "benign", "adversarial"}


@pytest.fixture(scope="module")
def exported(trained_mnist_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("export"))
    config = ExportConfig(model_dir=trained_mnist_dir, output_dir=out, quantize=True,
                          parity_examples=128, calibration_examples=256,
                          quantization_eval_examples=500)
    return export_model(config)


def _cpu_session(path):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _ort_run(session, images):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"image": images})))


def test_keras_savedmodel_and_onnx_agree_on_real_test_images(exported, trained_mnist_dir,
                                                             mnist_test_arrays):
    images, _ = mnist_test_arrays  # 256 real images, not the 128 the export checked
    keras_out = load_classifier(os.path.join(trained_mnist_dir, "model.keras"))(
        images, training=False)
    keras_out = {k: np.asarray(v) for k, v in keras_out.items()}
    saved = LoadedSavedModel(exported.saved_model)(images)
    onnx_out = _ort_run(_cpu_session(exported.onnx), images)
    assert set(saved) == set(onnx_out) == NFI_OUTPUTS
    for name in NFI_OUTPUTS - {"route"}:
        np.testing.assert_allclose(saved[name], keras_out[name], atol=1e-4, rtol=0, err_msg=name)
        np.testing.assert_allclose(onnx_out[name], keras_out[name], atol=1e-4, rtol=0,
                                   err_msg=name)
    np.testing.assert_array_equal(saved["route"], keras_out["route"])
    np.testing.assert_array_equal(onnx_out["route"], keras_out["route"])
    assert len(np.unique(keras_out["route"])) >= 2  # the route comparison is not vacuous
    # The export's own report says the same.
    report = exported.parity
    assert report.ok and report.examples == 128
    assert set(report.route_agreement.values()) == {1.0}
    assert max(report.max_abs_diff["onnx_runtime"].values()) <= 1e-4


def test_onnx_graph_has_named_outputs_int32_route_and_a_dynamic_batch(exported,
                                                                      mnist_test_arrays):
    model = onnx.load(exported.onnx)
    (inp,) = model.graph.input
    dims = inp.type.tensor_type.shape.dim
    assert inp.name == "image" and inp.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [28, 28, 1]
    outputs = {o.name: o.type.tensor_type.elem_type for o in model.graph.output}
    assert set(outputs) == NFI_OUTPUTS
    assert outputs["route"] == onnx.TensorProto.INT32
    session = _cpu_session(exported.onnx)
    images, _ = mnist_test_arrays
    one, batch = _ort_run(session, images[:1]), _ort_run(session, images[:37])
    assert one["routed"].shape == (1, 10) and batch["routed"].shape == (37, 10)
    assert one["route"].shape == (1,) and batch["route"].dtype == np.int32
    np.testing.assert_allclose(one["routed"][0], batch["routed"][0], atol=1e-5)
    assert one["route"][0] == batch["route"][0]


def test_metadata_describes_the_model(exported):
    props = {p.key: p.value for p in onnx.load(exported.onnx).metadata_props}
    assert props["dataset"] == "mnist"
    assert json.loads(props["class_names"]) == [str(i) for i in range(10)]
    assert json.loads(props["input_shape"]) == [None, 28, 28, 1]
    assert json.loads(props["input_range"]) == [0.0, 1.0]
    assert props["input_layout"] == "NHWC" and props["input_dtype"] == "float32"
    assert float(props["train_epsilon"]) == 0.3
    assert props["method"] == "nfi" and props["nfi_tf_version"] == nfi_tf.__version__
    assert json.loads(props["route_names"]) == ["benign", "adversarial", "tradeoff"]
    with open(os.path.join(exported.saved_model, METADATA_FILE)) as f:
        assert json.load(f) == props
    int8_props = {p.key: p.value for p in onnx.load(exported.int8).metadata_props}
    assert "int8" in int8_props.pop("quantization") and int8_props == props


def test_saved_model_serving_signature(exported):
    fn = tf.saved_model.load(exported.saved_model).signatures["serving_default"]
    (spec,) = fn.structured_input_signature[1].values()
    assert spec.name == "image" and spec.dtype == tf.float32
    assert spec.shape.as_list() == [None, 28, 28, 1]
    assert set(fn.structured_outputs) == NFI_OUTPUTS
    assert fn.structured_outputs["route"].dtype == tf.int32


def test_int8_model_is_smaller_and_close_in_accuracy(exported):
    q = exported.quantization
    assert q.examples == 500 and q.calibration_examples == 256
    assert q.fp32_accuracy > 0.6  # the briefly trained model does learn
    assert abs(q.int8_accuracy - q.fp32_accuracy) < 0.03
    assert q.prediction_agreement > 0.95 and q.route_agreement > 0.9
    assert os.path.getsize(exported.int8) < 0.5 * os.path.getsize(exported.onnx)
    int8_ops = {n.op_type for n in onnx.load(exported.int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= int8_ops


def test_signbit_rewrite_keeps_the_keras_argmax_tie_rule():
    # Keras' argmax prefers +0.0 over an earlier -0.0; plain ONNX ArgMax would take index 0.
    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def fn(x):
        return {"y": keras.ops.argmax(x, axis=-1)}

    x = np.array([[-0.0, 0.0, -1.0], [0.0, -0.0, -1.0], [-1.0, -0.0, 0.0], [1.0, 3.0, 2.0]],
                 np.float32)
    expected = fn(x)["y"].numpy()
    np.testing.assert_array_equal(expected, [1, 0, 2, 1])
    model = onnx_export.convert(fn, opset=17)
    (got,) = _cpu_session(model.SerializeToString()).run(["y"], {"x": x})
    np.testing.assert_array_equal(got, expected)


def _snapshot(directory):
    files = {}
    for root, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, directory)] = f.read()
    return files


def test_failed_exports_leave_the_previous_export_byte_identical(trained_mnist_dir, tmp_path,
                                                                 monkeypatch):
    out = str(tmp_path / "export")
    config = ExportConfig(model_dir=trained_mnist_dir, output_dir=out, parity_examples=16)
    export_model(config)
    before = _snapshot(out)
    assert ONNX_FILE in before and f"{SAVED_MODEL_DIR}/saved_model.pb" in before

    # A parity mismatch (an impossible tolerance): refused, nothing replaced.
    strict = ExportConfig(model_dir=trained_mnist_dir, output_dir=out, parity_examples=16,
                          atol=1e-12)
    with pytest.raises(ParityError, match="onnx_runtime outputs differ beyond atol 1e-12"):
        export_model(strict)
    assert _snapshot(out) == before

    # A crash inside the ONNX conversion, after the SavedModel was written aside.
    def broken(*args, **kwargs):
        raise RuntimeError("injected conversion failure")

    monkeypatch.setattr(onnx_export, "convert", broken)
    with pytest.raises(RuntimeError, match="injected"):
        export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out, quantize=True,
                                  parity_examples=16))
    assert _snapshot(out) == before  # no temporaries, no int8, same bytes
    assert not os.path.exists(os.path.join(out, INT8_FILE))


@pytest.mark.large
def test_export_cli_fails_with_one_line_and_exit_2_on_a_parity_mismatch(trained_mnist_dir,
                                                                        tmp_path):
    out = str(tmp_path / "export")
    proc = run_cli("export.to_onnx", f"--model_dir={trained_mnist_dir}", f"--output={out}",
                   "--parity_examples=16", "--atol=1e-12", timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("export.to_onnx:")]
    assert len(errors) == 1 and "export parity failed" in errors[0], proc.stderr[-2000:]
    assert "routes identical" in errors[0]  # the figures travel with the error
    assert not os.path.exists(os.path.join(out, ONNX_FILE))


def test_trades_baseline_exports_one_head_with_every_route_tradeoff(trained_mnist_trades_dir,
                                                                    tmp_path, mnist_test_arrays):
    result = export_model(ExportConfig(model_dir=trained_mnist_trades_dir,
                                       output_dir=str(tmp_path), parity_examples=32))
    session = _cpu_session(result.onnx)
    out = _ort_run(session, mnist_test_arrays[0][:64])
    assert set(out) == {"routed", "route", "probabilities", "tradeoff"}
    assert (out["route"] == 2).all()
    np.testing.assert_array_equal(out["routed"], out["tradeoff"])
