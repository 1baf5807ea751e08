"""The reproduction pipeline (scripts/reproduce.sh --quick) and its tables."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))

import reproduce  # noqa: E402
import reproduce_tables  # noqa: E402


def test_verdict_needs_two_standard_errors():
    # 1000 images, 80% vs 75%: SE of the difference = sqrt((.16 + .1875) / 1000) = 1.864 points.
    v = reproduce_tables.compare(0.80, 0.75, 1000)
    assert v["verdict"] == "reproduced"
    assert v["two_se_points"] == pytest.approx(3.73, abs=0.01)
    assert reproduce_tables.compare(0.76, 0.75, 1000)["verdict"] == "inconclusive"
    assert reproduce_tables.compare(0.70, 0.75, 1000)["verdict"] == "not reproduced"
    assert reproduce_tables.compare(None, 0.75, 1000)["verdict"] == "not measured"


def _fake_eval(tmp_path, run, table, method):
    d = tmp_path / "mnist" / run
    d.mkdir(parents=True)
    (d / "eval.json").write_text(json.dumps({"method": method, "examples": 1000, "table": table}))
    (d / "run.json").write_text(json.dumps({"train_seconds": 600}))


def test_tables_put_each_run_in_its_row_with_verdicts(tmp_path):
    _fake_eval(tmp_path, "trades", {"tradeoff": {"clean": 0.95, "pgd": 0.80, "worst_case": 0.78}},
               "trades")
    _fake_eval(tmp_path, "nfi", {
        "routed": {"clean": 0.97, "pgd": 0.70, "worst_case": 0.60},
        "robust_part": {"clean": 0.90, "pgd": 0.85},
        "nonrobust_part": {"clean": 0.96, "pgd": 0.50},
    }, "nfi")
    records = [{"dataset": "mnist", "run": r} for r in ("trades", "nfi")]
    text = reproduce_tables.write_tables(str(tmp_path), records, {}, {})
    assert "| TRADES (ours, same budget) | 95.0 | 80.0 |" in text
    assert "| nfi routed (ours) | 97.0 | 70.0 |" in text
    v = json.load(open(tmp_path / "verdicts.json"))["mnist"]
    assert v["table1_robust_part_more_robust"]["verdict"] == "reproduced"
    assert v["table1_robust_part_less_accurate"]["verdict"] == "reproduced"
    assert v["table2_routed_more_accurate_than_trades"]["verdict"] == "reproduced"
    assert v["table2_routed_more_robust_pgd_adaptive"]["verdict"] == "not reproduced"


def test_plan_gives_trades_and_nfi_the_same_budget():
    for dataset, seeds in (("mnist", 3), ("cifar10", 2)):
        runs = {name: c for d, name, c, _ in reproduce.plan(False) if d == dataset}
        for seed in range(seeds):  # the main runs: one TRADES and one nfi run per seed
            a, b = runs[f"trades_seed{seed}"], runs[f"nfi_seed{seed}"]
            assert (a.model.method, b.model.method) == ("trades", "nfi")
            assert a.train == b.train and a.attack == b.attack and a.data == b.data
            assert a.train.seed == seed
            assert a.model.backbone == b.model.backbone and a.model.depth == b.model.depth


@pytest.mark.large
def test_quick_pipeline_end_to_end_and_reuse(tmp_path):
    """`scripts/reproduce.sh --quick`: trains and evaluates every quick run on real data, writes
    the tables; a second invocation reuses the finished runs instead of training again."""
    results, work = tmp_path / "results", tmp_path / "work"
    cmd = ["bash", "scripts/reproduce.sh", "--quick", f"--results_dir={results}",
           f"--work_dir={work}"]
    # The script installs into the active virtual environment: make it this interpreter's.
    env = dict(os.environ, VIRTUAL_ENV=sys.prefix,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1500, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    for dataset, name, _, _ in reproduce.plan(True):
        result = json.load(open(results / dataset / name / "eval.json"))
        assert result["examples"] == reproduce.QUICK_COMMON[dataset]["data"]["eval_examples"]
        run = json.load(open(results / dataset / name / "run.json"))
        assert run["train_seconds"] > 0
    table = (results / "results_table.md").read_text()
    assert "### mnist: Table 2" in table and "### cifar10: Table 2" in table
    assert "paper: ours (routed) (WRN-34-10)" in table
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing finished run") == len(reproduce.plan(True))
    assert "training" not in again.stdout
