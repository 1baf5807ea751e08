"""The scale-trend report (nfi_tf/experiments/scale_report.py): its statistics, its pre-registered
verdict rule, and its points read from the committed CIFAR-10 results."""

import json
import math
import os
import shutil

import numpy as np
import pytest

from nfi_tf.experiments import scale_report
from nfi_tf.vocab import Method

RESULTS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "results")


def _point(label, gap, gap_se, compute=1e14, epochs_axis=True):
    rates = {Method.TRADES: 0.2, "nfi head": 0.2 - gap, "nfi routed": 0.1}
    return scale_report.Point(label, "WRN-10-1", epochs_axis, compute, dict(rates), dict(rates),
                              gap, gap_se, 0.5, -0.1, 0.5)


def test_the_paired_standard_error_is_the_spread_of_the_per_image_differences():
    rng = np.random.default_rng(0)
    a, b = rng.random(500) < 0.24, rng.random(500) < 0.16
    d = a.astype(float) - b.astype(float)
    assert scale_report.paired_se(a, b) == pytest.approx(np.std(d) / math.sqrt(len(d)), rel=1e-12)
    assert scale_report.paired_se(a, a) == 0.0


@pytest.mark.parametrize("delta_in_se, word", [(2.01, "widens"), (1.99, "holds"), (0.0, "holds"),
                                                (-1.99, "holds"), (-2.01, "narrows")])
def test_the_verdict_is_the_rule_fixed_before_the_numbers(delta_in_se, word):
    reference = _point("5 epochs", 0.08, 0.015)
    se = math.hypot(0.015, 0.02)
    point = _point("20 epochs", 0.08 + delta_in_se * se, 0.02)
    v = scale_report.verdict(reference, point)
    assert v["verdict"] == word
    assert v["se"] == pytest.approx(se)
    assert v["delta"] == pytest.approx(delta_in_se * se)


def test_the_extrapolation_is_a_line_in_log_compute_through_the_epoch_points_only():
    computes = [1e13, 1e14, 4e14]
    line = lambda c: 0.02 + 0.05 * (math.log10(c) - 13)  # noqa: E731
    points = [_point(f"p{i}", line(c), 0.01, c) for i, c in enumerate(computes)]
    off_axis = _point("wide", 0.9, 0.01, 2e14, epochs_axis=False)  # must not move the fit
    out = scale_report.extrapolate(points + [off_axis])
    assert out["points"] == 3
    assert out["slope_per_decade"] == pytest.approx(0.05)
    assert out["at_paper_budget"] == pytest.approx(line(scale_report.PAPER_FLOPS))
    assert out["interval_95"] == pytest.approx(0.0, abs=1e-9)  # exact line: no residual spread
    assert scale_report.extrapolate(points[:2] + [off_axis]) is None  # two epoch points: no fit


def test_the_report_reads_the_finished_points_and_agrees_with_each_runs_own_table(tmp_path):
    """On the committed results (a copy: the report writes beside them): the points whose runs all
    finished are in, each worst case equals the one in the run's eval.json table (computed there by
    the evaluation, here from the per-image records), and compute follows epochs."""
    runs = ("ablation_trades", "ablation_nfi_reference", "trades_seed0", "nfi_seed0")
    for run in runs:
        shutil.copytree(os.path.join(RESULTS, "cifar10", run), tmp_path / "cifar10" / run)
    result = scale_report.write(str(tmp_path))
    points = {p["label"]: p for p in result["points"]}
    assert sorted(points) == ["2 epochs", "5 epochs"]  # seed 1, 20 epochs, WRN-10-2 not copied
    assert result["verdicts"] == {} and result["extrapolation"] is None
    for label, trades, nfi, *_ in scale_report.POINTS[:2]:
        tables = {r: json.load(open(tmp_path / "cifar10" / r / "eval.json"))["table"] for r in (trades, nfi)}
        worst = points[label]["worst"]
        assert worst[Method.TRADES] == pytest.approx(tables[trades]["tradeoff"]["worst_case"])
        assert worst["nfi head"] == pytest.approx(tables[nfi]["tradeoff"]["worst_case"])
        assert worst["nfi routed"] == pytest.approx(tables[nfi]["routed"]["worst_case"])
        assert points[label]["gap"] == pytest.approx(worst[Method.TRADES] - worst["nfi head"])
    summary = lambda r: json.load(open(tmp_path / "cifar10" / r / "summary.json"))  # noqa: E731
    config = lambda r: json.load(open(tmp_path / "cifar10" / r / "config.json"))  # noqa: E731
    per_image = [points[label]["compute"] / (config(nfi)["train"]["epochs"] * summary(nfi)["train_examples"])
                 for label, _, nfi, *_ in scale_report.POINTS[:2]]
    assert per_image[0] == pytest.approx(per_image[1])  # one backbone, one attack: FLOPs per image equal
    assert (tmp_path / "scale_trend.png").stat().st_size > 10_000
    md = (tmp_path / "scale_trend.md").read_text()
    assert md.count("| WRN-10-1 |") == 2


def test_results_md_shows_the_committed_scale_trend_block_which_regenerates_from_the_committed_runs(tmp_path):
    with open(os.path.join(RESULTS, scale_report.MARKDOWN)) as f:
        committed = f.read()
    with open(os.path.join(os.path.dirname(RESULTS), "RESULTS.md")) as f:
        doc = f.read()
    shown = doc.split(scale_report.DOC_BEGIN, 1)[1].split(scale_report.DOC_END, 1)[0]
    assert shown.strip() + "\n" == committed
    shutil.copytree(os.path.join(RESULTS, "cifar10"), tmp_path / "cifar10")
    result = scale_report.write(str(tmp_path))
    assert (tmp_path / scale_report.MARKDOWN).read_text() == committed
    with open(os.path.join(RESULTS, scale_report.JSON)) as f:
        assert json.loads(json.dumps(result)) == json.load(f)


def test_the_doc_block_is_rewritten_between_its_markers_and_a_doc_without_them_is_refused(tmp_path, capsys):
    doc = tmp_path / "doc.md"
    doc.write_text(f"intro\n{scale_report.DOC_BEGIN}\n\nold\n\n{scale_report.DOC_END}\n\nafter\n")
    scale_report.update_doc(str(doc), ["| new |"])
    assert doc.read_text() == f"intro\n{scale_report.DOC_BEGIN}\n\n| new |\n\n{scale_report.DOC_END}\n\nafter\n"
    (tmp_path / "cifar10").mkdir()
    bare = tmp_path / "bare.md"
    bare.write_text("no markers\n")
    assert scale_report.main([str(tmp_path), f"--doc={bare}"]) == 1
    assert "has no" in capsys.readouterr().err and bare.read_text() == "no markers\n"
    with pytest.raises(SystemExit, match="usage"):
        scale_report.main([str(tmp_path), "--dco=RESULTS.md"])


def test_a_results_dir_without_runs_is_one_line_and_writes_nothing(tmp_path, capsys):
    assert scale_report.main([str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "has no cifar10/ run directories" in err and "\n" not in err
    assert not (tmp_path / "nowhere").exists()


def test_with_every_point_present_the_block_has_verdicts_an_extrapolation_and_the_guard(tmp_path):
    """Stand-ins for the plan's runs (copies of finished ones, so every value is known): the
    20-epoch pair is seed 1's, the guard is the route guard at 5 epochs."""
    stand_ins = {"ablation_trades": "ablation_trades", "ablation_nfi_reference": "ablation_nfi_reference",
                 "trades_seed0": "trades_seed0", "nfi_seed0": "nfi_seed0",
                 "trades_e20_seed0": "trades_seed1", "nfi_e20_seed0": "nfi_seed1",
                 "nfi_route_guard_e20_seed0": "nfi_route_guard_seed0"}
    for name, source in stand_ins.items():
        shutil.copytree(os.path.join(RESULTS, "cifar10", source), tmp_path / "cifar10" / name)
    result = scale_report.build(str(tmp_path))
    points = {p["label"]: p for p in result["points"]}
    v = result["verdicts"]["epochs"]
    assert set(result["verdicts"]) == {"epochs"}  # no WRN-10-2 pair: no width verdict
    assert v["delta"] == pytest.approx(points["20 epochs"]["gap"] - points["5 epochs"]["gap"])
    assert result["extrapolation"]["points"] == 3
    table = lambda r: json.load(open(tmp_path / "cifar10" / r / "eval.json"))["table"]  # noqa: E731
    g = result["guard"]
    assert g["worst_case"]["routed"] == pytest.approx(table("nfi_route_guard_e20_seed0")["routed"]["worst_case"])
    assert g["worst_case"]["tradeoff"] == pytest.approx(table("nfi_route_guard_e20_seed0")["tradeoff"]["worst_case"])
    assert g["worst_case"][Method.TRADES] == pytest.approx(table("trades_e20_seed0")["tradeoff"]["worst_case"])
    block = "\n".join(scale_report.markdown(result))
    assert f"**{v['verdict']}**" in block and "width: not measured yet" in block
    assert "Not finished yet: 5 epochs, seed 1, WRN-10-2, 5 epochs." in block and "route guard, 20 epochs (not" in block
