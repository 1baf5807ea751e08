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
