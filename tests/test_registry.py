"""The attack registry, attack keys and the typed evaluation report (no model needed)."""

import dataclasses
import json

import numpy as np
import pytest

from nfi_tf.attacks.base import Target
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import plan, suite
from nfi_tf.evaluation.config import ATTACKS, EvalConfig
from nfi_tf.evaluation.keys import CLEAN, AttackKey, parse_record_key
from nfi_tf.evaluation.report import VERSION, EvalReport, sections
from nfi_tf.evaluation.subject import Subject
from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.suite.budgets import Budgets
from nfi_tf.evaluation.vocab import RouteVariant, Switch
from nfi_tf.outputs import scored_for
from nfi_tf.vocab import Method


def planned(method, cfg, num_classes=10):
    """The plan's attacks for a model of `method` (no model needed: only its outputs)."""
    subject = Subject(method=Method(method), rows=scored_for(method), classifier=None, score=None,
                      dataset="x", num_classes=num_classes, class_names=(), fingerprint="", out_dir=None)
    specs, notes = plan.applicable(subject, cfg)
    return plan.plan_attacks(subject, cfg, specs), notes


def test_attack_keys_round_trip_through_their_text_and_reject_garbage():
    for text in ("pgd@tradeoff", "cw@routed:hard", "route@routed:benign_route#2", "route@routed:st_T0.1",
                 "apgd_t@routed:soft~run3"):
        assert str(AttackKey.parse(text)) == text
    key = AttackKey.parse("route@routed:benign_route#2")
    assert (key.family, key.target, key.variant, key.aux, key.run) == (
        "route", "routed", RouteVariant.steer("benign"), 2, 0)
    assert AttackKey.parse("route@routed:st_T0.1").variant == RouteVariant.relaxed(
        Switch.STRAIGHT_THROUGH, 0.1)
    assert AttackKey.parse("cw@routed:hard").variant is Switch.HARD
    assert str(key.in_run(2)) == "route@routed:benign_route#2~run2"
    assert parse_record_key("clean") == CLEAN and CLEAN.is_clean and str(CLEAN) == "clean"
    # A key equals its text (dicts keyed by keys answer the text a file stores) and sorts like it.
    assert key == "route@routed:benign_route#2" and {key: 1}["route@routed:benign_route#2"] == 1
    assert sorted([AttackKey.parse("pgd@tradeoff"), CLEAN]) == [CLEAN, AttackKey.parse("pgd@tradeoff")]
    for bad in ("pgd", "pgd@", "@routed", "pgd@routed#x", "pgd routed", "route@routed:sideways_T1",
                "cw@routed:lukewarm"):
        with pytest.raises(NfiError, match="not an attack key"):
            AttackKey.parse(bad)


def test_the_registry_declares_the_suite_the_options_and_the_budgets_once():
    assert suite.autoattack() == ("apgd_ce", "apgd_t", "fab_t", "square")  # AutoAttack's own order
    assert ATTACKS == ("clean", "pgd", "cw", "apgd_ce", "apgd_t", "fab_t", "square", "autoattack",
                       "route_aware")
    fields = [b.field for b in registry.budgets()]
    assert len(fields) == len(set(fields))  # each budget declared by exactly one attack
    defaults = EvalConfig(model_dir="x")
    for b in registry.budgets():  # EvalConfig's defaults are the registry's standard budget
        assert getattr(defaults, b.field) == b.standard, b.field
    assert suite.budget("standard")["square_queries"] == 5000
    cpu = suite.budget("cpu")
    assert (cpu["apgd_steps"], cpu["apgd_targets"], cpu["fab_steps"], cpu["square_queries"]) == (
        50, 3, 50, 1000)
    with pytest.raises(ValueError, match="Received: budget='fast'"):
        suite.budget("fast")


def test_deviations_name_exactly_the_budgets_below_standard_for_the_attacks_that_ran():
    cfg = EvalConfig(model_dir="x", **suite.budget("cpu"))
    values = Budgets.of(cfg, None, 10).values
    assert registry.deviations({"apgd_ce", "apgd_t", "fab_t", "square"}, values, 10) == [
        "APGD 50 iterations (standard: 100)", "APGD-T 3 targets (standard: 9)",
        "FAB-T 50 iterations (standard: 100)", "FAB-T 3 targets (standard: 9)",
        "Square 1000 queries (standard: 5,000)"]
    assert registry.deviations({"pgd", "route"}, values, 10) == []
    # Three classes: at most 2 targets exist, so 2 is the standard there (and targets are capped).
    three = Budgets.of(EvalConfig(model_dir="x"), None, 3).values
    assert three["apgd_targets"] == 2
    assert registry.deviations({"apgd_t"}, three, 3) == []


def test_every_registered_attack_reports_its_settings_and_a_note_from_them():
    from nfi_tf.attacks.threat import ThreatModel
    from nfi_tf.config import AttackConfig

    b = Budgets.of(EvalConfig(model_dir="x", **suite.budget("cpu")), AttackConfig(0.3, 0.01, 40), 10)
    threat = ThreatModel("linf", 0.3)
    settings = {spec.entry: spec.settings(b, threat) for spec in suite.specs()}
    assert settings["apgd"]["initial_step"] == pytest.approx(0.6)  # AutoAttack: 2 eps
    assert settings["square"]["p_init"] == 0.8
    notes = {spec.name: spec.note(settings[spec.entry]) for spec in suite.specs()}
    assert notes["pgd"].startswith("PGD-40: cross-entropy, step 0.01")
    assert "1000 queries, p_init 0.8" in notes["square"]
    assert "3 target classes, 50 iterations each" in notes["fab_t"]
    assert "temperatures 0.1, 1, 10; 50 steps each" in notes["route"]


def test_one_built_attack_runs_on_a_plain_classifier_through_one_entry_point():
    import tensorflow as tf

    from nfi_tf.attacks.threat import ThreatModel
    from nfi_tf.config import AttackConfig

    # A linear 2-class model on 4-pixel images: class 1 wins when the pixel mean exceeds 0.5.
    w = tf.constant([[-1.0, 1.0]] * 4)
    logits = lambda z: tf.reshape(z, [-1, 4]) @ w - tf.constant([0.0, 2.0])  # noqa: E731
    x = np.full((8, 2, 2, 1), 0.3, np.float32)
    y = np.zeros(8, np.int32)  # correct on the clean input (mean 0.3 < 0.5)
    b = Budgets.of(EvalConfig(model_dir="x", apgd_steps=10, square_queries=50, batch_size=8),
                   AttackConfig(0.25, 0.05, 10), 2)
    threat = ThreatModel("linf", 0.25)
    t = Target(logits)
    for name in ("pgd", "apgd_ce", "square"):
        attack = suite.get(name).build(b, threat)
        x_adv = attack.run(x, y, 0, t)
        assert np.max(np.abs(x_adv - x)) <= 0.25 + 1e-6, name
        # +0.25 on every pixel gives mean 0.55 > 0.5: every attack finds it on this easy model.
        assert np.all(np.argmax(logits(tf.constant(x_adv)).numpy(), 1) == 1), name


def _report(**over):
    fields = dict(model_dir="/m", dataset="mnist", method="nfi", examples=2, seed=0, rows=["routed"],
                  columns=["clean", "autoattack", "worst_case"],
                  table={"routed": {"clean": 1.0, "autoattack": 0.5, "worst_case": 0.5}},
                  attacks_run=["autoattack:apgd_ce"], suite_keys=[AttackKey("apgd_ce", "routed", "hard")],
                  settings=sections.Settings(epsilon=0.3),
                  attack_keys=[CLEAN, AttackKey("apgd_ce", "routed", "hard")],
                  accuracy_by_attack={"routed": {CLEAN: 1.0, AttackKey("apgd_ce", "routed", "hard"): 0.5}},
                  checks=sections.Checks({AttackKey("apgd_ce", "routed", "hard"): 0.3}), notes=[],
                  records="eval.npz",
                  seconds=1.5, seconds_by_attack={AttackKey("apgd_ce", "routed", "hard"): 1.0})
    fields.update(over)
    return EvalReport(**fields)


def test_eval_report_round_trips_and_old_files_load_or_fail_naming_their_version(tmp_path):
    r = _report()
    path = str(tmp_path / "eval.json")
    r.save(path)
    with open(path) as f:
        data = json.load(f)
    assert data["version"] == VERSION and data["suite_keys"] == ["apgd_ce@routed:hard"]
    assert "onnx" not in data  # optional sections absent, as before
    assert EvalReport.load(path) == r
    old = {k: v for k, v in data.items() if k not in ("version", "seconds_by_attack")}  # version 1
    loaded = EvalReport.from_json(old)
    assert loaded.suite_keys == r.suite_keys and loaded.seconds_by_attack == {}
    with pytest.raises(NfiError, match="is eval.json version 99; this nfi-tf reads versions 1, 2"):
        EvalReport.from_json({**data, "version": 99})
    with pytest.raises(NfiError, match=r"lacks table"):
        EvalReport.from_json({k: v for k, v in data.items() if k != "table"})
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(NfiError, match="cannot read the evaluation report"):
        EvalReport.load(str(tmp_path / "bad.json"))
    assert dataclasses.replace(r, seconds=2.0) != r  # equality sees the fields


def test_the_plan_reads_the_registry_order_and_variants():
    attacks, _ = planned("nfi", EvalConfig(model_dir="x", attacks=("pgd", "autoattack", "route_aware"),
                                           attack_outputs=("routed",), route_targets=1,
                                           route_temperatures=(1.0,)))
    families = list(dict.fromkeys(p.family for p in attacks))
    assert families == ["pgd", "apgd_ce", "apgd_t", "fab_t", "square", "route"]
    assert [p.key.variant for p in attacks if p.family == "apgd_ce"] == ["hard", "st", "soft"]
    assert [p.key.variant for p in attacks if p.family == "square"] == [None]  # the served output only
    assert [str(p.key.variant) for p in attacks if p.family == "route"] == [
        "all_heads", "benign_route", "adversarial_route", "st_T1", "soft_T1"]


def test_each_attacks_applicability_is_its_own_rule_and_becomes_one_note():
    cfg = EvalConfig(model_dir="x", attacks=("pgd", "autoattack", "route_aware"))
    attacks, notes = planned("trades", cfg, num_classes=3)
    assert "apgd_t" not in {p.family for p in attacks} and "route" not in {p.family for p in attacks}
    assert notes == ["route-aware attacks skipped: a TRADES model has no routing switch",
                     "APGD-T skipped: its targeted DLR loss needs >= 4 classes. Received: 3"]
    l2 = dataclasses.replace(cfg, norm="l2")
    attacks, notes = planned("nfi", l2)
    assert {p.family for p in attacks} == {"apgd_ce", "apgd_t", "fab_t", "square"}
    assert notes == ["PGD, route-aware skipped: no L2 version in nfi-tf yet"]
    assert suite.get("apgd_t").unavailable("linf", 3, True, True).startswith("APGD-T skipped")
    assert suite.get("square").unavailable("linf", 10, False, False) is None  # gradient-free
