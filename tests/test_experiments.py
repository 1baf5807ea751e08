"""Experiments as data (nfi_tf/experiments): named budgets, the quickstart run, the reproduction's
runs against the committed results, a claim's verdict on hand-made paired records."""

import ast
import enum
import glob
import json
import os
import re

import numpy as np
import pytest
from absl import flags
from helpers import REPO

from flags import evaluate as evaluate_flags
from flags import train as train_flags
from nfi_tf import vocab
from nfi_tf.evaluation import records, suite
from nfi_tf.evaluation import vocab as evaluation_vocab
from nfi_tf.evaluation.report import EvalReport
from nfi_tf.experiments import QUICKSTART, budget, claims, plans, tables
from nfi_tf.experiments import __main__ as experiments_main
from nfi_tf.experiments.reproduction import plan
from nfi_tf.experiments.runs import QUICKSTART_FULL, QUICKSTART_ROBUST, train_flag_name

# What scripts/quickstart.sh ran before its run became data (2026-12-03), flag for flag, plus
# the fixed training subset (issue 26: the same images and time on a full 60,000-image MNIST).
QUICKSTART_TRAIN_FLAGS = ["--dataset=mnist", "--model_dir=M", "--epochs=3", "--attack_steps=10",
                          "--step_size=0.04", "--learning_rate=0.05", "--lr_decay_epochs=2",
                          "--eval_examples=500", "--train_examples=17435"]
QUICKSTART_EVAL_FLAGS = ["--model_dir=M", "--eval_examples=500",
                         "--attacks=clean,pgd,cw,autoattack,route_aware",
                         "--attack_outputs=routed,tradeoff", "--apgd_steps=50", "--apgd_targets=3",
                         "--fab_steps=50", "--fab_targets=3", "--square_queries=1000",
                         "--route_steps=50", "--route_targets=1",
                         # issue 26: the main job's worst case in cascade (same attacks, less work)
                         "--cascade=true"]
# Issue 26, chosen on validation images (2026-12-04): a 5-step PGD of step 0.08 in training; the
# evaluation's attacks on the routed model only, without FAB-T and Square (QUICKSTART_FULL keeps
# the evaluation above).
QUICKSTART_10MIN_TRAIN = {"--attack_steps=10": "--attack_steps=5", "--step_size=0.04": "--step_size=0.08"}
QUICKSTART_10MIN_EVAL = {"--attacks=clean,pgd,cw,autoattack,route_aware":
                         "--attacks=clean,pgd,cw,apgd_ce,apgd_t,route_aware",
                         "--attack_outputs=routed,tradeoff": "--attack_outputs=routed"}
QUICKSTART_10MIN_EXTRA: list[str] = []


def _replaced(flags_, changes):
    return [changes.get(f, f) for f in flags_]


def _parsed(define, argv):
    values = flags.FlagValues()
    define(flag_values=values)
    values(["prog", *argv])
    return values


# === Budgets ===

def test_cpu_and_standard_budgets_are_the_registrys():
    assert budget("cpu") == suite.budget("cpu") and budget("standard") == suite.budget("standard")
    assert budget("cpu")["apgd_steps"] < budget("standard")["apgd_steps"]
    # The quickstart's: the cpu budget with one target per route-targeted attack, nothing else.
    assert budget("quickstart") == {**suite.budget("cpu"), "route_targets": 1}
    with pytest.raises(ValueError, match="Received: budget='huge'"):
        budget("huge")


def test_no_script_spells_a_budget_flag():
    """Budgets are written once (the registry, nfi_tf/experiments/budgets.py): no script passes
    an attack budget flag of its own."""
    fields = [b.field for b in suite.registry.budgets()]
    pattern = re.compile("--(" + "|".join(fields) + ")=")
    offenders = [f"{os.path.relpath(p, REPO)}: {m.group(0)}"
                 for p in sorted(glob.glob(os.path.join(REPO, "scripts", "*")))
                 if p.endswith((".py", ".sh")) for m in pattern.finditer(open(p).read())]
    assert offenders == []


# === The quickstart ===

@pytest.mark.parametrize("run, eval_changes, extra", [
    (QUICKSTART, QUICKSTART_10MIN_EVAL, QUICKSTART_10MIN_EXTRA), (QUICKSTART_FULL, {}, [])])
def test_quickstart_evaluates_as_chosen_in_cascade(run, eval_changes, extra):
    expected = _replaced(QUICKSTART_EVAL_FLAGS, eval_changes) + extra
    before = evaluate_flags.eval_config_from_flags(
        _parsed(evaluate_flags.define_evaluate_flags, expected))
    assert run.eval.config("M") == before
    train, evaluate = run.commands("M")
    assert evaluate[1:3] == ["-m", "nfi_tf.evaluate"]
    assert sorted(evaluate[3:]) == sorted(expected)  # the same flags, any order
    # Every budget field but the ones the run sets itself is the quickstart budget's.
    own = {f.lstrip("-").split("=")[0] for f in extra}
    assert {k: v for k, v in before.__dict__.items() if k in budget("quickstart") and k not in own} == {
        k: v for k, v in budget("quickstart").items() if k not in own}


@pytest.mark.parametrize("run", [QUICKSTART, QUICKSTART_FULL])
def test_quickstart_trains_as_before_but_with_a_5_step_pgd(run):
    before = train_flags.train_config_from_flags(
        _parsed(train_flags.define_train_flags, _replaced(QUICKSTART_TRAIN_FLAGS, QUICKSTART_10MIN_TRAIN)))
    assert run.config == before
    assert (run.config.attack.num_steps, run.config.attack.step_size) == (5, 0.08)
    train, _ = run.commands("M", ["--seed=1"])
    assert train[1:3] == ["-m", "nfi_tf.train"]
    assert sorted(train[3:-1]) == sorted(_replaced(QUICKSTART_TRAIN_FLAGS, QUICKSTART_10MIN_TRAIN))
    assert train[-1] == "--seed=1"


def test_quickstart_robust_is_the_quickstart_with_five_epochs_of_one_cycle():
    # Chosen on validation images (bench/time_to_robustness.py, variant cyclic_5ep).
    from bench.time_to_robustness import VARIANTS
    expected = train_flags.train_config_from_flags(_parsed(
        train_flags.define_train_flags, QUICKSTART.commands("M", VARIANTS["cyclic_5ep"])[0][3:]))
    assert QUICKSTART_ROBUST.config == expected
    t = QUICKSTART_ROBUST.config.train
    assert (t.epochs, t.lr_schedule, t.learning_rate, t.lr_peak_fraction) == (5, "cyclic", 0.1, 0.4)
    assert QUICKSTART_ROBUST.config.data == QUICKSTART.config.data
    assert QUICKSTART_ROBUST.config.attack == QUICKSTART.config.attack
    assert QUICKSTART_ROBUST.eval == QUICKSTART.eval
    assert experiments_main.main(["run", "quickstart_robust", "--model_dir=m", "--dry_run"]) == 0


def test_train_flag_names_are_the_flag_layers():
    for group, specs in train_flags.group_specs().items():
        for spec in specs:
            assert train_flag_name(group, spec.field) == spec.flag, (group, spec.field)


def test_run_command_passes_extra_train_flags_and_dry_run_prints(capsys):
    assert experiments_main.main(["run", "quickstart", "--model_dir=runs/q", "--dry_run",
                                  "--seed=1", "--epochs=1"]) == 0
    train, evaluate = capsys.readouterr().out.strip().splitlines()
    assert train.startswith("python -m nfi_tf.train --model_dir=runs/q --dataset=mnist ")
    assert train.endswith(" --seed=1 --epochs=1")
    assert evaluate.startswith("python -m nfi_tf.evaluate --model_dir=runs/q --eval_examples=500 ")
    assert " --route_targets=1 " in evaluate


# === The reproduction ===

def test_committed_results_are_finished_runs_of_the_plan():
    """Every run kept under results/ was evaluated with the flags its run in its plan gives
    today (scripts/reproduce.py reuses it only then) and trained from its config. The plans
    share results/ (the scale-trend runs sit beside the reproduction's) and no name is in two."""
    every = [r for p in plans.PLANS.values() for r in p.runs(False)]
    runs = {(r.dataset, r.name): r for r in every}
    assert len(runs) == len(every)
    kept = sorted(glob.glob(os.path.join(REPO, "results", "*", "*", "run.json")))
    assert len(kept) >= 30
    for path in kept:
        record = json.load(open(path))
        run = runs[(record["dataset"], record["run"])]
        assert sorted(record["eval_args"]) == sorted(run.eval.flags()), path
        assert record["eval_examples"] == run.eval.examples, path
    main = runs[("mnist", "nfi_seed0")]
    assert main.eval.values()["apgd_steps"] == suite.budget("cpu")["apgd_steps"]
    ablation = runs[("mnist", "ablation_trades")]
    assert ablation.eval.flags()[0] == "--attacks=clean,pgd,autoattack,route_aware"


# === Claims ===

def _run(root, name, correct, method="nfi"):
    """A finished run whose `routed` clean and PGD cells are the given per-example vectors."""
    d = root / name
    d.mkdir()
    n = len(correct["clean"])
    by_key = {"clean": np.asarray(correct["clean"], bool), "pgd@routed": np.asarray(correct["pgd"], bool)}
    records.save(str(d / "eval.npz"), {}, np.zeros(n, np.int32), {"routed": by_key},
                 {"routed": {k: v.astype(np.float32) for k, v in by_key.items()}})
    table = {"routed": {"clean": float(by_key["clean"].mean()), "pgd": float(by_key["pgd@routed"].mean())}}
    report = EvalReport(model_dir=str(d), dataset="mnist", method=method, examples=n, seed=0,
                        rows=["routed"], columns=["clean", "pgd"], table=table, attacks_run=["pgd"],
                        suite_keys=[], settings={}, attack_keys=[], accuracy_by_attack={}, checks={},
                        notes=[], records="eval.npz")
    return tables.FinishedRun(str(d), report)


def test_a_claims_verdict_on_hand_made_paired_records(tmp_path):
    # 12 images. Clean: A gets images 0-9 right, B 0-1 and 10-11: A alone on 8, B alone on 2,
    # p = 2 * P(Bin(10, 1/2) <= 2) = 0.109.
    a_clean = [True] * 10 + [False] * 2
    b_clean = [True] * 2 + [False] * 8 + [True] * 2
    # PGD: A right on all 12, B on none -> 12 disagreements, all A's: p = 2 / 2^12.
    runs = {"new": {0: _run(tmp_path, "a", {"clean": a_clean, "pgd": [True] * 12})},
            "old": {0: _run(tmp_path, "b", {"clean": b_clean, "pgd": [False] * 12})}}
    pgd = claims.Claim("pgd", "new above old under PGD", claims.Cell("new", "routed", "pgd"),
                       claims.Cell("old", "routed", "pgd"))
    judged = claims.judge(runs, pgd)
    assert (judged["a_only"], judged["b_only"], judged["verdict"]) == (12, 0, "reproduced")
    assert judged["p_value"] == pytest.approx(2 / 2 ** 12)
    assert judged["higher"] == ["new", "routed", "pgd"]
    reverse = pgd._replace(higher=pgd.lower, lower=pgd.higher)
    assert claims.judge(runs, reverse)["verdict"] == "not reproduced"
    clean = claims.Claim("clean", "new above old clean", claims.Cell("new", "routed", "clean"),
                         claims.Cell("old", "routed", "clean"))
    judged = claims.judge(runs, clean)
    assert (judged["a_only"], judged["b_only"]) == (8, 2)
    assert judged["p_value"] == pytest.approx(2 * (1 + 10 + 45) / 2 ** 10)  # 0.109: not significant
    assert judged["verdict"] == "inconclusive"
    # A claim about a run that did not finish has no verdict (and no entry in verdicts.json).
    missing = clean._replace(lower=claims.Cell("absent", "routed", "clean"))
    assert claims.judge(runs, missing) is None
    assert set(claims.verdicts(runs, (pgd, clean, missing))) == {"pgd", "clean"}


def test_every_claim_compares_two_different_cells_of_known_columns():
    every = claims.CLAIMS + claims.GUARD_CLAIMS + claims.MECHANISM_CLAIMS + claims.ABLATION_CLAIMS
    assert len({c.id for c in every}) == len(every)
    names = {r.name.split("_seed")[0] for r in plan(False)}
    for c in every:
        assert c.higher != c.lower
        for cell in (c.higher, c.lower):
            assert cell.run in names and cell.column in tables.COLUMNS, c.id


# === Vocabularies ===

# The same text meaning something else (none today).
HOMONYMS: set[tuple[str, str]] = set()


def test_experiments_use_vocabulary_members_never_their_text():
    """Methods, norms, report columns (and the other evaluation vocabularies) are members in
    nfi_tf/experiments: a main run's base name is its Method, a claim's column a Column."""
    kinds = [kind for module in (vocab, evaluation_vocab) for kind in vars(module).values()
             if isinstance(kind, type) and issubclass(kind, enum.Enum)
             and kind.__module__ == module.__name__]
    members = {m.value: f"{kind.__name__}.{m.name}" for kind in kinds for m in kind}
    assert {"nfi", "trades", "linf", "worst_case", "route_aware", "pgd"} <= set(members)
    offenders = []
    for path in sorted(glob.glob(os.path.join(REPO, "nfi_tf", "experiments", "*.py"))):
        tree = ast.parse(open(path).read(), path)
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        name = os.path.basename(path)
        offenders += [f"{name}:{n.lineno} {n.value!r} (use {members[n.value]})" for n in ast.walk(tree)
                      if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                      and n.value in members and (name, n.value) not in HOMONYMS]
    assert offenders == []
