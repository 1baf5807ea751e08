"""The benchmark entry point runs end to end on a tiny setting and writes complete JSON.

No wall-clock assertions: only that the suite runs, its figures are present and sane.
"""

import json
import os

import pytest
from helpers import run_cli

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.large
def test_bench_tiny_writes_valid_json(tmp_path):
    out = tmp_path / "results.json"
    plot = tmp_path / "scaling.png"
    proc = run_cli("bench", "--suite=peak,train,scaling", "--tiny", f"--out={out}",
                   f"--plot={plot}", f"--work_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert {"meta", "peak", "train", "scaling"} <= set(results)
    assert results["meta"]["tiny"] is True
    assert len(results["meta"]["load_average_start"]) == 3
    assert results["meta"]["machine"]["cpu_count"] >= 1
    assert results["peak"]["gflop_per_s_best"] > 0

    train = results["train"]
    assert {"main", "paired", "levers", "comparisons", "targets", "peak_gflop_per_s"} <= set(train)
    for run in train["main"] + train["levers"]:
        assert "error" not in run, run.get("error")
        for key in ("ms_per_step_median", "images_per_s", "peak_rss_mb", "achieved_gflop_per_s",
                    "fraction_of_peak", "step_gflop", "load_average"):
            assert run[key] > 0 if key != "load_average" else len(run[key]) == 3, key
    methods = {(r["spec"]["backbone"], r["spec"]["method"]) for r in train["main"]}
    assert methods == {(b, m) for b in ("small_cnn", "wide_resnet") for m in ("trades", "nfi")}
    for pair in train["paired"]:
        assert "error" not in pair, pair.get("error")
        assert pair["paired"][0]["ratio_to_first"] == 1.0
        assert all(p["ms_per_step_median"] > 0 for p in pair["paired"])
    mnist = next(row for row in train["comparisons"] if row["backbone"] == "mnist/SmallCNN")
    assert mnist["nfi_over_trades"] > 0 and mnist["compiled_speedup_over_naive"] > 0
    assert all(isinstance(t["met"], bool) for t in train["targets"].values())

    scaling = results["scaling"]
    assert len(scaling["batch"]) >= 2 and len(scaling["attack_steps"]) >= 2
    assert all("error" not in p and p["peak_rss_mb"] > 0 for p in scaling["batch"])
    assert plot.exists() and plot.stat().st_size > 0


def test_wait_for_quiet_waits_for_busy_cores_and_refuses_after_the_timeout(monkeypatch):
    from bench import quiet
    from nfi_tf.errors import NfiError

    samples = iter([0.9, 0.8, 0.1])
    monkeypatch.setattr(quiet, "sample", lambda seconds=1.0: {
        "busy_share": next(samples), "load_average": [2.5, 2.0, 1.0], "cores": 2})
    logged = []
    s = quiet.wait_for_quiet(max_busy=0.25, timeout_s=60, poll_s=0, log=logged.append)
    assert s["busy_share"] == 0.1 and s["waited"] is True
    assert len(logged) == 1 and "90% busy" in logged[0]
    monkeypatch.setattr(quiet, "sample", lambda seconds=1.0: {
        "busy_share": 0.7, "load_average": [3.0, 2.0, 1.0], "cores": 2})
    with pytest.raises(NfiError, match="70% used by other work, load average 3.00 on 2 cores"):
        quiet.wait_for_quiet(max_busy=0.25, timeout_s=0, poll_s=0, log=logged.append)


def test_suites_of_accepts_the_new_suites_and_names_a_bad_one():
    from bench.suites import SUITES, suites_of
    from nfi_tf.errors import NfiError

    assert suites_of("paper_scale,flops") == ["flops", "paper_scale"]  # run in SUITES order
    assert suites_of("all") == list(SUITES)
    with pytest.raises(NfiError, match="Received: suite='fastest'"):
        suites_of("fastest")


def test_paper_scale_fit_extrapolation_and_recipe_arithmetic():
    from bench import paper_scale

    fit = paper_scale.fit_line([1, 2, 4], [1100.0, 1300.0, 1700.0])
    assert fit["intercept"] == pytest.approx(900.0) and fit["slope"] == pytest.approx(200.0)
    assert fit["r2"] == pytest.approx(1.0)
    # (24 GiB - 900 MB) / 200 MB per image = 118.38 -> 118.
    assert paper_scale.largest_batch(fit, 24 * 1024) == 118
    assert paper_scale.largest_batch({"intercept": 900.0, "slope": 0.0}, 24 * 1024) is None
    with pytest.raises(ValueError, match="Received: xs=\\[2, 2\\]"):
        paper_scale.fit_line([2, 2], [1.0, 2.0])
    # 200 epochs x 50,000 images x F x (2 * 10 + 7) with F = 1 GFLOP: 2.7e17 FLOP.
    total = paper_scale.recipe_flops(10**9)
    assert total == 200 * 50_000 * 27 * 10**9
    rows = paper_scale.time_table(total, cpu_gflop_per_s=100.0, cpu_label="x",
                                  peak_gflop_per_s=200.0)
    assert rows[0]["seconds"] == pytest.approx(total / 100e9)
    assert rows[1]["seconds"] == pytest.approx(total / 200e9)
    a100_bf16 = next(r for r in rows if r["device"] == "NVIDIA A100" and r["precision"] == "bf16")
    assert a100_bf16["seconds"] == pytest.approx(total / (312e12 * paper_scale.ACHIEVED_FRACTION))
    assert "50% of the published 312 TFLOP/s" in a100_bf16["basis"]


def _serve_report(tf_ms, tf_ips, fp32_ms, fp32_ips, int8_ms, int8_ips, raw_ms=0.5, raw_ips=10.0):
    thr = "throughput_b256_images_per_s"
    row = lambda ms, ips: {"latency_b1_ms_median": ms, thr: ips}
    return {"settings": {"throughput_batch": 256},
            "results": {"tf_saved_model_fp32": row(tf_ms, tf_ips),
                        "ort_fp32_predictor_default": row(fp32_ms, fp32_ips),
                        "ort_int8_predictor_default": row(int8_ms, int8_ips),
                        "ort_fp32": row(raw_ms, raw_ips), "ort_int8": row(raw_ms, raw_ips),
                        "ort_fp32_intra1": row(0.1, 200.0)},
            "quantization": {"fp32_accuracy": 0.952, "int8_accuracy": 0.949, "examples": 1000}}


def test_serve_targets_are_judged_on_the_default_predictor():
    from bench.serve_bench import serve_targets

    t = serve_targets(_serve_report(tf_ms=1.0, tf_ips=100.0, fp32_ms=0.4, fp32_ips=140.0,
                                    int8_ms=0.3, int8_ips=280.0))
    assert t["ort_latency_b1_ge_2x_tf"]["measured"] == pytest.approx(2.5)
    assert t["ort_latency_b1_ge_2x_tf"]["met"] is True
    assert t["ort_throughput_ge_1.5x_tf"]["measured"] == pytest.approx(1.4)
    assert t["ort_throughput_ge_1.5x_tf"]["met"] is False  # a better non-default setting...
    assert t["ort_throughput_ge_1.5x_tf"]["best_setting"] == "ort_fp32_intra1"  # ...is named
    assert t["ort_throughput_ge_1.5x_tf"]["best_setting_measured"] == pytest.approx(2.0)
    assert t["int8_throughput_ge_1.5x_ort_fp32"]["measured"] == pytest.approx(2.0)
    assert t["int8_latency_b1_ge_1.5x_ort_fp32"]["measured"] == pytest.approx(0.4 / 0.3)
    assert t["int8_latency_b1_ge_1.5x_ort_fp32"]["met"] is False
    assert isinstance(t["int8_latency_b1_ge_1.5x_ort_fp32"]["int8_dot_extensions"], list)
    assert t["int8_accuracy_change_lt_0.5_points"]["measured"] == pytest.approx(0.3)
    assert all(v["session"] == "default Predictor" for k, v in t.items() if "accuracy" not in k)


def test_precisions_table_renders_fp32_fp16_int8_side_by_side_and_a_refused_fp16():
    from bench.serve_bench import precisions_side_by_side
    from bench.tables import precisions_table

    report = _serve_report(tf_ms=2.0, tf_ips=3000.0, fp32_ms=0.4, fp32_ips=6000.0, int8_ms=0.5,
                           int8_ips=7500.0)
    thr = "throughput_b256_images_per_s"
    report["results"]["ort_fp16_predictor_default"] = {"latency_b1_ms_median": 0.8, thr: 1500.0}
    fp16 = {"fp32_accuracy": 0.952, "fp16_accuracy": 0.9515, "examples": 1000}
    report["fp16"] = fp16
    report["precisions"] = precisions_side_by_side(report["results"], report["quantization"],
                                                   fp16, thr)
    assert precisions_table(report) == [
        "| default Predictor | latency b1 median | throughput b256 | accuracy (1,000 test images) |",
        "| --- | ---: | ---: | ---: |",
        "| fp32 `model.onnx` | 0.400 ms | 6,000 img/s | 95.20% |",
        "| fp16 `model.fp16.onnx` | 0.800 ms (x0.50) | 1,500 img/s (x0.25) | 95.15% |",
        "| int8 `model.int8.onnx` | 0.500 ms (x0.80) | 7,500 img/s (x1.25) | 94.90% |",
        "| TF SavedModel fp32 | 2.000 ms | 3,000 img/s | |"]
    # fp16 refused by its check: measured in fp32 and int8, the reason in the fp16 row.
    del report["results"]["ort_fp16_predictor_default"]
    report["fp16"] = {"error": "fp16 parity failed: 1 unexplained route flip"}
    report["precisions"] = precisions_side_by_side(report["results"], report["quantization"],
                                                   None, thr)
    rows = precisions_table(report)
    assert rows[3] == ("| fp16 `model.fp16.onnx` | not exported: fp16 parity failed: 1 "
                       "unexplained route flip | | |")
    assert rows[2] == "| fp32 `model.onnx` | 0.400 ms | 6,000 img/s | 95.20% |"


@pytest.mark.large
def test_bench_tiny_flops_bf16_and_paper_scale_suites(tmp_path):
    out = tmp_path / "results.json"
    proc = run_cli("bench", "--suite=flops,bf16,paper_scale", "--tiny", f"--out={out}",
                   f"--work_dir={tmp_path}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())

    flops = results["flops"]
    assert len(flops["configs"]) == 3 and flops["forward_counts_agree"] is True
    for c in flops["configs"]:
        assert "error" not in c, c.get("error")
        assert c["forward"]["tf_over_analytic_multiply_add"] == pytest.approx(1.0)
        assert c["step"]["tf_multiply_add_gflop"] > 0 and c["step"]["analytic_gflop"] > 0
    wrn = next(c for c in flops["configs"] if c["spec"]["backbone"] == "wide_resnet")
    assert wrn["step"]["tf_over_analytic_multiply_add"] == pytest.approx(1.0, abs=0.02)
    from bench.machine import onednn_ops_expected

    expected, _ = onednn_ops_expected()
    for probe in flops["convolution_algorithms"]:
        assert "error" not in probe, probe.get("error")
        # oneDNN runs the convolutions exactly where TensorFlow's rule (CPU flags, or
        # TF_ENABLE_ONEDNN_OPTS) says; elsewhere the probe reports that as a finding.
        assert probe["onednn_convolutions"] is expected, probe
        assert sum(probe["algorithms"].values()) == probe["convolutions"]
        if not expected:
            assert probe["convolutions"] == 0 and probe["note"].startswith("oneDNN not in use"), probe
    assert isinstance(flops["winograd_seen"], bool)

    (bf16,) = results["bf16"]["runs"]
    assert "error" not in bf16, bf16.get("error")
    labels = [p["label"] for p in bf16["train"]["paired"]]
    assert labels[0].endswith("b16") and labels[1].endswith("mixed_bfloat16")
    assert bf16["train"]["fp32_ms_per_step"] > 0 and bf16["train"]["bf16_speedup"] > 0
    assert set(bf16["serve"]["batches"]) == {"1", "16"}
    assert 0 <= bf16["serve"]["argmax_agreement"] <= 1
    assert bf16["serve"]["logits_max_abs_difference"] < 1.0  # same weights, bf16 rounding only

    paper = results["paper_scale"]
    points = paper["points"]
    assert [p["batch"] for p in points] == [4, 16, 64, 128]
    assert all("error" not in p and p["peak_rss_mb"] > 0 for p in points)
    fit = paper["fit"]
    # Monotone: every extra image keeps more activations, so the fitted RSS grows with the batch.
    assert fit["slope_mb_per_image"] > 0 and fit["intercept_mb"] > 0
    assert paper["largest_batch_in_limit"] > points[-1]["batch"]
    assert abs(paper["check"]["relative_error"]) < 0.5
    assert paper["recipe"]["model"] == "WRN-34-10" and paper["recipe"]["total_flop"] > 1e18
    devices = {(r["device"], r["precision"]) for r in paper["time"]}
    assert ("this CPU", "fp32") in devices and ("NVIDIA H100 SXM", "bf16") in devices
    assert all(r["seconds"] > 0 for r in paper["time"])


def test_bench_config_from_flags_keeps_the_command_line_and_is_passed_down(tmp_path):
    from absl import flags

    from bench.config import BenchConfig
    from bench.suites import SUITES, chosen, run_suites
    from flags import bench as bench_flags
    from nfi_tf.errors import NfiError

    values = flags.FlagValues()
    bench_flags.define_flags(flag_values=values)
    values(["bench", "--suite=train,peak", "--tiny", f"--out={tmp_path / 'r.json'}",
            f"--work_dir={tmp_path / 'work'}", "--max_busy=0.5"])
    config = bench_flags.bench_config_from_flags(values)
    assert config == BenchConfig(suites=("peak", "train"), tiny=True, out=str(tmp_path / "r.json"),
                                 work_dir=str(tmp_path / "work"), max_busy=0.5)
    assert config.plot_path == "bench/scaling_tiny.png"
    # No suite named: every one (--suite=all), in the registry's order.
    assert BenchConfig().suites is None and chosen(BenchConfig()) == list(SUITES)
    assert BenchConfig().plot_path == "bench/scaling.png"
    values(["bench", "--suite=all", "--max_busy=0"])
    with pytest.raises(NfiError, match="Received: max_busy=0"):
        bench_flags.bench_config_from_flags(values)

    logged = []
    results = run_suites(BenchConfig(suites=("peak",), tiny=True, out=str(tmp_path / "r.json"),
                                     work_dir=str(tmp_path / "work")), log=logged.append)
    assert results["meta"]["suites"] == ["peak"] and results["meta"]["tiny"] is True
    assert json.loads((tmp_path / "r.json").read_text())["peak"]["gflop_per_s_best"] > 0
    assert (tmp_path / "work").is_dir() and logged[-1] == f"written to {tmp_path / 'r.json'}"


def test_attack_bench_rates_and_table_on_given_numbers():
    """GFLOP/s from the images counted at the model's input, against the peak and against the
    model's own rate; the table puts the baseline beside the current code."""
    from bench.attack_bench import _rate, planned_keys
    from bench.tables import attack_table

    row = _rate({"attack": "apgd_ce@routed:hard", "seconds": 2.0, "seconds_per_image": 0.01,
                 "images_forwarded": 1000, "images_backpropagated": 1000}, 1e7, 100.0)
    assert row["gflop"] == pytest.approx(20.0) and row["gflop_per_s"] == pytest.approx(10.0)
    assert row["fraction_of_peak"] == pytest.approx(0.1)
    keys = planned_keys()
    assert keys[:4] == ["apgd_ce@routed:hard", "apgd_t@routed:hard", "fab_t@routed:hard",
                        "square@routed"] and keys[4].startswith("route@routed:all_heads")
    alone = {"batch": 200, "onednn_setting": "1", "forward_gflop_per_s": 20.0,
             "forward_fraction_of_peak": 0.2, "forward_backward_gflop_per_s": 12.5,
             "forward_backward_fraction_of_peak": 0.125}
    current = dict(row, fraction_of_model_rate=0.8)
    base = dict(row, seconds=3.0, seconds_per_image=0.015, fraction_of_peak=0.0667)
    table = attack_table({"current": {"attacks": [current], "model_alone": alone},
                          "baseline": {"attacks": [base], "model_alone": alone}})
    line = [t for t in table.splitlines() if t.startswith("| apgd_ce")][0]
    assert "| 10% | 80% |" in line and line.endswith("| 0.015 | 7% | x1.50 |")
    assert "TF_ENABLE_ONEDNN_OPTS=1" in table and "| 12.5 | 12% |" in table


# === The one entry: suites registered once, each one's flags made from its config ===


def test_the_registry_lists_every_suite_and_a_tool_runs_alone():
    from bench import registry
    from nfi_tf.errors import NfiError

    usage = registry.usage()
    for suite in registry.suites():
        assert f"  {suite.name} " in usage and suite.summary.split()[0] in usage, suite.name
    assert registry.measuring() == ("peak", "train", "scaling", "serve", "flops", "bf16", "paper_scale")
    assert {"attack", "serve_model", "multi_worker", "time_to_robustness", "train_step",
            "bf16_step", "whole_test_set"} == set(registry.tools())
    assert [s.name for s in registry.select("paper_scale,peak")] == ["peak", "paper_scale"]
    assert [s.name for s in registry.select("attack")] == ["attack"]
    with pytest.raises(NfiError, match="runs alone. Received: suite='peak,attack'"):
        registry.select("peak,attack")


@pytest.mark.parametrize("name", ["attack", "serve_model", "multi_worker", "time_to_robustness",
                                  "train_step", "bf16_step", "peak"])
def test_each_suites_flags_are_its_config_fields(name):
    import dataclasses

    from absl import flags

    from bench import registry
    from flags import bench as bench_flags
    from flags import dataclass_flags as dcf

    suite = registry.get(name)
    values = flags.FlagValues()
    bench_flags.define_flags(flag_values=values, suite=name)
    generated = {s.flag: s for s in dcf.flag_specs(suite.config)}
    assert set(values) == set(generated) | {"suite"}
    for f in dataclasses.fields(suite.config):
        spec = generated[f.metadata.get("flag", f.name)]
        assert values[spec.flag].help.startswith(f.metadata["help"].rstrip(".")), f.name
    assert bench_flags.peek_suite(["bench", f"--suite={name}", "--help"]) == name
    assert bench_flags.peek_suite(["bench", "--suite", name, "--tiny"]) == name
    assert bench_flags.peek_suite(["bench", "--tiny"]) == "all"


def test_a_field_added_to_a_tools_config_becomes_its_flag(monkeypatch):
    import dataclasses

    from absl import flags

    from bench import registry
    from bench.config import MultiWorkerConfig
    from flags import bench as bench_flags

    @dataclasses.dataclass(frozen=True)
    class WithTimeout(MultiWorkerConfig):
        timeout: float = dataclasses.field(default=900.0, metadata={"help": "Seconds per run."})

    suite = dataclasses.replace(registry.get("multi_worker"), config=WithTimeout)
    monkeypatch.setattr(registry, "_BY_NAME", {**registry._BY_NAME, "multi_worker": suite})
    monkeypatch.setattr(registry, "_SUITES", tuple(suite if s.name == "multi_worker" else s
                                                   for s in registry._SUITES))
    values = flags.FlagValues()
    bench_flags.define_flags(flag_values=values, suite="multi_worker")
    assert values["timeout"].default == 900.0 and values["timeout"].help == "Seconds per run."
    values(["bench", "--suite=multi_worker", "--timeout=60", "--workers=1,2,4", "--batch=128"])
    chosen, config = bench_flags.config_from_flags(values)
    assert chosen is suite
    assert config == WithTimeout(timeout=60.0, workers=(1, 2, 4), batch=128)


@pytest.mark.parametrize("argv, message", [
    (["--suite=multi_worker", "--workers=2,3", "--batch=128"],
     "batch must split evenly between 3 workers. Received: batch=128"),
    (["--suite=multi_worker", "--workers=1,x"], "Received: workers='1,x'"),
    (["--suite=serve_model", "--model_dir=m", "--repeats=0"], "repeats must be >= 1. Received: repeats=0"),
    (["--suite=attack", "--model_dir=m", "--examples=0"], "examples must be >= 1. Received: examples=0"),
    (["--suite=time_to_robustness", "--variants=pgd5_3ep,fast"], "Received: variants=fast"),
    (["--suite=train_step", "--spec=[1]"], "spec must be a JSON object. Received: spec='[1]'"),
])
def test_tool_flags_build_validated_configs_or_one_line_errors(argv, message):
    import re

    from absl import flags

    from flags import bench as bench_flags
    from nfi_tf.errors import NfiError

    values = flags.FlagValues()
    bench_flags.define_flags(flag_values=values, suite=bench_flags.peek_suite(["bench", *argv]))
    values(["bench", *argv])
    with pytest.raises(NfiError, match=re.escape(message)) as e:
        bench_flags.config_from_flags(values)
    assert "\n" not in str(e.value)


def test_tool_flags_default_to_their_configs():
    from absl import flags

    from bench.config import AttackBenchConfig, ServeModelConfig, StepConfig
    from flags import bench as bench_flags

    for argv, expected in ((["--suite=attack", "--model_dir=m"], AttackBenchConfig(model_dir="m")),
                           (["--suite=serve_model", "--model_dir=m", "--warmup=0"],
                            ServeModelConfig(model_dir="m", warmup=0)),
                           (["--suite=bf16_step", '--spec={"batch": 16}'], StepConfig('{"batch": 16}'))):
        values = flags.FlagValues()
        bench_flags.define_flags(flag_values=values, suite=bench_flags.peek_suite(["bench", *argv]))
        values(["bench", *argv])
        assert bench_flags.config_from_flags(values)[1] == expected
    assert AttackBenchConfig(model_dir="m", examples=50).batch == 50
    assert AttackBenchConfig(model_dir="m", examples=500).batch == 200


def test_the_old_commands_hand_their_command_line_to_the_one_entry(monkeypatch):
    import sys

    from bench import cli

    ran = []
    monkeypatch.setattr(cli, "run", lambda prog="bench": ran.append((prog, list(sys.argv[1:]))))
    monkeypatch.setattr(sys, "argv", ["bench/train_bench.py", '{"batch": 8}'])
    cli.alias("train_step", spec_argument=True)
    monkeypatch.setattr(sys, "argv", ["bench/attack_bench.py", "--model_dir=m", "--examples=5"])
    cli.alias("attack")
    assert [args for _, args in ran] == [["--suite=train_step", '--spec={"batch": 8}'],
                                         ["--suite=attack", "--model_dir=m", "--examples=5"]]


@pytest.mark.large  # a subprocess that imports TensorFlow
def test_bench_help_lists_the_suites_and_a_suites_help_its_flags():
    from bench import registry

    proc = run_cli("bench", "--help", timeout=180)  # absl's --help exits 1
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    for suite in registry.suites():
        assert f"  {suite.name} " in proc.stdout, suite.name
    assert "--max_busy" in proc.stdout and "--model_dir" not in proc.stdout
    proc = run_cli("bench.attack_bench", "--help", timeout=180)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "--baseline" in proc.stdout and "--examples" in proc.stdout and "--tiny" not in proc.stdout
