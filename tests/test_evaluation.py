"""Evaluation (`python -m nfi_tf.evaluate`): the attack plan, route-aware attacks, the
per-example worst case, AutoAttack's suite, the exported model, records and merging, reports,
the CLI, determinism.

One small evaluation of the briefly trained real-MNIST model (64 test images, few attack steps,
every attack family) is shared by most tests; it runs on a copy of the model dir so the shared
fixture stays untouched.
"""

import json
import os
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli

from nfi_tf.attacks import ThreatModel
from nfi_tf.attacks.pgd_judged import JudgedPGD, step_sizes
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import feature_overlap, plan, records, report, switch
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.config import EvalConfig, parse_attacks, validate
from nfi_tf.evaluation.keys import AttackKey, parse_record_key
from nfi_tf.evaluation.merge import merge_evaluations
from nfi_tf.evaluation.report import VERSION as EVAL_JSON_VERSION
from nfi_tf.evaluation.report import EvalReport
from nfi_tf.evaluation.runner import evaluate_model
from nfi_tf.evaluation.subject import Subject
from nfi_tf.evaluation.suite import route_aware
from nfi_tf.model_io import load_classifier
from nfi_tf.outputs import ROUTED_ONNX as ONNX_ROW
from nfi_tf.outputs import scored_for
from nfi_tf.vocab import Method

EPS = 0.3
ATTACKED = ("routed", "tradeoff", "robust_part")
SMALL = dict(eval_examples=64, batch_size=64, step_size=0.1, pgd_steps=5, apgd_steps=5,
             apgd_targets=2, fab_steps=5, fab_targets=2, square_queries=40, route_steps=5,
             route_targets=1, route_temperatures=(1.0,), verbose=0)


def _copy_model_dir(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in ("config.json", "model.keras"):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    return str(dst)


@pytest.fixture(scope="module")
def nfi_eval(trained_mnist_dir, tmp_path_factory):
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path_factory.mktemp("eval_nfi"))
    # The white-box attacks target three outputs (the others are scored by transfer).
    return evaluate_model(EvalConfig(model_dir=model_dir, attack_outputs=ATTACKED, **SMALL),
                          log=lambda m: None)


@pytest.fixture(scope="module")
def classifier(trained_mnist_dir):
    return load_classifier(os.path.join(trained_mnist_dir, "model.keras"))


# === The attacks ===


def test_every_attack_stays_in_the_eps_ball_and_pixel_range(nfi_eval):
    typed = [k for k in nfi_eval.report.attack_keys if not k.is_clean]
    keys = {str(k) for k in typed}
    assert keys == set(nfi_eval.max_linf)
    families = {k.family for k in typed}
    assert families == {"pgd", "cw", "apgd_ce", "apgd_t", "fab_t", "square", "route"}
    for key, linf in nfi_eval.max_linf.items():
        assert linf <= EPS + 1e-6, key
        lo, hi = nfi_eval.pixel_range[key]
        assert lo >= 0.0 and hi <= 1.0, key
    for key in ("pgd@tradeoff", "cw@routed:hard", "apgd_ce@tradeoff", "route@routed:all_heads"):
        assert nfi_eval.max_linf[key] > EPS - 0.05, key  # they do use the budget


def test_attacks_lower_accuracy_well_below_clean(nfi_eval):
    table = nfi_eval.report.table
    for row in ("routed", "tradeoff", "benign", "adversarial", "robust_part"):
        clean = table[row]["clean"]
        assert clean > 0.7, row  # the briefly trained model does classify MNIST
        for column in ("pgd", "cw", "autoattack"):
            if row in ATTACKED:
                assert table[row][column] < 0.6 * clean, (row, column)
            else:  # not attacked white-box: no column, but transfers still reach its worst case
                assert table[row][column] is None, (row, column)
        assert table[row]["worst_case"] < 0.8 * clean, row
    # The report says which rows no white-box attack targeted (their worst case is transfer only).
    md = report.markdown(nfi_eval.report).splitlines()
    assert not any(ln.startswith("- Not run:") for ln in md)  # all of AutoAttack ran
    line = next(ln for ln in md if ln.startswith("- Attacked white-box:"))
    assert line.startswith("- Attacked white-box: routed (NFI), trade-off head, robust part alone. "
                           "The worst case of benign head, adversarial head, non-robust part alone ")


def test_judged_pgd_returns_the_iterate_that_fooled_the_judge_not_the_last():
    # One-pixel images; the objective pulls the pixel up through the whole ball, the judge is
    # fooled only inside a narrow strip the path crosses mid-way. Whoever starts below the strip
    # crosses it (strip width 0.05 > step 0.04) and must come back with a point inside it, although
    # the last iterate (0.8, the top of the ball) is not adversarial.
    x = np.full((64, 1, 1, 1), 0.5, np.float32)
    y = np.zeros(64, np.int32)
    objective = lambda z, yy, aux: tf.reshape(z, [-1])
    in_strip = lambda z: tf.logical_and(z >= 0.6, z <= 0.65)
    judge = lambda z: tf.stack([tf.zeros([tf.shape(z)[0]]),
                                tf.where(in_strip(tf.reshape(z, [-1])), 1.0, -1.0)], axis=1)
    attack = JudgedPGD(objective, judge, ThreatModel("linf", 0.3, 0.04), steps=20, name="strip",
                       schedule="constant")
    x_adv = attack.run(x, y, seed=1)
    assert np.max(np.abs(x_adv - x)) <= 0.3 + 1e-6
    v = x_adv.reshape(-1)
    fooled = (v >= 0.6) & (v <= 0.65)
    assert fooled.sum() > 20  # about 2/3 of the uniform starts lie below the strip
    assert np.all(fooled | (v > 0.65))  # the others started above it and end at the top
    np.testing.assert_allclose(v[~fooled], 0.8, atol=1e-6)


def test_step_schedules():
    np.testing.assert_allclose(step_sizes(0.3, 8), [0.075] * 4 + [0.0375] * 2 + [0.01875] * 2)
    np.testing.assert_allclose(step_sizes(0.3, 4, 0.1, "constant"), [0.1] * 4)
    with pytest.raises(ValueError, match="Received: schedule='cosine'"):
        step_sizes(0.3, 4, schedule="cosine")


def test_route_aware_attacks_are_at_least_as_strong_as_naive_pgd_through_the_hard_switch(
        trained_mnist_dir, tmp_path):
    # Same steps for both; the route-aware column is the per-example worst over its attacks.
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "route")
    cfg = EvalConfig(model_dir=model_dir, attacks=("clean", "pgd", "route_aware"),
                     **dict(SMALL, pgd_steps=20, route_steps=20, step_size=0.03))
    r = evaluate_model(cfg, log=lambda m: None)
    routed = r.correct["routed"]
    naive = routed["pgd@routed:hard"].mean()
    planned = plan.planned_from_keys(list(routed), r.report.suite_keys)
    route_cols = [str(k) for k in plan.column_keys(planned, "route_aware", "routed")]
    assert len(route_cols) == 1 + 2 * 1 + 2 * 1  # all heads, 2 routes x 1 class, st and soft x 1 temp
    route_acc = wc.all_correct({k: routed[k] for k in route_cols}).mean()
    assert r.report.table["routed"]["clean"] > 0.7
    assert route_acc <= naive, (route_acc, naive)
    # All heads wrong at once makes the route irrelevant: that attack alone beats naive PGD here.
    assert routed["route@routed:all_heads"].mean() <= naive


def test_straight_through_logits_equal_the_hard_routed_output_and_carry_a_gradient(classifier,
                                                                                   mnist_test_arrays):
    x = tf.constant(mnist_test_arrays[0][:64])
    out = classifier(x, training=False)
    st = switch.relaxed_logits(out, "straight_through", 1.0)
    np.testing.assert_array_equal(st.numpy(), out["routed"].numpy())  # forward: bit for bit
    for mode in ("straight_through", "soft"):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = tf.reduce_sum(switch.relaxed_logits(classifier(x, training=False), mode, 1.0))
        assert float(tf.reduce_max(tf.abs(tape.gradient(value, x)))) > 0.0, mode
    # The switch weights' gradient is what straight-through adds over the selected head's own.
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        o = classifier(x, training=False)
        st_sum = tf.reduce_sum(switch.relaxed_logits(o, "straight_through", 1.0))
        hard_sum = tf.reduce_sum(o["routed"])
    diff = tape.gradient(st_sum, x) - tape.gradient(hard_sum, x)
    assert float(tf.reduce_max(tf.abs(diff))) > 0.0
    with pytest.raises(ValueError, match="Received: mode='cold'"):
        switch.relaxed_logits(out, "cold", 1.0)


def test_route_targeted_objective_rises_when_the_deciding_scores_agree_on_the_target(classifier,
                                                                                     mnist_test_arrays):
    x, y = mnist_test_arrays[0][:64], mnist_test_arrays[1][:64]
    out = classifier(tf.constant(x), training=False)
    t_own = np.argmax(out["tradeoff"].numpy(), 1)  # mostly the true class on clean images
    t_other = (t_own + 1) % 10
    benign = route_aware.route_target(classifier, "benign")
    own, judged = benign(tf.constant(x), tf.constant(y), tf.constant(t_own))
    other, _ = benign(tf.constant(x), tf.constant(y), tf.constant(t_other))
    own, other = own.numpy(), other.numpy()
    np.testing.assert_array_equal(judged.numpy(), out["routed"].numpy())  # the judge, same pass
    assert np.mean(own > other) > 0.9
    with pytest.raises(ValueError, match="Received: route='tradeoff'"):
        route_aware.route_target(classifier, "tradeoff")


# === AutoAttack's suite ===


def test_autoattack_runs_each_attack_only_on_points_still_robust(nfi_eval):
    cum = nfi_eval.report.autoattack_cumulative
    for row, steps in cum.items():
        values = [steps[f] for f in ("apgd_ce", "apgd_t", "fab_t", "square")]
        assert values == sorted(values, reverse=True), row  # robust accuracy never rises
        assert values[-1] == pytest.approx(nfi_eval.report.table[row]["autoattack"]), row
    # A suite attack never attacks an image the suite had already broken: there its input is x.
    corr = nfi_eval.correct["tradeoff"]
    skipped = ~(corr["clean"] & corr["apgd_ce@tradeoff"])
    assert skipped.sum() > 10
    np.testing.assert_array_equal(corr["apgd_t@tradeoff"][skipped], corr["clean"][skipped])
    deviations = nfi_eval.report.settings.autoattack_deviations
    assert "APGD 5 iterations (standard: 100)" in deviations
    assert "Square 40 queries (standard: 5,000)" in deviations


# === The worst case ===


def test_worst_case_is_never_above_any_single_attack_example_by_example(nfi_eval):
    table = nfi_eval.report.table
    for row, by_key in nfi_eval.correct.items():
        worst = nfi_eval.worst[row]
        assert len(by_key) == len(nfi_eval.report.attack_keys)
        for key, correct in by_key.items():
            assert not np.any(worst & ~correct), (row, key)
        for column in nfi_eval.report.columns:
            if table[row][column] is not None:
                assert table[row]["worst_case"] <= table[row][column] + 1e-12, (row, column)
    # The routed model's robust accuracy takes transfers from the heads into account.
    routed = nfi_eval.correct["routed"]
    assert not np.any(nfi_eval.worst["routed"] & ~routed["pgd@tradeoff"])
    # Each routed column is the per-example worst over the hard, straight-through and soft variants.
    pgd = wc.all_correct({k: routed[k] for k in ("pgd@routed:hard", "pgd@routed:st", "pgd@routed:soft")})
    assert table["routed"]["pgd"] == pytest.approx(pgd.mean())


def test_worst_case_aggregator_and_column_keys_on_a_hand_made_table():
    correct = {
        "clean": np.array([1, 1, 1, 0, 1], bool),
        "pgd@tradeoff": np.array([1, 0, 1, 0, 1], bool),
        "route@routed:benign_route#1": np.array([1, 1, 0, 1, 1], bool),
        "route@routed:all_heads": np.array([1, 1, 1, 1, 0], bool),
        "route@routedx": np.array([0, 0, 0, 0, 0], bool),  # another output, not a variant
    }
    np.testing.assert_array_equal(wc.all_correct(correct), [0, 0, 0, 0, 0])
    del correct["route@routedx"]
    np.testing.assert_array_equal(wc.all_correct(correct), [1, 0, 0, 0, 0])
    planned = plan.planned_from_keys([parse_record_key(k) for k in correct], [])
    assert [str(k) for k in plan.column_keys(planned, "route_aware", "routed")] == [
        "route@routed:benign_route#1", "route@routed:all_heads"]
    assert [str(k) for k in plan.column_keys(planned, "pgd", "tradeoff")] == ["pgd@tradeoff"]
    assert plan.column_keys(planned, "pgd", "routed") == []
    with pytest.raises(ValueError):
        wc.all_correct({})
    logits = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    np.testing.assert_allclose(wc.margin(logits, np.array([0, 2])), [1.0, -4.0])
    keys, idx = wc.worst_inputs({"a": np.array([1.0, -2.0]), "b": np.array([0.5, 3.0])})
    assert [keys[i] for i in idx] == ["b", "a"]


def _plan(method, cfg):
    subject = Subject(method=Method(method), rows=scored_for(method), classifier=None, score=None,
                      dataset="x", num_classes=10, class_names=(), fingerprint="", out_dir=None)
    return plan.plan_attacks(subject, cfg, plan.applicable(subject, cfg)[0])


def test_attack_plan():
    cfg = lambda attacks, **kw: EvalConfig(model_dir="x", attacks=attacks, **kw)  # noqa: E731
    nfi = _plan("nfi", cfg(("clean", "pgd", "route_aware"), route_targets=2,
                               route_temperatures=(1.0, 5.0)))
    keys = [str(p.key) for p in nfi]
    assert {"pgd@routed:hard", "pgd@routed:st", "pgd@routed:soft", "pgd@tradeoff"} <= set(keys)
    route = [str(p.key) for p in nfi if p.family == "route"]
    assert route == ["route@routed:all_heads", "route@routed:benign_route#1", "route@routed:benign_route#2",
                     "route@routed:adversarial_route#1", "route@routed:adversarial_route#2",
                     "route@routed:st_T1", "route@routed:st_T5", "route@routed:soft_T1",
                     "route@routed:soft_T5"]
    limited = _plan("nfi", cfg(("pgd",), attack_outputs=("routed", "tradeoff")))
    assert {p.target for p in limited} == {"routed", "tradeoff"}
    with pytest.raises(NfiError, match="Received: attack_outputs=routed,feature"):
        _plan("nfi", cfg(("pgd",), attack_outputs=("routed", "feature")))
    aa = _plan("nfi", cfg(("autoattack", "apgd_ce")))
    assert all(p.suite for p in aa)  # apgd_ce inside autoattack is not run twice
    assert [str(p.key) for p in aa if p.target == "routed"][-1] == "square@routed"  # Square: hard output only
    assert [p.family for p in aa if p.target == "tradeoff"] == ["apgd_ce", "apgd_t", "fab_t", "square"]
    trades = _plan("trades", cfg(("pgd", "apgd_t", "route_aware")))
    assert {p.target for p in trades} == {"tradeoff", "robust_part", "nonrobust_part"}
    assert not any(p.family == "route" for p in trades)


# === Records, merging, the exported model ===


def test_records_round_trip_and_merge_is_the_per_example_worst_case(trained_mnist_dir, tmp_path, nfi_eval,
                                                                    mnist_test_arrays):
    saved = records.load(os.path.join(nfi_eval.report.model_dir, report.EVAL_NPZ))
    np.testing.assert_array_equal(saved["labels"], nfi_eval.labels)
    for row, by_key in nfi_eval.correct.items():
        for key, v in by_key.items():
            np.testing.assert_array_equal(saved["correct"][row][key], v)
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "merge")
    a = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", "pgd"), seed=5,
                                  **{**SMALL, "pgd_steps": 2}), log=lambda m: None)
    first = os.path.join(model_dir, "first.npz")
    os.replace(os.path.join(model_dir, report.EVAL_NPZ), first)
    b = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", "square"), seed=6,
                                  save_adversarial=True, **SMALL), log=lambda m: None)
    with np.load(os.path.join(model_dir, report.EVAL_NPZ)) as z:
        worst_inputs = z["adversarial|routed"]
    assert worst_inputs.shape == (64, 28, 28, 1)
    assert np.max(np.abs(worst_inputs - mnist_test_arrays[0][:64])) <= EPS + 1e-6
    # The kept image is the one each example's worst case came from: wrong where it is not robust.
    fooled_by_kept = np.argmax(load_classifier(os.path.join(model_dir, "model.keras"))(
        worst_inputs, training=False)["routed"].numpy(), 1) != b.labels
    np.testing.assert_array_equal(fooled_by_kept, ~b.worst["routed"])
    merged = merge_evaluations([first, os.path.join(model_dir, report.EVAL_NPZ)], model_dir,
                               log=lambda m: None)
    for row in ("routed", "tradeoff"):
        expected = (a.worst[row] & b.worst[row]).mean()
        assert merged["worst_case"][row] == pytest.approx(expected)
        assert merged["worst_case"][row] <= min(a.worst[row].mean(), b.worst[row].mean())
    assert merged["runs"][0] is None and merged["runs"][1]["seed"] == 6  # read through EvalReport
    assert merged["runs"][1]["eval_json_version"] == EVAL_JSON_VERSION
    assert os.path.exists(os.path.join(model_dir, report.MERGED_MD))
    other = _copy_model_dir(trained_mnist_dir, tmp_path / "other")
    evaluate_model(EvalConfig(model_dir=other, attacks=("clean",), **{**SMALL, "eval_examples": 32}),
                   log=lambda m: None)
    with pytest.raises(NfiError, match="covers other images"):
        records.merge([first, os.path.join(other, report.EVAL_NPZ)])


@pytest.mark.large  # exports the model first
def test_the_exported_onnx_model_is_scored_and_attacked_through_onnx_runtime(trained_mnist_dir, tmp_path):
    from export.config import ExportConfig
    from export.exporter import ONNX_FILE, export_model

    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "onnx")
    export_model(ExportConfig(model_dir=model_dir, output_dir=str(tmp_path / "export"),
                              parity_examples=32), log=lambda m: None)
    onnx_path = str(tmp_path / "export" / ONNX_FILE)
    r = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", "pgd"), onnx=onnx_path,
                                  **SMALL), log=lambda m: None)
    onnx_row, keras_row = r.correct[ONNX_ROW], r.correct["routed"]
    # The exported model answers as the Keras one (parity), so it scores the same inputs the same.
    for key in ("clean", "pgd@tradeoff", "pgd@routed:hard"):
        assert np.mean(onnx_row[key] == keras_row[key]) > 0.98, key
    summary = r.report.onnx
    assert summary.square_onnx < summary.clean  # Square through ONNX Runtime does bite
    assert summary.worst_case <= summary.transfer_of_every_keras_attack
    assert "exported ONNX" in report.text_table(r.report)
    with pytest.raises(NfiError, match="no ONNX model"):
        evaluate_model(EvalConfig(model_dir=model_dir, onnx=str(tmp_path / "none.onnx"), **SMALL))


# === Route statistics and Figure 1 (right) ===


def test_route_statistics(nfi_eval):
    stats = nfi_eval.report.route_stats
    for by_route in (stats.clean, stats.worst_case_adversarial):
        shares = [v.share for v in by_route.values()]
        assert sum(shares) == pytest.approx(1.0)
        assert sum(v.count for v in by_route.values()) == 64
    clean = stats.clean
    acc = sum(v.count * (v.accuracy or 0.0) for v in clean.values()) / 64
    assert acc == pytest.approx(nfi_eval.report.table["routed"]["clean"])


def test_feature_overlap_on_hand_made_features():
    # Two classes; class 0 lives on dims 0-1, class 1 on dims 2-3 (kernel = which class a dim feeds).
    kernel = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], np.float32)
    clean = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], np.float32)
    labels = np.array([0, 0, 1, 1])
    ref = feature_overlap.class_reference_dims(clean, labels, kernel, 2)
    np.testing.assert_array_equal(ref, [[1, 1, 0, 0], [0, 0, 1, 1]])
    # The attacked first image (class 0) now carries class 1's features and is predicted 1.
    adv = clean.copy()
    adv[0] = [0.1, 0, 1, 1]
    out = feature_overlap.analyse(clean, labels, adv, np.array([1, 0, 1, 1]), kernel, 2, ("a", "b"))
    assert out["fooled"] == 1
    assert out["summary"]["clean_with_true_class"] == 2.0
    assert out["summary"]["fooled_with_adversarial_class"] == 2.0
    assert out["attacked_by_adversarial_class"][1][1] == 2.0
    assert out["attacked_by_adversarial_class"][0] == [None, None]  # nothing was pushed to class 0
    assert out["attacked_by_true_class"][1][1] == 2.0  # the untouched class-1 images


# === Report, CLI, determinism ===


def test_report_files_exist_and_parse_with_the_rows_and_columns(nfi_eval):
    model_dir = nfi_eval.report.model_dir
    with open(os.path.join(model_dir, report.EVAL_JSON)) as f:
        saved = json.load(f)
    assert saved["version"] == EVAL_JSON_VERSION
    assert EvalReport.load(os.path.join(model_dir, report.EVAL_JSON)) == nfi_eval.report  # round trip
    rows = ["routed", "tradeoff", "benign", "adversarial", "robust_part", "nonrobust_part"]
    columns = ["clean", "pgd", "cw", "autoattack", "route_aware", "worst_case"]
    assert saved["rows"] == rows and saved["columns"] == columns
    assert set(saved["table"]) == set(rows)
    assert all(set(saved["table"][r]) == set(columns) for r in rows)
    assert saved["table"]["tradeoff"]["route_aware"] is None  # route-aware attacks the routed model only
    assert saved["examples"] == 64 and saved["settings"]["pgd"]["steps"] == 5
    with open(os.path.join(model_dir, report.EVAL_MD)) as f:
        md = f.read()
    for title in list(report.ROW_TITLES.values())[:1] + ["PGD-5", "AutoAttack", "route-aware", "worst case",
                                                         "hard switch", "## Routes", "FAB-T", "Square"]:
        assert title in md, title
    with open(os.path.join(model_dir, saved["feature_overlap"]["json"])) as f:
        overlap = json.load(f)
    assert len(overlap["attacked_by_true_class"]) == 10 and overlap["k"] == 10
    with open(os.path.join(model_dir, saved["feature_overlap"]["png"]), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in os.listdir(model_dir) if n.startswith(".")]  # no temporary leftovers


def test_every_attacks_time_is_recorded_and_summed_by_family(nfi_eval):
    r = nfi_eval.report
    times = r.seconds_by_attack
    assert set(times) == {k for k in r.attack_keys if not k.is_clean}
    assert all(v > 0 for v in times.values())
    assert sum(times.values()) <= r.seconds  # the whole evaluation also loads and scores clean
    by_family = report.seconds_by_family(r)
    assert sum(by_family.values()) == pytest.approx(sum(times.values()))
    assert "AutoAttack square" in by_family and "route" in by_family and "pgd" in by_family
    assert "Time by attack family" in report.markdown(r)
    # Hand-made: suite keys go to their own AutoAttack entry, variants and targets add up.
    seconds = {"pgd@routed:hard": 1.0, "pgd@routed:st": 2.0, "apgd_ce@routed:hard": 4.0,
               "route@routed:benign_route#1": 8.0, "route@routed:benign_route#2": 16.0}
    made = SimpleNamespace(suite_keys=[AttackKey.parse("apgd_ce@routed:hard")],
                           seconds_by_attack={AttackKey.parse(k): v for k, v in seconds.items()})
    assert report.seconds_by_family(made) == {"pgd": 3.0, "AutoAttack apgd_ce": 4.0, "route": 24.0}
    assert report.seconds_by_family(SimpleNamespace(suite_keys=[], seconds_by_attack={})) == {}


def test_reports_name_only_the_attacks_that_ran_and_the_trade_off_heads_gap(nfi_eval, trained_mnist_dir,
                                                                           tmp_path):
    summary = nfi_eval.report.routed_adaptive
    assert summary.gap_naive_minus_worst_case == pytest.approx(
        summary.naive_hard_switch_pgd - summary.worst_case)
    assert summary.tradeoff_gap_pgd_minus_worst_case == pytest.approx(
        summary.tradeoff_pgd - summary.tradeoff_worst_case)
    assert "the trade-off head, which has no switch" in report.text_table(nfi_eval.report)
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "pgd_only")
    r = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", "pgd"), **SMALL), log=lambda m: None)
    md = report.markdown(r.report)
    for absent in ("APGD", "FAB", "Square", "AutoAttack", "route-aware"):
        assert absent not in md, absent


def test_same_seed_same_numbers_and_trades_rows(trained_mnist_trades_dir, tmp_path):
    model_dir = _copy_model_dir(trained_mnist_trades_dir, tmp_path / "trades")
    cfg = EvalConfig(model_dir=model_dir, attacks=("clean", "pgd", "apgd_ce", "route_aware"),
                     **dict(SMALL, eval_examples=32, batch_size=32, pgd_steps=3, apgd_steps=3))
    a = evaluate_model(cfg, log=lambda m: None)
    b = evaluate_model(cfg, log=lambda m: None)
    assert a.report.table == b.report.table
    for row in a.correct:
        for key in a.correct[row]:
            np.testing.assert_array_equal(a.correct[row][key], b.correct[row][key])
    assert a.report.rows == ["tradeoff", "robust_part", "nonrobust_part"]
    assert a.report.columns == ["clean", "pgd", "apgd_ce", "worst_case"]
    assert a.report.routed_adaptive is None and a.report.route_stats is None
    assert any("route-aware attacks skipped" in n for n in a.report.notes)
    # Part of AutoAttack ran: the report names the rest, so nobody reads it as AutoAttack's.
    notes = [ln for ln in report.markdown(a.report).splitlines() if ln.startswith("- Not run:")]
    assert notes == ["- Not run: APGD-T, FAB-T, Square (AutoAttack's other attacks), so this is "
                     "not AutoAttack's full evaluation."]


def test_config_rejects_bad_values_naming_them():
    with pytest.raises(NfiError, match="Received: attacks=pgd,fgsm"):
        parse_attacks("pgd,fgsm")
    assert parse_attacks("apgd_dlr,clean,pgd,pgd,adaptive") == ("clean", "pgd", "apgd_t", "route_aware")
    with pytest.raises(NfiError, match="Received: eval_examples=0"):
        validate(EvalConfig(model_dir="x", eval_examples=0))
    with pytest.raises(NfiError, match="Received: epsilon=2"):
        validate(EvalConfig(model_dir="x", epsilon=2.0))
    with pytest.raises(NfiError, match="Received: route_temperatures="):
        validate(EvalConfig(model_dir="x", route_temperatures=(0.0,)))
    with pytest.raises(ValueError):  # NfiError is a ValueError for Python callers
        validate(EvalConfig(model_dir="x", square_queries=0))


def _cli(*args):
    return run_cli("nfi_tf.evaluate", *args, timeout=900)


@pytest.mark.large
def test_cli_end_to_end(trained_mnist_dir, tmp_path):
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "cli")
    out = _cli(f"--model_dir={model_dir}", "--attacks=clean,pgd", "--eval_examples=32",
               "--batch_size=32", "--pgd_steps=2", "--step_size=0.15", "--verbose=0")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "routed (NFI)" in out.stdout and "worst case" in out.stdout
    with open(os.path.join(model_dir, "eval.json")) as f:
        saved = json.load(f)
    assert saved["columns"] == ["clean", "pgd", "worst_case"] and saved["examples"] == 32
    assert os.path.exists(os.path.join(model_dir, "eval.md"))
    assert os.path.exists(os.path.join(model_dir, "eval.npz"))


@pytest.mark.parametrize("args, message", [
    (("--model_dir=/nonexistent/model",), "model dir /nonexistent/model does not exist"),
    (("--model_dir=.", "--attacks=pgd,fgsm"), "Received: attacks=pgd,fgsm"),
    (("--model_dir=.", "--route_temperatures=a"), "Received: route_temperatures='a'"),
])
@pytest.mark.large
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    out = _cli(*args)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("nfi_tf.evaluate: error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]


def test_cascade_attacks_only_what_every_earlier_attack_left_robust(trained_mnist_dir, tmp_path):
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "cascade")
    attacks = ("clean", "pgd", "autoattack", "route_aware")
    r = evaluate_model(EvalConfig(model_dir=model_dir, attacks=attacks, cascade=True,
                                  attack_outputs=("routed", "tradeoff"), **SMALL), log=lambda m: None)
    assert r.report.columns == ["clean", "worst_case"] and r.report.settings.worst_case_mode == "cascade"
    assert r.report.autoattack_cumulative is None
    after = r.report.cascade_cumulative["tradeoff"]
    assert list(after) == ["pgd", "apgd_ce", "apgd_t", "fab_t", "square", "route"]
    assert list(after.values()) == sorted(after.values(), reverse=True)  # never rises
    assert after["route"] == pytest.approx(r.report.table["tradeoff"]["worst_case"])
    # An image PGD broke on the trade-off head is never attacked again for it: later inputs are x.
    corr = r.correct["tradeoff"]
    broken = corr["clean"] & ~corr["pgd@tradeoff"]
    assert broken.sum() > 5
    for key in ("apgd_ce@tradeoff", "square@tradeoff"):
        assert corr[key][broken].all(), key
    assert r.max_linf["pgd@tradeoff"] > EPS - 0.05
    assert "Worst case in cascade" in report.markdown(r.report)


def test_split_validation_evaluates_the_held_out_train_images_into_their_own_dir(trained_mnist_dir,
                                                                                 tmp_path):
    from nfi_tf import data
    from nfi_tf.config import Config

    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path / "val")
    small = dict(SMALL, eval_examples=32, batch_size=32)
    # The fixture held nothing out: a one-line error naming the flag, and no file written.
    with pytest.raises(NfiError, match="validation_examples"):
        evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", "pgd"), split="validation",
                                  **small), log=lambda m: None)
    assert not os.path.exists(os.path.join(model_dir, "validation", "eval.json"))
    path = os.path.join(model_dir, "config.json")
    cfg = json.load(open(path))
    cfg["data"]["validation_examples"] = 300
    json.dump(cfg, open(path, "w"))
    r = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", "pgd"), split="validation",
                                  **small), log=lambda m: None)
    saved = EvalReport.load(os.path.join(model_dir, "validation", "eval.json"))
    assert not os.path.exists(os.path.join(model_dir, "eval.json"))  # the test report is untouched
    assert any("validation images" in n for n in saved.notes)
    assert saved.settings.split == "validation"
    assert "32 validation images" in report.text_table(saved)
    assert "32 validation images" in report.markdown(saved)
    assert r.report.settings.split == "validation"
    # The images were the last 300 of the train split (their first 32), not test images.
    data_cfg = Config.from_dict(cfg).data
    x, y = data.load_arrays(data_cfg, data.validation_split(data_cfg), None)
    clf = load_classifier(os.path.join(model_dir, "model.keras"))
    clean = np.argmax(clf(data.uint8_to_float(x[:32]), training=False)["routed"], 1) == y[:32]
    assert r.report.table["routed"]["clean"] == pytest.approx(clean.mean())
    test_x, _ = data.load_arrays(data_cfg, "test", 32)
    assert not np.array_equal(x[:32], test_x)


def test_split_must_be_test_or_validation():
    with pytest.raises(NfiError, match="split must be one of test, validation. Received: split=train"):
        validate(EvalConfig(model_dir="m", split="train"))
