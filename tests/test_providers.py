"""Execution providers with options: parsing (and one-line errors), TensorRT batch profiles, the
GPU-fallback report, and the device IO binding path, on a tiny hand-built ONNX model (CPU)."""

import logging

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import run_cli
from onnx import TensorProto, helper

from export import providers, serve
from export.config import DEFAULT_PROVIDERS, SessionConfig, validate_session
from export.providers import CPU, CUDA, TENSORRT, ProviderSpec
from export.serve import Predictor
from flags import export as export_flags
from nfi_tf.errors import NfiError

_HAS_CUDA = CUDA in ort.get_available_providers()


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """image (N, 4, 4, 1) -> routed = flatten @ W (3 classes), route = argmax, probabilities."""
    w = np.arange(48, dtype=np.float32).reshape(16, 3) / 48 - 0.5
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"]),
        helper.make_node("MatMul", ["flat", "W"], ["routed"]),
        helper.make_node("ArgMax", ["routed"], ["argmax"], axis=1, keepdims=0),
        helper.make_node("Cast", ["argmax"], ["route"], to=TensorProto.INT32),
        helper.make_node("Softmax", ["routed"], ["probabilities"], axis=-1),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                      ["batch", 4, 4, 1])],
        [helper.make_tensor_value_info("routed", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("route", TensorProto.INT32, ["batch"]),
         helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor("W", TensorProto.FLOAT, [16, 3], w.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path = str(tmp_path_factory.mktemp("tiny") / "tiny.onnx")
    onnx.save(model, path)
    return path, w


def _images(n):
    return np.random.default_rng(0).random((n, 4, 4, 1), dtype=np.float32)


def test_provider_strings_with_options_parse():
    spec = providers.parse("CUDAExecutionProvider:device_id=1,cudnn_conv_algo_search=HEURISTIC")
    assert spec == ProviderSpec(CUDA, (("device_id", "1"), ("cudnn_conv_algo_search", "HEURISTIC")))
    assert spec.is_gpu and str(spec) == "CUDAExecutionProvider:device_id=1,cudnn_conv_algo_search=HEURISTIC"
    trt = providers.parse("TensorrtExecutionProvider:trt_fp16_enable=true,"
                          "trt_engine_cache_enable=1,trt_engine_cache_path=/tmp/trt:cache")
    assert trt.option_dict() == {"trt_fp16_enable": "1", "trt_engine_cache_enable": "1",
                                 "trt_engine_cache_path": "/tmp/trt:cache"}  # true -> 1
    assert providers.parse(" CPUExecutionProvider ") == ProviderSpec(CPU)
    # Providers we have no table for pass their options through for ORT to check.
    assert providers.parse("OpenVINOExecutionProvider:device_type=GPU").option_dict() == {
        "device_type": "GPU"}


def test_the_flag_splits_at_commas_and_options_rejoin_their_provider():
    tokens = ["TensorrtExecutionProvider:trt_fp16_enable=1", "trt_engine_cache_enable=1",
              "trt_engine_cache_path=/tmp/a:b", "CUDAExecutionProvider:device_id=1",
              "CPUExecutionProvider"]
    assert providers.group_flag_tokens(tokens) == (
        "TensorrtExecutionProvider:trt_fp16_enable=1,trt_engine_cache_enable=1,"
        "trt_engine_cache_path=/tmp/a:b", "CUDAExecutionProvider:device_id=1", CPU)
    assert providers.group_flag_tokens(list(DEFAULT_PROVIDERS)) == DEFAULT_PROVIDERS

    class Flag:
        def __init__(self, value):
            self.value = value

    values = {"providers": Flag(["CUDAExecutionProvider:device_id=1", "gpu_mem_limit=2048", CPU]),
              "graph_optimization": Flag("all"), "intra_op_threads": Flag(0),
              "inter_op_threads": Flag(0), "execution_mode": Flag("sequential"),
              "max_batch": Flag(64)}
    cfg = export_flags.session_config_from_flags(values)
    assert cfg.providers == ("CUDAExecutionProvider:device_id=1,gpu_mem_limit=2048", CPU)
    assert cfg.max_batch == 64
    assert validate_session(cfg).provider_specs()[0].option_dict() == {"device_id": "1",
                                                                      "gpu_mem_limit": "2048"}


@pytest.mark.parametrize("entries, message", [
    (("CUDAExecutionProvider:device_idx=1",),
     r"^unknown CUDAExecutionProvider option 'device_idx' \(did you mean 'device_id'\?\). "
     r"Received: device_idx=1$"),
    (("TensorrtExecutionProvider:trt_fp16=1",),
     r"unknown TensorrtExecutionProvider option 'trt_fp16' \(did you mean 'trt_fp16_enable'"),
    (("TensorrtExecutionProvider:warp_speed=9",),
     r"option 'warp_speed' \(docs/serving.md lists the known ones\)"),
    (("TensorrtExecutionProvider:trt_fp16_enable=yes",),
     r"trt_fp16_enable takes 0 or 1. Received: trt_fp16_enable=yes"),
    (("CUDAExecutionProvider:device_id=-1",),
     r"device_id takes a non-negative integer. Received: device_id=-1"),
    (("CUDAExecutionProvider:cudnn_conv_algo_search=FAST",),
     r"must be one of EXHAUSTIVE, HEURISTIC, DEFAULT. Received: cudnn_conv_algo_search=FAST"),
    (("CPUExecutionProvider:threads=2",), r"option 'threads' \(it takes no options\)"),
    (("CUDAExecutionProvider:device_id",), r"options are key=value pairs. Received: 'device_id'"),
    (("CUDAExecutionProvider:",), r"no options after ':'"),
    (("CUDAExecutionProvider:device_id=1,device_id=2",), r"device_id is given twice"),
    (("cuda",), r"provider name, optionally followed by :key=value .* Received: 'cuda'"),
    ((CUDA, "CUDAExecutionProvider:device_id=1"), r"each provider may be named once"),
])
def test_bad_provider_strings_are_one_line_errors(entries, message):
    with pytest.raises(NfiError, match=message) as info:
        validate_session(SessionConfig(providers=entries))
    assert "\n" not in str(info.value)


def test_a_flag_that_starts_with_an_option_is_an_error():
    with pytest.raises(NfiError, match="must start with a provider name"):
        providers.group_flag_tokens(["device_id=1", CPU])
    with pytest.raises(NfiError, match="max_batch must be >= 0"):
        validate_session(SessionConfig(max_batch=-1))


def test_tensorrt_profiles_cover_one_to_max_batch(tiny_onnx):
    assert providers.tensorrt_profiles("image", (28, 28, 1), 64) == {
        "trt_profile_min_shapes": "image:1x28x28x1",
        "trt_profile_opt_shapes": "image:64x28x28x1",
        "trt_profile_max_shapes": "image:64x28x28x1"}
    path, _ = tiny_onnx
    cfg = SessionConfig(providers=(f"{TENSORRT}:trt_fp16_enable=1", CPU), max_batch=32)
    trt, cpu = cfg.provider_specs()
    assert serve.provider_options(trt, cfg, path) == {
        "trt_fp16_enable": "1", "trt_profile_min_shapes": "image:1x4x4x1",
        "trt_profile_opt_shapes": "image:32x4x4x1", "trt_profile_max_shapes": "image:32x4x4x1"}
    assert serve.provider_options(cpu, cfg, path) == {}
    # Profiles the user gave win; without max_batch none are made.
    given = providers.parse(f"{TENSORRT}:trt_profile_min_shapes=image:2x4x4x1")
    assert serve.provider_options(given, cfg, path) == given.option_dict()
    assert serve.provider_options(trt, SessionConfig(), path) == {"trt_fp16_enable": "1"}


@pytest.mark.skipif(not _HAS_CUDA, reason="this onnxruntime build has no CUDA provider")
def test_a_gpu_provider_asked_for_here_is_reported_as_fallen_back(tiny_onnx, caplog, capsys):
    path, w = tiny_onnx
    cfg = SessionConfig(providers=("CUDAExecutionProvider:device_id=0",
                                   "TensorrtExecutionProvider:trt_fp16_enable=1", CPU))
    with caplog.at_level(logging.WARNING, logger="export.serve"):
        predictor = Predictor(path, cfg)
    if predictor.provider != CPU:
        pytest.skip("this machine has a usable GPU: nothing falls back")
    assert predictor.providers == [CPU]
    assert predictor.fallen_back == [CUDA, TENSORRT]
    (record,) = [r for r in caplog.records if r.name == "export.serve"]
    message = record.getMessage()
    assert record.levelno == logging.WARNING and "\n" not in message
    assert message.startswith("tiny.onnx asked for CUDAExecutionProvider, "
                              "TensorrtExecutionProvider but runs on CPUExecutionProvider (")
    assert "EP Error" not in capsys.readouterr().out
    np.testing.assert_allclose(predictor.run(_images(2))["routed"],
                               _images(2).reshape(2, 16) @ w, rtol=1e-5)


def test_fallback_is_not_reported_when_the_cpu_was_asked_for(tiny_onnx, caplog):
    path, _ = tiny_onnx
    with caplog.at_level(logging.WARNING, logger="export.serve"):
        predictor = Predictor(path, SessionConfig(providers=(CPU,)))
    assert predictor.fallen_back == [] and not caplog.records
    # The default chain counts the GPU providers this build has (onnxruntime-gpu here).
    available = ort.get_available_providers()
    default = Predictor(path)
    if default.provider == CPU:
        assert default.fallen_back == [p for p in (TENSORRT, CUDA) if p in available]
    assert serve.gpu_fallback(SessionConfig(), [CPU], [CPU]) == []  # CPU-only build: no fallback
    assert serve.gpu_fallback(SessionConfig(providers=(CUDA, CPU)), [CPU], [CPU]) == [CUDA]
    assert serve.gpu_fallback(SessionConfig(providers=(CUDA, CPU)), [CUDA, CPU], [CUDA, CPU]) == []


def test_outputs_kept_on_the_device_equal_the_host_path(tiny_onnx):
    path, w = tiny_onnx
    predictor = Predictor(path, SessionConfig(providers=(CPU,)))
    assert predictor.device == ("cpu", 0) and not predictor.binds_device_memory
    x = _images(5)
    kept = predictor.run_on_device(x, outputs=("routed", "route"))
    assert set(kept) == {"routed", "route"}
    assert all(isinstance(v, ort.OrtValue) and v.device_name() == "cpu" for v in kept.values())
    np.testing.assert_allclose(kept["routed"].numpy(), x.reshape(5, 16) @ w, rtol=1e-5)
    np.testing.assert_array_equal(kept["route"].numpy(), predictor.run(x)["route"])
    # The host copy of the device path (what `run` returns on a GPU) equals session.run.
    binding = predictor._run_bound_on_device(x, predictor.output_names)
    for name, value in zip(predictor.output_names, binding.copy_outputs_to_cpu()):
        np.testing.assert_array_equal(value, predictor.run(x)[name])


def test_a_cuda_session_binds_device_memory_on_its_device(tiny_onnx, monkeypatch):
    path, _ = tiny_onnx
    predictor = Predictor(path, SessionConfig(providers=(f"{CUDA}:device_id=1", CPU)))
    # What a session on a GPU reports (this machine has none to create one).
    monkeypatch.setattr(predictor.session, "get_providers", lambda: [CUDA, CPU])
    assert predictor.device == ("cuda", 1) and predictor.binds_device_memory
    assert not predictor.binds_single_images  # the CPU batch-1 binding is for the CPU only
    off = Predictor(path, SessionConfig(providers=(CUDA, CPU), device_io_binding=False))
    monkeypatch.setattr(off.session, "get_providers", lambda: [CUDA, CPU])
    assert off.device == ("cuda", 0) and not off.binds_device_memory


@pytest.mark.large
def test_predict_cli_rejects_an_unknown_provider_option_in_one_line(tiny_onnx, tmp_path):
    path, _ = tiny_onnx
    proc = run_cli("export.predict", f"--model={path}",
                   "--providers=CUDAExecutionProvider:device_idx=1,CPUExecutionProvider",
                   "image.png", timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "export.predict: error: unknown CUDAExecutionProvider option 'device_idx' (did you mean "
        "'device_id'?). Received: device_idx=1")
