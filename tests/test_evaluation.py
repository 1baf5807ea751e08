"""Evaluation (`python -m nfi_tf.evaluate`): the attacks, the per-example worst case, the
relaxed routing switch, the report files, the CLI, determinism.

One small evaluation of the briefly trained real-MNIST model (64 test images, few attack
steps, every attack family) is shared by most tests; it runs on a copy of the model dir so
the shared fixture stays untouched.
"""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli

from nfi_tf.errors import NfiError
from nfi_tf.evaluation import attacks_adaptive, autoattack, feature_overlap, report, switch
from nfi_tf.evaluation import worst_case as wc
from nfi_tf.evaluation.config import EvalConfig, parse_attacks, validate
from nfi_tf.evaluation.runner import evaluate_model
from nfi_tf.model_io import load_classifier

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EPS = 0.3
SMALL = dict(eval_examples=64, batch_size=64, step_size=0.1, pgd_steps=5, apgd_steps=5,
             apgd_targets=2, verbose=0)


def _copy_model_dir(src, dst):
    os.makedirs(dst, exist_ok=True)
    for name in ("config.json", "model.keras"):
        shutil.copy(os.path.join(src, name), os.path.join(dst, name))
    return str(dst)


@pytest.fixture(scope="module")
def nfi_eval(trained_mnist_dir, tmp_path_factory):
    model_dir = _copy_model_dir(trained_mnist_dir, tmp_path_factory.mktemp("eval_nfi"))
    return evaluate_model(EvalConfig(model_dir=model_dir, **SMALL), log=lambda m: None)


@pytest.fixture(scope="module")
def classifier(trained_mnist_dir):
    return load_classifier(os.path.join(trained_mnist_dir, "model.keras"))


# === The attacks ===


def test_every_attack_stays_in_the_eps_ball_and_pixel_range(nfi_eval):
    keys = {k.split("#")[0] for k in nfi_eval.report["attack_keys"] if k != wc.CLEAN}
    assert keys == set(nfi_eval.max_linf)
    families = {k.split("@")[0] for k in keys}
    assert families == {"pgd", "cw", "apgd_ce", "apgd_dlr", "pgd_naive", "pgd_soft"}
    for key, linf in nfi_eval.max_linf.items():
        assert linf <= EPS + 1e-6, key
        assert linf > EPS - 0.05, key  # they do use the budget
        lo, hi = nfi_eval.pixel_range[key]
        assert lo >= 0.0 and hi <= 1.0, key


def test_apgd_alone_stays_in_the_ball_and_reaches_targets(classifier, mnist_test_arrays):
    x, y = mnist_test_arrays
    x, y = x[:32], y[:32]
    model_fn = lambda z: classifier(z, training=False)["tradeoff"]
    apgd = autoattack.Apgd(model_fn, (28, 28, 1), 10, EPS, steps=5, restarts=1, batch_size=32)
    logits = model_fn(x).numpy()
    targets = autoattack.top_other_classes(logits, y, 1)[:, 0]
    assert not np.any(targets == y)
    for x_adv in (apgd.ce(x, y, (0, 1)), apgd.dlr_targeted(x, targets, (0, 2))):
        assert np.max(np.abs(x_adv - x)) <= EPS + 1e-6
        assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    hit = np.argmax(model_fn(apgd.dlr_targeted(x, targets, (0, 2))).numpy(), 1) == targets
    assert hit.mean() > 0.2  # a targeted attack that mostly reaches its target class


def test_vectorized_dlr_equals_arts_own_dlr_loss():
    import keras

    apgd_cls, classifier_cls = autoattack._art()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(10)])
    estimator = classifier_cls(model=lambda x, training=False: model(x), nb_classes=10,
                               input_shape=(4,), clip_values=(0.0, 1.0),
                               loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    art_dlr = apgd_cls(estimator, loss_type="difference_logits_ratio", eps=0.1, eps_step=0.2,
                       max_iter=1, targeted=True, verbose=False).estimator._loss_object
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(64, 10)).astype("float32"))
    onehot = tf.one_hot(rng.integers(0, 10, 64), 10)
    ours = autoattack.DlrLoss()
    for reduction in ("none", "mean", "sum"):
        art_dlr.reduction = ours.reduction = reduction
        np.testing.assert_allclose(ours(onehot, logits).numpy(), art_dlr(onehot, logits).numpy(),
                                   rtol=1e-6, atol=1e-6)


def test_pgd_and_apgd_lower_accuracy_well_below_clean(nfi_eval):
    table = nfi_eval.report["table"]
    for row in ("routed", "tradeoff", "benign", "adversarial", "robust_part"):
        clean = table[row]["clean"]
        assert clean > 0.7, row  # the briefly trained model does classify MNIST
        for column in ("pgd", "cw", "apgd_ce", "apgd_dlr"):
            assert table[row][column] < 0.6 * clean, (row, column)


# === The worst case ===


def test_worst_case_is_never_above_any_single_attack_example_by_example(nfi_eval):
    table = nfi_eval.report["table"]
    for row, by_key in nfi_eval.correct.items():
        worst = nfi_eval.worst[row]
        assert len(by_key) == len(nfi_eval.report["attack_keys"])
        for key, correct in by_key.items():
            assert not np.any(worst & ~correct), (row, key)
        for column in nfi_eval.report["columns"]:
            assert table[row]["worst_case"] <= table[row][column] + 1e-12, (row, column)
    # The routed model's robust accuracy takes transfers from the heads into account.
    routed = nfi_eval.correct["routed"]
    assert not np.any(nfi_eval.worst["routed"] & ~routed["pgd@tradeoff"])


def test_worst_case_aggregator_on_a_hand_made_table():
    correct = {
        "clean": np.array([1, 1, 1, 0, 1], bool),
        "pgd@tradeoff": np.array([1, 0, 1, 0, 1], bool),
        "apgd_dlr@tradeoff#1": np.array([1, 1, 0, 1, 1], bool),
        "apgd_dlr@tradeoff#2": np.array([1, 1, 1, 1, 0], bool),
        "apgd_dlr@tradeoff_x": np.array([0, 0, 0, 0, 0], bool),  # another target, not a target #
    }
    np.testing.assert_array_equal(wc.all_correct(correct), [0, 0, 0, 0, 0])
    del correct["apgd_dlr@tradeoff_x"]
    np.testing.assert_array_equal(wc.all_correct(correct), [1, 0, 0, 0, 0])
    assert wc.keys_of_column(correct, "apgd_dlr", "tradeoff") == ["apgd_dlr@tradeoff#1",
                                                                  "apgd_dlr@tradeoff#2"]
    dlr = {k: correct[k] for k in wc.keys_of_column(correct, "apgd_dlr", "tradeoff")}
    np.testing.assert_array_equal(wc.all_correct(dlr), [1, 1, 0, 1, 0])
    with pytest.raises(ValueError):
        wc.all_correct({})
    logits = np.array([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    np.testing.assert_allclose(wc.margin(logits, np.array([0, 2])), [1.0, -4.0])
    keys, idx = wc.worst_inputs({"a": np.array([1.0, -2.0]), "b": np.array([0.5, 3.0])})
    assert [keys[i] for i in idx] == ["b", "a"]


# === The routing switch, relaxed ===


def test_straight_through_switch_has_a_gradient_where_the_hard_switch_has_none(classifier,
                                                                                mnist_test_arrays):
    x = tf.constant(mnist_test_arrays[0][:64])
    grads, weights = {}, {}
    for mode in switch.MODES:
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = classifier(x, training=False)
            w = switch.route_weights(out, mode)
            objective = tf.reduce_sum(w[:, 0])  # "how benign do the inputs look"
        g = tape.gradient(objective, x)
        grads[mode] = 0.0 if g is None else float(tf.reduce_max(tf.abs(g)))
        weights[mode] = w.numpy()
    assert grads["hard"] == 0.0
    assert grads["straight_through"] > 0.0 and grads["soft"] > 0.0
    # Forward, the straight-through switch is the hard one, bit for bit.
    np.testing.assert_array_equal(weights["straight_through"], weights["hard"])
    out = classifier(x, training=False)
    np.testing.assert_array_equal(switch.routed_logits(out, "straight_through").numpy(),
                                  out["routed"].numpy())
    np.testing.assert_array_equal(switch.routed_logits(out, "hard").numpy(), out["routed"].numpy())
    np.testing.assert_array_equal(np.argmax(weights["hard"], 1), out["route"].numpy())
    np.testing.assert_allclose(weights["soft"].sum(1), 1.0, atol=1e-5)
    # A cold soft switch picks the hard route.
    cold = switch.route_weights(out, "soft", temperature=1e-3).numpy()
    assert np.mean(np.argmax(cold, 1) == out["route"].numpy()) > 0.95


def test_adaptive_attacks_are_reported_with_the_naive_gap(nfi_eval):
    summary = nfi_eval.report["routed_adaptive"]
    for name in ("naive_hard_switch_pgd", "straight_through_pgd", "soft_switch_pgd",
                 "transfer_pgd_from_tradeoff", "transfer_pgd_from_benign", "worst_case"):
        assert 0.0 <= summary[name] <= 1.0, name
    assert summary["worst_case"] <= summary["naive_hard_switch_pgd"]
    assert summary["gap_naive_minus_worst_case"] == pytest.approx(
        summary["naive_hard_switch_pgd"] - summary["worst_case"])


def test_attack_plan():
    nfi = attacks_adaptive.plan("nfi", ("clean", "pgd", "adaptive"))
    assert [p.key for p in nfi][-2:] == ["pgd_naive@routed", "pgd_soft@routed"]
    assert {p.target for p in nfi if p.family == "pgd"} == set(attacks_adaptive.ROWS_NFI)
    assert next(p for p in nfi if p.key == "pgd@routed").switch_mode == "straight_through"
    # adaptive implies PGD on every head (the routed model's transfer attacks).
    assert {p.key for p in attacks_adaptive.plan("nfi", ("adaptive",))} >= {"pgd@tradeoff", "pgd@benign"}
    trades = attacks_adaptive.plan("trades", ("pgd", "apgd_dlr", "adaptive"))
    assert {p.target for p in trades} == {"tradeoff", "robust_part", "nonrobust_part"}
    assert not any(p.family.startswith("pgd_") for p in trades)


# === Route statistics and Figure 1 (right) ===


def test_route_statistics(nfi_eval):
    stats = nfi_eval.report["route_stats"]
    for name in ("clean", "worst_case_adversarial"):
        shares = [v["share"] for v in stats[name].values()]
        assert sum(shares) == pytest.approx(1.0)
        assert sum(v["count"] for v in stats[name].values()) == 64
    clean = stats["clean"]
    acc = sum(v["count"] * (v["accuracy"] or 0.0) for v in clean.values()) / 64
    assert acc == pytest.approx(nfi_eval.report["table"]["routed"]["clean"])


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
    model_dir = nfi_eval.report["model_dir"]
    with open(os.path.join(model_dir, report.EVAL_JSON)) as f:
        saved = json.load(f)
    rows = ["routed", "tradeoff", "benign", "adversarial", "robust_part", "nonrobust_part"]
    columns = ["clean", "pgd", "cw", "apgd_ce", "apgd_dlr", "worst_case"]
    assert saved["rows"] == rows and saved["columns"] == columns
    assert set(saved["table"]) == set(rows)
    assert all(set(saved["table"][r]) == set(columns) for r in rows)
    assert saved["examples"] == 64 and saved["settings"]["pgd"]["steps"] == 5
    with open(os.path.join(model_dir, report.EVAL_MD)) as f:
        md = f.read()
    for title in list(report.ROW_TITLES.values()) + ["PGD-5", "APGD-CE", "APGD-T (DLR)", "worst case",
                                                     "hard switch", "## Routes"]:
        assert title in md, title
    with open(os.path.join(model_dir, saved["feature_overlap"]["json"])) as f:
        overlap = json.load(f)
    assert len(overlap["attacked_by_true_class"]) == 10 and overlap["k"] == 10
    with open(os.path.join(model_dir, saved["feature_overlap"]["png"]), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert not [n for n in os.listdir(model_dir) if n.startswith(".")]  # no temporary leftovers


def test_same_seed_same_numbers_and_trades_rows(trained_mnist_trades_dir, tmp_path):
    model_dir = _copy_model_dir(trained_mnist_trades_dir, tmp_path / "trades")
    cfg = EvalConfig(model_dir=model_dir, attacks=("clean", "pgd", "apgd_ce", "adaptive"),
                     **dict(SMALL, eval_examples=32, batch_size=32, pgd_steps=3, apgd_steps=3))
    a = evaluate_model(cfg, log=lambda m: None)
    b = evaluate_model(cfg, log=lambda m: None)
    assert a.report["table"] == b.report["table"]
    for row in a.correct:
        for key in a.correct[row]:
            np.testing.assert_array_equal(a.correct[row][key], b.correct[row][key])
    assert a.report["rows"] == ["tradeoff", "robust_part", "nonrobust_part"]
    assert a.report["columns"] == ["clean", "pgd", "apgd_ce", "worst_case"]
    assert "routed_adaptive" not in a.report and "route_stats" not in a.report
    assert any("adaptive attacks skipped" in n for n in a.report["notes"])


def test_config_rejects_bad_values_naming_them():
    with pytest.raises(NfiError, match="Received: attacks=pgd,fgsm"):
        parse_attacks("pgd,fgsm")
    assert parse_attacks("apgd_dlr,clean,pgd,pgd") == ("clean", "pgd", "apgd_dlr")
    with pytest.raises(NfiError, match="Received: eval_examples=0"):
        validate(EvalConfig(model_dir="x", eval_examples=0))
    with pytest.raises(NfiError, match="Received: epsilon=2"):
        validate(EvalConfig(model_dir="x", epsilon=2.0))


def _cli(*args):
    return run_cli("nfi_tf.evaluate", *args, timeout=900)


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


@pytest.mark.parametrize("args, message", [
    (("--model_dir=/nonexistent/model",), "model dir /nonexistent/model does not exist"),
    (("--model_dir=.", "--attacks=pgd,fgsm"), "Received: attacks=pgd,fgsm"),
])
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    out = _cli(*args)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = [line for line in out.stderr.splitlines() if line.startswith("nfi_tf.evaluate: error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr[-2000:]
