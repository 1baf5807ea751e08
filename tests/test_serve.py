"""The ONNX Runtime predictor (provider fallback, request validation) and the predict CLI,
on a model exported from a briefly trained real-MNIST classifier."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from export.config import ExportConfig, SessionConfig
from export.exporter import export_model
from export.image_files import load_image
from export.serve import Predictor, RequestError
from nfi_tf.errors import NfiError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CPU_ONLY = SessionConfig(providers=("CPUExecutionProvider",))


@pytest.fixture(scope="module")
def onnx_path(trained_mnist_dir, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("serve_export"))
    return export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out,
                                     parity_examples=32)).onnx


@pytest.fixture(scope="module")
def predictor(onnx_path):
    return Predictor(onnx_path, CPU_ONLY)


def test_predictions_on_real_images_and_uint8_equals_float_over_255(predictor,
                                                                     mnist_test_arrays):
    images, labels = mnist_test_arrays
    as_uint8 = np.round(images * 255).astype(np.uint8)
    p_float, p_uint8 = predictor.predict(images), predictor.predict(as_uint8)
    np.testing.assert_array_equal(p_uint8.logits, p_float.logits)
    np.testing.assert_array_equal(p_uint8.routes, p_float.routes)
    assert np.mean(p_float.classes == labels) > 0.6
    np.testing.assert_allclose(p_float.probabilities.sum(-1), 1.0, atol=1e-5)
    assert p_float.class_name(0) == str(p_float.classes[0])
    assert p_float.route_name(0) in ("benign", "adversarial", "tradeoff")


@pytest.mark.parametrize("make, expected", [
    (lambda x: x[0], r"rank-4 NHWC batch \(N, 28, 28, 1\). Received: rank 3, shape \(28, 28, 1\)"),
    (lambda x: np.repeat(x[:2], 3, axis=-1), r"1 channel\(s\). Received: 3 channels"),
    (lambda x: x[:2, :27], r"must be 28x28 .* Received: shape \(2, 27, 28, 1\)"),
    (lambda x: np.where(np.arange(784).reshape(1, 28, 28, 1) == 5, np.nan, x[:1]),
     r"finite. Received: 1 NaN and 0 Inf values \(first at \(0, 0, 5, 0\)\)"),
    (lambda x: x[:2] * 255.0, r"\[0, 1\]. Received: values in \[0, 255\] \(0-255 pixels?"),
    (lambda x: x[:2] - 0.5, r"\[0, 1\]. Received: values in \[-0.5, 0.5\]"),
    (lambda x: (x[:2] * 255).astype(np.int64), r"uint8 .* or float .* Received: dtype int64"),
    (lambda x: x[:0], r"batch is empty"),
])
def test_bad_requests_are_rejected_with_a_message_naming_the_value(predictor, mnist_test_arrays,
                                                                   make, expected):
    with pytest.raises(RequestError, match=expected) as info:
        predictor.predict(make(mnist_test_arrays[0]))
    assert isinstance(info.value, ValueError) and isinstance(info.value, NfiError)
    assert "\n" not in str(info.value)


def test_cuda_first_falls_back_to_cpu_and_says_so(onnx_path, mnist_test_arrays, capsys):
    cfg = SessionConfig(providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    predictor = Predictor(onnx_path, cfg)
    if "CUDAExecutionProvider" in predictor.providers:
        pytest.skip("this machine has a usable GPU: nothing falls back")
    assert predictor.provider == "CPUExecutionProvider"
    assert predictor.providers == ["CPUExecutionProvider"]
    assert any("CUDAExecutionProvider unavailable here" in n for n in predictor.provider_notes)
    assert "on CPUExecutionProvider" in predictor.describe()
    assert "EP Error" not in capsys.readouterr().out  # ORT's fallback dump is kept off stdout
    assert predictor.predict(mnist_test_arrays[0][:4]).classes.shape == (4,)


def test_an_unknown_provider_is_noted_and_cpu_used(onnx_path):
    predictor = Predictor(onnx_path, SessionConfig(providers=("NoSuchExecutionProvider",)))
    assert predictor.provider == "CPUExecutionProvider"
    assert predictor.provider_notes == ["NoSuchExecutionProvider is not in this onnxruntime build"]


def test_the_default_session_runs_one_thread_per_physical_core(predictor, monkeypatch):
    import onnxruntime as ort
    import psutil

    from export import serve

    # What the open session reports back (`predictor` asks for nothing but the CPU provider).
    physical = psutil.cpu_count(logical=False) or os.cpu_count()
    if len(os.sched_getaffinity(0)) < physical:
        pytest.skip("this process may run on fewer CPUs than the machine has physical cores")
    opts = predictor.session.get_session_options()
    assert opts.intra_op_num_threads == physical == predictor.session_config.intra_op_threads
    assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert opts.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "1"

    # A machine of 4 cores with 2 hyperthreads each: 4 threads, not 8.
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8 if logical else 4)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert serve.session_options(SessionConfig()).intra_op_num_threads == 4
    # psutil cannot tell the physical count: os.cpu_count().
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8 if logical else None)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert serve.physical_cores() == 6
    # Pinned to 2 CPUs (taskset): 2. An explicit count is kept as given.
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert serve.session_options(SessionConfig()).intra_op_num_threads == 2
    assert serve.session_options(SessionConfig(intra_op_threads=3)).intra_op_num_threads == 3


def test_single_images_run_through_a_reused_io_binding_with_the_same_results(predictor,
                                                                            mnist_test_arrays):
    import threading

    images = mnist_test_arrays[0]
    assert predictor.binds_single_images  # the default: no setting asked for it
    session, name = predictor.session, predictor.input_name
    names = tuple(predictor.output_names)
    expected = [dict(zip(names, session.run(list(names), {name: images[i:i + 1]}))) for i in range(3)]
    # The first call of an output set learns the shapes through session.run, later ones are bound.
    results = [predictor.run(images[i:i + 1]) for i in range(3)]
    assert len(predictor._bindings.__dict__) == 1
    for got, want in zip(results, expected):  # each result its own copy, not the reused buffer
        for key in names:
            np.testing.assert_array_equal(got[key], want[key])
            assert got[key].dtype == want[key].dtype
    subset = predictor.run(images[3:4], outputs=("route",))
    assert set(subset) == {"route"} and len(predictor._bindings.__dict__) == 2
    # Another thread gets its own binding (a binding's buffers are not shared across threads).
    other = {}
    thread = threading.Thread(target=lambda: other.update(predictor.run(images[:1])))
    thread.start()
    thread.join()
    np.testing.assert_array_equal(other["routed"], expected[0]["routed"])
    assert len(predictor._bindings.__dict__) == 2
    # Batches never bind; without the setting single images do not either.
    np.testing.assert_array_equal(predictor.run(images[:3])["routed"],
                                  np.concatenate([e["routed"] for e in expected]))
    unbound = Predictor(predictor.model_path, SessionConfig(providers=("CPUExecutionProvider",),
                                                            io_binding_batch1=False))
    np.testing.assert_array_equal(unbound.run(images[:1])["routed"], expected[0]["routed"])
    assert not unbound.binds_single_images and not unbound._bindings.__dict__


def test_a_file_that_is_not_a_model_is_a_one_line_error(tmp_path):
    bogus = tmp_path / "model.onnx"
    bogus.write_bytes(b"not a protobuf")
    with pytest.raises(NfiError, match="ONNX Runtime cannot open .*model.onnx"):
        Predictor(str(bogus), CPU_ONLY)
    with pytest.raises(NfiError, match="no ONNX model at"):
        Predictor(str(tmp_path / "missing.onnx"), CPU_ONLY)


def _confident_example(predictor, images, labels):
    p = predictor.predict(images)
    ok = np.flatnonzero((p.classes == labels) & (p.probabilities.max(-1) > 0.9))
    assert ok.size, "no confidently correct test image"
    return int(ok[0])


@pytest.mark.large
def test_predict_cli_prints_the_class_of_real_png_and_jpeg_files(onnx_path, predictor,
                                                                 mnist_test_arrays, tmp_path):
    images, labels = mnist_test_arrays
    i = _confident_example(predictor, images, labels)
    pixels = np.round(images[i, :, :, 0] * 255).astype(np.uint8)
    gray, rgb = str(tmp_path / "digit.png"), str(tmp_path / "digit_rgb.jpg")
    Image.fromarray(pixels).save(gray)
    Image.fromarray(np.stack([pixels] * 3, -1)).save(rgb, quality=98)
    cmd = [sys.executable, "-m", "export.predict", f"--model={onnx_path}", "--top_k=2", gray, rgb]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{gray}: class {labels[i]}  route ")
    assert lines[1].startswith(f"{rgb}: class {labels[i]}  route ")  # RGB -> grayscale
    assert "top-2: " in lines[0] and "CPUExecutionProvider" in proc.stderr

    big = str(tmp_path / "big.png")
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(big)
    proc = subprocess.run(cmd[:4] + [big], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        f"export.predict: error: {big} is 32x32 pixels; the model takes 28x28. "
        f"Pass --resize to resize it")


def test_load_image_converts_and_resizes_only_when_asked(tmp_path):
    path = str(tmp_path / "rgb.png")
    Image.fromarray(np.full((32, 30, 3), 200, np.uint8)).save(path)
    resized = load_image(path, (28, 28, 1), resize=True)
    assert resized.shape == (28, 28, 1) and resized.dtype == np.uint8 and resized[0, 0, 0] == 200
    with pytest.raises(NfiError, match="is 30x32 pixels"):
        load_image(path, (28, 28, 1))
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(NfiError, match="not a readable image"):
        load_image(str(text), (28, 28, 1))
