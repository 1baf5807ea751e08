"""Export beyond float32 training and float32 serving: models trained in mixed precision export
as float32 graphs (compared with the model as trained), `--precision=fp16` writes a float16
model ONNX Runtime runs, and a model dir exports without its dataset."""

import json
import os
import shutil

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import run_cli, tiny_mnist_config

from export import image_source, training_precision
from export.config import ExportConfig, SessionConfig
from export.exporter import ONNX_FILE, export_model
from export.precisions.fp16 import FILE as FP16_FILE
from export.precisions.fp16 import Fp16Error
from export.precisions.int8 import FILE as INT8_FILE
from export.serve import Predictor
from nfi_tf import data, serving_examples
from nfi_tf.errors import DataUnavailableError, NfiError

CPU_ONLY = SessionConfig(providers=("CPUExecutionProvider",))
_HALF_TYPES = {onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16}


def _train_briefly(model_dir, policy):
    """4 steps on 256 real MNIST images under `policy`, to the end (model.keras and the kept
    examples are written); the process-wide policy is restored afterwards."""
    from nfi_tf.training import train_and_evaluate

    config = tiny_mnist_config(
        "nfi", data={"train_examples": 256, "eval_examples": 64},
        attack={"num_steps": 2}, eval_attack={"num_steps": 2},
        train={"epochs": 1, "mixed_precision": policy})
    try:
        train_and_evaluate(config, model_dir, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return model_dir


@pytest.fixture(scope="module")
def bf16_dir(tmp_path_factory):
    return _train_briefly(str(tmp_path_factory.mktemp("bf16")), "mixed_bfloat16")


def _half_tensors(model):
    """Names of float16/bfloat16 initializers and Cast-to-half nodes in an ONNX graph."""
    inits = [t.name for t in model.graph.initializer if t.data_type in _HALF_TYPES]
    casts = [n.name for n in model.graph.node if n.op_type == "Cast"
             and any(a.name == "to" and a.i in _HALF_TYPES for a in n.attribute)]
    return inits + casts


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_precision_model_exports_a_float32_graph_compared_with_itself_as_trained(
        policy, bf16_dir, tmp_path_factory, tmp_path):
    model_dir = bf16_dir if policy == "mixed_bfloat16" else _train_briefly(
        str(tmp_path_factory.mktemp("fp16_trained")), policy)
    # The process still in the training policy (a notebook, a pipeline): the loaded model would
    # compute in half precision unless the export forces float32.
    keras.mixed_precision.set_global_policy(policy)
    try:
        result = export_model(ExportConfig(model_dir=model_dir, output_dir=str(tmp_path),
                                           parity_examples=128))
        assert keras.mixed_precision.global_policy().name == policy  # restored, not leaked
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert result.trained_precision == policy
    assert result.parity.ok and max(result.parity.max_abs_diff["onnx_runtime"].values()) <= 1e-4
    assert _half_tensors(onnx.load(result.onnx)) == []
    float32_model, as_trained = training_precision.load_for_export(
        os.path.join(model_dir, "model.keras"), policy)
    assert training_precision.compute_dtypes(float32_model) == {"float32"}
    assert {"float32", policy.split("_")[1]} == training_precision.compute_dtypes(as_trained)

    # The as-trained comparison measures a real half-precision difference (float32 against
    # float32 differs by ~1e-7 here; measured 1.9e-3 for bf16, 1.9e-4 for fp16), within tolerance.
    diffs = result.as_trained.max_abs_diff["onnx_runtime"]
    assert 1e-5 < diffs["routed"] and diffs["probabilities"] <= 0.05
    assert result.as_trained.route_agreement["onnx_runtime"] >= 0.95
    with open(result.report) as f:
        report = json.load(f)
    assert report["trained_precision"] == policy
    assert report["as_trained_parity"]["examples"] == 128
    assert any(line.startswith(f"trained in {policy}, exported as a float32 graph")
               for line in result.lines())


def test_fp16_model_runs_on_the_cpu_provider_with_stated_parity_and_accuracy(trained_mnist_dir,
                                                                            tmp_path,
                                                                            mnist_test_arrays):
    result = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=str(tmp_path),
                                       parity_examples=32, precision="fp16",
                                       quantization_eval_examples=500))
    assert result.fp16 == os.path.join(str(tmp_path), FP16_FILE)
    model = onnx.load(result.fp16)
    halves = [t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16]
    assert len(halves) >= 10  # the conv and dense weights
    assert [i.type.tensor_type.elem_type for i in model.graph.input] == [onnx.TensorProto.FLOAT]
    assert os.path.getsize(result.fp16) < 0.6 * os.path.getsize(result.onnx)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["precision"].startswith("fp16") and props["input_dtype"] == "float32"

    r = result.fp16_report
    assert r.examples == 500 and r.source == "the mnist test split"
    assert 0 < r.max_abs_diff["probabilities"] <= 1e-2  # really float16, and close
    assert abs(r.fp16_accuracy - r.fp32_accuracy) <= 0.01
    assert r.prediction_agreement >= 0.99 and r.route_agreement >= 0.98
    with open(result.report) as f:
        assert json.load(f)["fp16"]["fp16_accuracy"] == r.fp16_accuracy

    images, labels = mnist_test_arrays
    half = Predictor(result.fp16, CPU_ONLY)
    assert half.provider == "CPUExecutionProvider"
    full = Predictor(result.onnx, CPU_ONLY).predict(images)
    got = half.predict(images)
    np.testing.assert_allclose(got.probabilities, full.probabilities, atol=1e-2)
    assert np.mean(got.classes == full.classes) >= 0.99
    assert got.probabilities.dtype == np.float32  # float32 outputs kept
    np.testing.assert_array_equal(half.predict(images[:1]).classes, got.classes[:1])  # bound path

    # Exporting again without fp16 removes the now stale fp16 model.
    again = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=str(tmp_path),
                                      parity_examples=16))
    assert again.fp16 is None and not os.path.exists(result.fp16)
    assert any(f"removed the stale {FP16_FILE}" in n for n in again.notes)


def test_fp16_io_takes_float16_and_the_predictor_still_takes_float32_requests(trained_mnist_dir,
                                                                              tmp_path,
                                                                              mnist_test_arrays):
    result = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=str(tmp_path),
                                       parity_examples=16, precision="fp16", fp16_io=True,
                                       quantization_eval_examples=256))
    session = ort.InferenceSession(result.fp16, providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].type == "tensor(float16)"
    assert {o.name: o.type for o in session.get_outputs()}["routed"] == "tensor(float16)"
    predictor = Predictor(result.fp16, CPU_ONLY)
    images, labels = mnist_test_arrays
    out = predictor.run(images[:64])
    assert out["routed"].dtype == np.float16
    assert np.mean(np.argmax(out["routed"], -1) == labels[:64]) > 0.6
    assert result.fp16_report.prediction_agreement >= 0.99


def test_fp16_parity_failure_is_an_error_and_writes_nothing(trained_mnist_dir, tmp_path):
    out = str(tmp_path / "export")
    with pytest.raises(Fp16Error, match=r"fp16 parity failed: .* -> fp16 .*atol 1e-09"):
        export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out,
                                  parity_examples=16, precision="fp16", fp16_atol=1e-9,
                                  quantization_eval_examples=64))
    assert not os.path.exists(os.path.join(out, FP16_FILE))
    assert not os.path.exists(os.path.join(out, ONNX_FILE))


@pytest.mark.parametrize("kwargs, message", [
    ({"precision": "fp8"}, r"precision must be one of fp32, int8, fp16, or several of them "
                           r"comma-separated. Received: precision='fp8'"),
    ({"precision": "fp16,bf16"}, r"Received: precision='fp16,bf16'"),
    ({"fp16_io": True}, r"fp16_io needs precision=fp16"),
    ({"precision": "fp16", "fp16_atol": 0.0}, r"fp16_atol must be in \(0, 1\)"),
])
def test_bad_precision_settings_are_one_line_errors(kwargs, message):
    from export.config import validate_export

    with pytest.raises(NfiError, match=message):
        validate_export(ExportConfig(model_dir="x", **kwargs))


def test_precision_int8_is_what_quantize_asks_for_and_precisions_combine(trained_mnist_dir,
                                                                          tmp_path):
    config = lambda **kw: ExportConfig(model_dir="m", **kw)  # noqa: E731
    assert config(quantize=True).precisions == config(precision="int8").precisions == (
        "fp32", "int8")
    assert config(precision="fp16", quantize=True).precisions == config(
        precision="int8, fp16").precisions == ("fp32", "int8", "fp16")
    assert config().precisions == config(precision="fp32,fp32").precisions == ("fp32",)

    result = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=str(tmp_path),
                                       precision="fp16,int8", parity_examples=16,
                                       calibration_examples=64, quantization_eval_examples=128))
    assert result.int8 == os.path.join(str(tmp_path), INT8_FILE) and os.path.exists(result.int8)
    assert result.fp16 == os.path.join(str(tmp_path), FP16_FILE) and os.path.exists(result.fp16)
    with open(result.report) as f:
        report = json.load(f)
    assert report["files"]["int8"] == result.int8 and report["files"]["fp16"] == result.fp16
    assert report["quantization"]["calibration_examples"] == 64
    assert report["quantization"]["examples"] == report["fp16"]["examples"] == 128
    assert (report["config"]["precision"], report["config"]["quantize"]) == ("fp16,int8", False)
    lines = result.lines()  # int8 before fp16, as before the registry
    assert [line.split(":")[0] for line in lines[:4]] == ["SavedModel", "ONNX", "int8 ONNX",
                                                          "fp16 ONNX"]
    assert lines.index(result.quantization.lines()[0]) < lines.index(result.fp16_report.lines()[0])


@pytest.fixture
def no_dataset(monkeypatch, tmp_path):
    """tfds' default data dir pointed at an empty folder, and no download."""
    from tensorflow_datasets.core import constants

    empty = tmp_path / "no_tfds"
    empty.mkdir()
    monkeypatch.setattr(constants, "DATA_DIR", str(empty))
    monkeypatch.delenv("TFDS_DATA_DIR", raising=False)
    return str(empty)


def test_training_keeps_real_test_images_in_the_model_dir(bf16_dir, mnist_test_arrays):
    kept = serving_examples.load(bf16_dir)
    images, labels = mnist_test_arrays
    assert kept.images.dtype == np.uint8 and kept.images.shape == (256, 28, 28, 1)
    np.testing.assert_array_equal(data.uint8_to_float(kept.images), images)
    np.testing.assert_array_equal(kept.labels, labels)
    assert kept.info.class_names == tuple(str(i) for i in range(10))
    assert kept.info.image_shape == (28, 28, 1) and kept.info.test_size == 10000



def test_a_corrupt_or_inconsistent_kept_file_is_a_one_line_error(tmp_path):
    path = tmp_path / serving_examples.FILE
    path.write_bytes(b"not an npz")
    with pytest.raises(NfiError, match=r"serving_examples.npz is corrupt .*pass --data_dir") as info:
        serving_examples.load(str(tmp_path))
    assert "\n" not in str(info.value)
    info_json = np.array(json.dumps({"name": "mnist", "image_shape": [28, 28, 1],
                                     "num_classes": 10, "class_names": list("0123456789"),
                                     "train_size": 60000, "test_size": 10000}))
    with open(path, "wb") as f:  # float images where uint8 belong
        np.savez(f, images=np.zeros((2, 28, 28, 1), np.float32), labels=np.zeros(2), info=info_json)
    with pytest.raises(NfiError, match=r"does not hold uint8 \(28, 28, 1\) images .* "
                                       r"Received: images float32 \(2, 28, 28, 1\)"):
        serving_examples.load(str(tmp_path))
    assert serving_examples.load(str(tmp_path / "elsewhere")) is None

def test_export_without_the_dataset_uses_the_kept_images(bf16_dir, tmp_path, no_dataset):
    model_dir = str(tmp_path / "model")
    shutil.copytree(bf16_dir, model_dir)
    with pytest.raises(DataUnavailableError):  # the dataset really is absent
        data.load_info(tiny_mnist_config().data, download=False)

    result = export_model(ExportConfig(model_dir=model_dir, parity_examples=64,
                                       precision="fp16", quantization_eval_examples=1000),
                          download=False)
    assert result.parity.ok and result.parity.examples == 64
    assert result.fp16_report.examples == 256  # all the model dir keeps, said so
    assert result.fp16_report.source == "the model dir's serving_examples.npz"
    with open(result.report) as f:
        assert json.load(f)["images"] == "the model dir's serving_examples.npz"
    props = {p.key: p.value for p in onnx.load(result.onnx).metadata_props}
    assert json.loads(props["class_names"]) == [str(i) for i in range(10)]

    # int8 calibration needs training images: one line saying so, before anything is written.
    out = str(tmp_path / "int8")
    with pytest.raises(NfiError, match=r"^int8 calibration \(--quantize\) needs real mnist "
                                       r"training images .* pass --data_dir=") as info:
        export_model(ExportConfig(model_dir=model_dir, output_dir=out, quantize=True),
                     download=False)
    assert "\n" not in str(info.value) and not os.path.exists(out)

    # Without the kept images either: the dataset error, with both fixes named.
    os.remove(os.path.join(model_dir, serving_examples.FILE))
    with pytest.raises(DataUnavailableError, match="--data_dir.*serving_examples.npz"):
        export_model(ExportConfig(model_dir=model_dir, output_dir=out), download=False)


def test_data_dir_points_the_export_at_the_dataset(bf16_dir, no_dataset):
    real = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data",
                                         "tfds"))
    if not os.path.isdir(os.path.join(real, "mnist")):
        pytest.skip("the prepared MNIST is not beside the repository")
    cfg = tiny_mnist_config().data
    source = image_source.open_source(bf16_dir, cfg, real, download=False)
    assert source.description == "the mnist test split" and source.has_training_images
    assert source.training_images(8).shape == (8, 28, 28, 1)
    kept = image_source.open_source(bf16_dir, cfg, None, download=False)
    assert kept.description.endswith("serving_examples.npz") and not kept.has_training_images


@pytest.mark.large
def test_export_cli_without_the_dataset(bf16_dir, tmp_path):
    model_dir = str(tmp_path / "model")
    shutil.copytree(bf16_dir, model_dir)
    empty = tmp_path / "no_tfds"
    empty.mkdir()
    env = {**os.environ, "TFDS_DATA_DIR": str(empty)}
    out = str(tmp_path / "export")
    proc = run_cli("export.to_onnx", f"--model_dir={model_dir}", f"--output={out}",
                   "--parity_examples=32", "--precision=fp16", "--nodownload", env=env,
                   timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "fp16 on 256 real test images (the model dir's serving_examples.npz)" in proc.stdout
    assert os.path.exists(os.path.join(out, FP16_FILE))
    proc = run_cli("export.to_onnx", f"--model_dir={model_dir}", f"--output={out}",
                   "--quantize", "--nodownload", env=env, timeout=300)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("export.to_onnx:")]
    assert len(errors) == 1 and "int8 calibration (--quantize) needs real" in errors[0]
    assert not os.path.exists(os.path.join(out, INT8_FILE))


def test_the_serve_bench_puts_fp32_fp16_and_int8_side_by_side():
    from bench.serve_bench import precisions_side_by_side

    thr = "throughput_b256_images_per_s"
    row = lambda ms, ips: {"latency_b1_ms_median": ms, thr: ips}
    results = {"ort_fp32_predictor_default": row(0.2, 10000.0),
               "ort_fp16_predictor_default": row(0.4, 4000.0),
               "ort_int8_predictor_default": row(0.25, 20000.0)}
    table = precisions_side_by_side(
        results, {"fp32_accuracy": 0.9432, "int8_accuracy": 0.9426},
        {"fp32_accuracy": 0.9432, "fp16_accuracy": 0.9431}, thr)
    assert list(table) == ["fp32", "fp16", "int8"]
    assert table["fp16"]["latency_vs_fp32"] == pytest.approx(0.5)
    assert table["fp16"]["throughput_vs_fp32"] == pytest.approx(0.4)
    assert table["int8"]["throughput_vs_fp32"] == pytest.approx(2.0)
    assert [table[p]["accuracy"] for p in table] == [0.9432, 0.9431, 0.9426]
    # An export without fp16 (or int8) leaves that accuracy unknown, not made up.
    assert precisions_side_by_side(results, None, None, thr)["fp16"]["accuracy"] is None
    # A model whose fp16 graph failed its check is still compared in fp32 and int8.
    del results["ort_fp16_predictor_default"]
    assert list(precisions_side_by_side(results, None, None, thr)) == ["fp32", "int8"]


@pytest.mark.large
def test_export_cli_rejects_a_bad_precision_in_one_line(tmp_path):
    proc = run_cli("export.to_onnx", f"--model_dir={tmp_path}", "--precision=fp8", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "export.to_onnx: error: precision must be one of fp32, int8, fp16, or several of them "
        "comma-separated. Received: precision='fp8'")


def _served(tradeoff, rob, nr):
    """Served outputs and routing scores of a hand-made routed model: the route from the three
    argmaxes (`route_flips.route_of`, the rule of nfi_tf.models.heads.routes), heads offset from the
    trade-off logits."""
    from export.precisions import route_flips
    from nfi_tf import outputs

    t, r, n = (np.array(a, np.float32) for a in (tradeoff, rob, nr))
    route = route_flips.route_of(t, r, n)
    heads = {outputs.TRADEOFF: t, outputs.BENIGN: t + 1.0, outputs.ADVERSARIAL: t - 1.0}
    routed = np.stack([heads[outputs.ROUTE_NAMES[k]][i] for i, k in enumerate(route)])
    probs = np.exp(routed) / np.exp(routed).sum(1, keepdims=True)
    served = {**heads, outputs.ROUTED: routed, outputs.PROBABILITIES: probs,
              outputs.ROUTE: route.astype(np.int32)}
    return served, {outputs.TRADEOFF: t, outputs.ROB: r, outputs.NR: n}


def test_fp16_route_flip_judged_on_the_routing_scores_near_tie_passes_clear_fails():
    from export.precisions import fp16

    labels = np.array([0, 1])
    # Image 0 is routed benign in fp32 (all three argmaxes 0), but its nr scores are 4e-4 apart;
    # image 1 (class 1 everywhere) is far from any tie.
    t32 = [[3.0, 1.0, 0.0], [0.0, 3.0, 0.0]]
    r32 = [[2.0, 0.5, 0.0], [0.0, 2.0, 0.0]]
    n32 = [[1.0, 0.9996, 0.0], [0.0, 1.0, 0.0]]
    fp32, s32 = _served(t32, r32, n32)
    assert list(fp32["route"]) == [0, 0]
    # fp16 moves every score by <= 3e-4: image 1 shows that width with its route unchanged, and
    # image 0's nr argmax crosses over (route 0 -> 1, the adversarial head answers).
    t16 = [[3.0002, 1.0, 0.0], [0.0, 3.0003, 0.0]]
    r16 = [[2.0, 0.5, 0.0], [0.0, 2.0, -0.0003]]
    n16 = [[0.9998, 0.9999, 0.0], [0.0, 1.0, 0.0]]
    near, s16 = _served(t16, r16, n16)
    assert list(near["route"]) == [1, 0]

    report = fp16.compare(fp32, near, labels, atol=0.01, source="hand-made", scores=(s32, s16))
    assert report.ok and report.near_tie_route_flips == 1 and report.unexplained_route_flips == ()
    assert report.route_agreement == 0.5 and report.routing_scores == ("tradeoff", "rob", "nr")
    assert report.routing_score_change == pytest.approx(3e-4, abs=1e-6)  # image 1's change
    [flip] = report.route_flips
    assert flip["index"] == 0 and (flip["route_fp32"], flip["route_fp16"]) == (0, 1)
    assert flip["score"] == "nr" and flip["margin"] == pytest.approx(4e-4, abs=1e-6)
    assert report.max_abs_diff["probabilities"] < 1e-3  # judged on the agreeing image only
    assert report.to_dict()["route_flips"][0]["score"] == "nr"  # kept in the export report
    # The served outputs alone (the old check: tradeoff is the only routing score served) see
    # no argmax change behind this flip and cannot call it rounding.
    with pytest.raises(fp16.Fp16Error, match=r"0 flips on near-ties, 1 unexplained"):
        fp16.compare(fp32, near, labels, atol=0.01, source="hand-made")

    # The same flip with an nr margin of 0.5 (> 2 x 3e-4): a clear flip, a one-line error.
    n32_clear = [[1.0, 0.5, 0.0], [0.0, 1.0, 0.0]]
    fp32_clear, s32_clear = _served(t32, r32, n32_clear)
    n16_clear = [[0.4, 0.5, 0.0], [0.0, 1.0, 0.0]]
    clear, s16_clear = _served(t16, r16, n16_clear)
    with pytest.raises(fp16.Fp16Error) as err:
        fp16.compare(fp32_clear, clear, labels, atol=0.01, source="hand-made",
                     scores=(s32_clear, s16_clear))
    message = str(err.value)
    assert "\n" not in message and "0 flips on near-ties, 1 unexplained" in message
    assert "image 0 route 0->1 (nr margin 5.00e-01)" in message and "2 x 3.00e-04" in message


def test_fp16_route_flip_the_scores_do_not_reproduce_is_unexplained():
    from export.precisions import route_flips

    fp32, s32 = _served([[3.0, 1.0], [0.0, 3.0]], [[2.0, 0.0], [0.0, 2.0]],
                        [[1.0, 0.0], [0.0, 1.0]])
    half = {k: v.copy() for k, v in fp32.items()}
    half["route"] = np.array([2, 0], np.int32)  # flipped while every argmax kept its class
    judged = route_flips.judge_route_flips(s32, s32, fp32["route"], half["route"])
    assert judged.unexplained == (0,) and judged.near_ties == ()
    assert judged.flips[0]["score"] is None and not judged.flips[0]["scores_reproduce_routes"]


def test_fp16_check_graph_exposes_the_scores_the_route_reads(trained_mnist_dir, tmp_path,
                                                          mnist_test_arrays):
    """The check-only graphs give Keras' own tradeoff/rob/nr (fp32) and reproduce the served
    fp16 model's routes (fp16), while the served files keep their outputs."""
    from export.precisions import fp16, route_flips
    from nfi_tf import outputs

    result = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=str(tmp_path),
                                       parity_examples=32, precision="fp16",
                                       quantization_eval_examples=200))
    images, _ = mnist_test_arrays
    s32, s16 = fp16.routing_scores(result.onnx, images, 64, False,
                                   lambda path: Predictor(path, CPU_ONLY))
    classifier, _ = training_precision.load_for_export(
        os.path.join(trained_mnist_dir, "model.keras"), "off")
    keras_out = classifier(images, training=False)
    for name in outputs.ROUTING_EVIDENCE:
        np.testing.assert_allclose(s32[name], np.asarray(keras_out[name]), atol=1e-4)
        assert 0 < np.max(np.abs(s16[name] - s32[name])) < 0.05  # really float16
    served16 = Predictor(result.fp16, CPU_ONLY).run(images)
    evidence16, evidence32 = ([s[k] for k in outputs.ROUTING_EVIDENCE] for s in (s16, s32))
    np.testing.assert_array_equal(route_flips.route_of(*evidence16), served16[outputs.ROUTE])
    np.testing.assert_array_equal(route_flips.route_of(*evidence32),
                                  np.asarray(keras_out[outputs.ROUTE]))
    for path in (result.onnx, result.fp16):
        assert [o.name for o in onnx.load(path).graph.output if o.name.startswith(
            "routing_score")] == []
