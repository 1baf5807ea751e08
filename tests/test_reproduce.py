"""The reproduction runner (`python -m nfi_tf.experiments reproduce`, scripts/reproduce.sh
--quick), its plans, its reuse rules, and its tables."""

import dataclasses
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

from nfi_tf.evaluation import records
from nfi_tf.evaluation.report import EvalReport
from nfi_tf.evaluation.report.sections import Checks, RouteShare, RouteStats, Settings
from nfi_tf.experiments import cli, plans, reproduction, steps, tables
from nfi_tf.experiments.reproduction import plan


def _report(table, method="nfi", n=40, **sections) -> EvalReport:
    """An eval.json as the evaluation writes it, with only what the tables read filled in."""
    return EvalReport(model_dir="", dataset="mnist", method=method, examples=n, seed=0,
                      rows=list(table), columns=[], table=table, attacks_run=[], suite_keys=[],
                      settings=Settings(epsilon=0.3, **sections.pop("settings", {})), attack_keys=[],
                      accuracy_by_attack={}, checks=Checks(), notes=[], records="eval.npz", **sections)


def _finished(table=None, **sections) -> tables.FinishedRun:
    run_files = {k: sections.pop(k) for k in ("run", "history") if k in sections}
    return tables.FinishedRun("", _report(table or {}, **sections), **run_files)


def _fake_run(tmp_path, run, cells, method, n=40, seed_flip=False):
    """A finished run: eval.json with its table and eval.npz whose per-example records make it
    (each cell's first round(acc * n) images right, so two runs agree on the images both get)."""
    d = tmp_path / "mnist" / run
    d.mkdir(parents=True)
    correct, table = {}, {}
    for row, by_col in cells.items():
        correct[row], table[row] = {}, {}
        for col, acc in by_col.items():
            key = "clean" if col == "clean" else f"{col}@{row}"
            v = np.arange(n) < round(acc * n)
            correct[row][key] = v[::-1] if seed_flip else v
            table[row][col] = float(v.mean())
        table[row]["worst_case"] = float(np.all(list(correct[row].values()), axis=0).mean())
    margins = {r: {k: v.astype(np.float32) for k, v in by.items()} for r, by in correct.items()}
    records.save(str(d / "eval.npz"), {}, np.zeros(n, np.int32), correct, margins)
    _report(table, method, n).save(str(d / "eval.json"))
    (d / "run.json").write_text(json.dumps({"train_seconds": 600}))


def test_tables_pool_seeds_and_give_paired_verdicts(tmp_path):
    for seed in (0, 1):
        _fake_run(tmp_path, f"trades_seed{seed}", {"tradeoff": {"clean": 0.9, "pgd": 0.8}}, "trades")
        _fake_run(tmp_path, f"nfi_seed{seed}", {
            "routed": {"clean": 1.0, "pgd": 0.5},
            "tradeoff": {"clean": 0.9, "pgd": 0.8},
            "robust_part": {"clean": 0.8, "pgd": 0.75},
            "nonrobust_part": {"clean": 0.9, "pgd": 0.25},
        }, "nfi")
        _fake_run(tmp_path, f"trades_loss_weight_seed{seed}",
                  {"tradeoff": {"clean": 0.95, "pgd": 0.9}}, "trades")
    records_ = [{"dataset": "mnist", "run": f"{b}_seed{s}"} for s in (0, 1)
                for b in ("trades", "nfi", "trades_loss_weight")]
    text = tables.write_tables(str(tmp_path), records_, {}, {})
    assert "| TRADES (ours, same budget) | 2 | 90.0 ± 0.0 | 80.0 ± 0.0 |" in text
    assert "| nfi routed (ours) | 2 | 100.0 ± 0.0 | 50.0 ± 0.0 |" in text
    v = json.load(open(tmp_path / "verdicts.json"))["mnist"]["main"]
    # 40 images per seed: clean 40 vs 36 right -> 4 disagreements per seed, 8 pooled, p = 2/2^8.
    acc = v["table2_routed_more_accurate"]
    assert (acc["a_only"], acc["b_only"], acc["seeds"]) == (8, 0, 2)
    assert acc["p_value"] == pytest.approx(2 / 256) and acc["verdict"] == "reproduced"
    assert v["table2_pgd_column"]["verdict"] == "not reproduced"  # 20 vs 32 right per seed
    assert v["table1_robust_part_more_robust"]["verdict"] == "reproduced"  # 30 vs 10 per seed
    assert v["table1_robust_part_less_accurate"]["per_seed_difference"] == pytest.approx([0.1, 0.1])
    assert "### mnist: verdicts (McNemar, seeds pooled)" in text
    mech = json.load(open(tmp_path / "verdicts.json"))["mnist"]["mechanism"]
    # Routed worst case 20 right per seed, its own trade-off head 32: the routing costs 24 images.
    assert (mech["routing_helps"]["a_only"], mech["routing_helps"]["b_only"]) == (0, 24)
    assert mech["routing_helps"]["verdict"] == "not reproduced"
    assert mech["nfi_backbone_above_trades"]["verdict"] == "inconclusive"  # identical cells
    # The loss-weight control: 36 right in the worst case per seed against nfi's head's 32 and
    # TRADES' 32, so it beats both (4 images per seed, 8 pooled).
    assert "| TRADES × nfi's total loss weight 3.1 (control) | 2 | 95.0 ± 0.0 | 90.0 ± 0.0 |" in text
    control = mech["nfi_backbone_above_loss_weight_control"]
    assert (control["a_only"], control["b_only"], control["verdict"]) == (0, 8, "not reproduced")
    assert mech["loss_weight_helps_trades"]["verdict"] == "reproduced"
    assert mech["routed_above_loss_weight_control"]["difference"] == pytest.approx(-0.4)


def test_route_table_shows_nfi_and_the_guard_side_by_side():
    def stats(benign_share):
        route = lambda share: RouteShare(count=0, share=share, accuracy=0.5)  # noqa: E731
        both = {"benign": route(benign_share), "adversarial": route(1 - benign_share)}
        return _finished(route_stats=RouteStats(clean=both, worst_case_adversarial=both))
    runs = {"nfi": {0: stats(0.4), 1: stats(0.6)}, "nfi_route_guard": {0: stats(0.02)}}
    text = "\n".join(tables.route_table("cifar10", runs))
    assert "| nfi | clean | 50.0 ± 14.1 / 50.0 ± 0.0 | 50.0 ± 14.1 / 50.0 ± 0.0 |" in text
    assert "| nfi + route guard | worst-case adversarial | 2.0 / 50.0 | 98.0 / 50.0 |" in text
    assert tables.route_table("mnist", {"trades": {0: _finished()}}) == []


def test_training_time_sums_the_epochs_when_the_history_has_them():
    resumed = _finished(run={"train_seconds": 831.0},  # the process that finished it saw only this
                        history=[{"epoch": 1, "seconds": 500.0}, {"epoch": 2, "seconds": 520.5}])
    assert tables.train_seconds(resumed) == 1020.5
    older = _finished(run={"train_seconds": 831.0},
                      history=[{"epoch": 1}, {"epoch": 2, "seconds": 1.0}])
    assert tables.train_seconds(older) == 831.0


def test_independent_check_flags_a_reported_worst_case_above_the_outside_attack(tmp_path):
    # nfi_seed0's routed worst case is 0.5 (its PGD cell), TRADES' 0.8.
    _fake_run(tmp_path, "trades_seed0", {"tradeoff": {"clean": 0.9, "pgd": 0.8}}, "trades")
    _fake_run(tmp_path, "nfi_seed0", {"routed": {"clean": 1.0, "pgd": 0.5}}, "nfi")
    for run, output, found in (("trades_seed0", "tradeoff", 0.7), ("nfi_seed0", "routed", 0.6)):
        (tmp_path / "mnist" / run / reproduction.INDEPENDENT_FILE).write_text(json.dumps(
            {"output": output, "examples": 40, "accuracy_under_attack": found}))
    records_ = [{"dataset": "mnist", "run": r} for r in ("trades_seed0", "nfi_seed0")]
    text = tables.write_tables(str(tmp_path), records_, {}, {})
    checks = {c["run"]: c for c in json.load(open(tmp_path / "verdicts.json"))["mnist"]["independent_check"]}
    assert checks["nfi_seed0"]["ok"] and checks["nfi_seed0"]["reported_worst_case"] == 0.5
    assert not checks["trades_seed0"]["ok"]  # we report 80% where an outside attack leaves 70%
    assert "| trades_seed0 | tradeoff | 40 | 80.0 | 70.0 | NO: a bug in our evaluation |" in text


def test_independent_attack_script_attacks_the_served_output(trained_mnist_dir, trained_mnist_trades_dir,
                                                             tmp_path):
    for model_dir, output in ((trained_mnist_dir, "routed"), (trained_mnist_trades_dir, "tradeoff")):
        out = tmp_path / f"{output}.json"
        run = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "independent_attack.py"),
                              f"--model_dir={model_dir}", "--examples=64", "--steps=10", "--restarts=1",
                              f"--out={out}"], capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        result = json.load(open(out))
        assert result["output"] == output and result["examples"] == 64
        assert json.loads(run.stdout.strip().splitlines()[-1]) == result
        # eps 0.3 on a briefly trained model: the attack must find many errors the clean pass did not.
        assert result["accuracy_under_attack"] < result["clean"] - 0.1


def test_plan_gives_trades_and_nfi_the_same_budget_and_seeds():
    for dataset in ("mnist", "cifar10"):
        runs = {r.name: r.config for r in plan(False) if r.dataset == dataset}
        for seed in reproduction.SEEDS[dataset]:
            a, b = runs[f"trades_seed{seed}"], runs[f"nfi_seed{seed}"]
            assert (a.model.method, b.model.method) == ("trades", "nfi")
            assert a.train == b.train and a.attack == b.attack and a.data == b.data
            assert a.train.seed == seed
            assert a.model.backbone == b.model.backbone and a.model.depth == b.model.depth
        assert len(reproduction.SEEDS[dataset]) >= (3 if dataset == "mnist" else 2)
        # The ablation set has its own TRADES run and the loss-weight control at its budget.
        ref, trades = runs["ablation_nfi_reference"], runs["ablation_trades"]
        control = runs["ablation_trades_loss_weight"]
        assert trades.train == ref.train and trades.data == ref.data and control.train == ref.train
        lo = ref.loss
        total = lo.tradeoff_weight + lo.benign_weight + lo.adversarial_weight + lo.counterfactual_weight
        assert control.loss.tradeoff_weight == pytest.approx(total)
        # The same control at the main budget: TRADES' config but for the loss weight, per seed.
        for seed in reproduction.SEEDS[dataset]:
            main, trades = runs[f"trades_loss_weight_seed{seed}"], runs[f"trades_seed{seed}"]
            assert main.loss.tradeoff_weight == pytest.approx(total)
            assert dataclasses.replace(main.loss, tradeoff_weight=1.0) == trades.loss
            assert (main.model, main.train, main.data, main.attack) == (
                trades.model, trades.train, trades.data, trades.attack)
    # Seed 0 of every dataset comes before any seed 1.
    order = [(r.dataset, r.name) for r in plan(False)]
    assert order.index(("cifar10", "nfi_seed0")) < order.index(("mnist", "trades_seed1"))
    # Every main run, then the main-budget control, every ablation, and the route guard last
    # (an option, not a claim).
    kinds = [0 if n.startswith(("trades_seed", "nfi_seed")) else
             1 if n.startswith("trades_loss_weight_") else
             2 if n.startswith("ablation_") else 3 for _, n in order]
    assert kinds == sorted(kinds) and set(kinds) == {0, 1, 2, 3}
    nfi = next(r for r in plan(False) if r.name == "nfi_seed0")
    assert nfi.eval.flags()[-1] == "--attack_outputs=routed,tradeoff,robust_part,nonrobust_part"


def test_unknown_run_or_dataset_is_a_one_line_error():
    for flag, bad, valid in (("--runs", "nfi_seed9", "nfi_route_guard_seed0"),
                             ("--datasets", "svhn", "cifar10,mnist")):
        out = subprocess.run([sys.executable, os.path.join(REPO, "scripts", "reproduce.py"),
                              f"{flag}={bad}", "--stage=tables"], capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 2
        err = out.stderr.strip().splitlines()[-1]
        assert f"unknown {flag[2:]}: {bad}; the plan has:" in err and valid in err


# === The runner ===

def _dry_run(capsys, *flags) -> list[str]:
    assert cli.main(["reproduce", "--dry_run", "--work_dir=w", *flags]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("name, quick", [(name, quick) for name, p in plans.PLANS.items()
                                         for quick in ((False, True) if p.has_quick else (False,))])
def test_the_dry_run_lists_every_run_of_every_plan_with_its_two_commands(capsys, name, quick):
    lines = _dry_run(capsys, f"--plan={name}", *(["--quick"] if quick else []))
    runs = plans.get(name).runs(quick)
    assert lines[::3] == [f"{r.dataset}/{r.name} ({r.kind})" for r in runs]
    work_dir = "w_quick" if quick else "w"
    for i, run in enumerate(runs):
        train, evaluate = (cmd.strip() for cmd in lines[3 * i + 1: 3 * i + 3])
        model_dir = os.path.join(work_dir, run.dataset, run.name)
        assert train.startswith(f"python -m nfi_tf.train --model_dir={model_dir} --dataset={run.dataset}")
        assert evaluate.startswith(f"python -m nfi_tf.evaluate --model_dir={model_dir}")


def test_the_scale_trend_plan_is_five_runs_the_dry_run_lists(capsys):
    lines = _dry_run(capsys, "--plan=scale_trend")
    assert [ln for ln in lines if not ln.startswith(" ")] == [
        f"cifar10/{n}_seed0 (scale)" for n in ("trades_e20", "nfi_e20", "trades_wrn10_2", "nfi_wrn10_2",
                                               "nfi_route_guard_e20")]
    # --runs and --datasets select within the plan.
    one = _dry_run(capsys, "--plan=scale_trend", "--runs=nfi_e20_seed0", "--datasets=cifar10")
    assert [ln for ln in one if not ln.startswith(" ")] == ["cifar10/nfi_e20_seed0 (scale)"]


def _flags(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])--\w+", help_text))


def test_scripts_reproduce_py_is_the_modules_reproduce_command(capsys):
    """scripts/reproduce.py (which scripts/reproduce.sh ran) takes the module's flags, every one,
    and does the same with them."""
    with pytest.raises(SystemExit):
        cli.main(["reproduce", "--help"])
    module_flags = _flags(capsys.readouterr().out)
    assert module_flags == {"--help", "--quick", "--plan", "--dry_run", "--work_dir", "--results_dir",
                            "--datasets", "--runs", "--stage"}
    script = os.path.join(REPO, "scripts", "reproduce.py")
    for argv, check in ((["--help"], lambda out: _flags(out) == module_flags),
                        (["--plan=scale_trend", "--dry_run", "--work_dir=w"],
                         lambda out: out.splitlines() == _dry_run(capsys, "--plan=scale_trend"))):
        out = subprocess.run([sys.executable, script, *argv], cwd=REPO, capture_output=True, text=True,
                             timeout=300)
        assert out.returncode == 0 and check(out.stdout), (argv, out.stdout[-2000:], out.stderr[-2000:])
    sh = open(os.path.join(REPO, "scripts", "reproduce.sh")).read()
    assert 'exec python -m nfi_tf.experiments reproduce "$@"' in sh


def test_the_quick_flag_and_unknown_flags_are_one_line_errors(capsys):
    for argv, message in ((["--plan=scale_trend", "--quick"], "the scale_trend plan has no quick form"),
                          (["--bogus"], "unrecognized arguments: --bogus")):
        with pytest.raises(SystemExit) as exit_:
            cli.main(["reproduce", *argv])
        assert exit_.value.code == 2
        assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_a_kept_run_is_finished_only_with_its_config_and_its_eval_flags(tmp_path):
    """The reuse rules a resumed plan relies on (run.json and reproduce_train.json as finished runs
    hold them, e.g. the scale-trend runs made before the runner moved into the package)."""
    first, second = plans.SCALE_TREND.runs()[:2]
    keep = steps.kept_dir(str(tmp_path / "results"), first)
    os.makedirs(keep)
    assert not steps.finished(keep, first)
    first.config.save(os.path.join(keep, "config.json"))
    record = {"dataset": first.dataset, "run": first.name, "eval_args": first.eval.flags()[::-1]}
    (tmp_path / "results" / first.dataset / first.name / "run.json").write_text(json.dumps(record))
    assert steps.finished(keep, first)  # the flags in any order
    assert not steps.finished(keep, second)  # another config
    changed = dataclasses.replace(first, eval=dataclasses.replace(first.eval, examples=7,
                                                                  settings={"pgd_steps": 3}))
    assert not steps.finished(keep, changed)
    # A trained run with its record and its config is not trained again.
    model_dir = steps.model_dir(str(tmp_path / "work"), first)
    os.makedirs(model_dir)
    first.config.save(os.path.join(model_dir, "config.json"))
    trained = {"train_seconds": 12.5, "steps": 3}
    (tmp_path / "work" / first.dataset / first.name / steps.TRAIN_RECORD).write_text(json.dumps(trained))
    assert steps.train_one(first, str(tmp_path / "work")) == trained


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
    for run in plan(True):
        dataset, name = run.dataset, run.name
        result = json.load(open(results / dataset / name / "eval.json"))
        assert result["examples"] == reproduction.QUICK_COMMON[dataset]["data"]["eval_examples"]
        run = json.load(open(results / dataset / name / "run.json"))
        assert run["train_seconds"] > 0
        assert (results / dataset / name / "eval.npz").exists()  # the paired tests' records
        assert not (results / dataset / name / "serving_examples.npz").exists()  # the model's, not a result
        independent = json.load(open(results / dataset / name / reproduction.INDEPENDENT_FILE))
        assert independent["examples"] == result["examples"]
        # Same model, same test images: the same clean accuracy (the quick budgets are too small
        # for the worst-case comparison to mean anything; the full plan's table makes it).
        assert independent["clean"] == pytest.approx(result["table"][independent["output"]]["clean"])
    for dataset in ("mnist", "cifar10"):  # Figure 5: synthesis from the first nfi seed
        synthesis = results / dataset / reproduction.SYNTHESIS_RUN / "synthesis"
        summary = json.load(open(synthesis / "summary.json"))
        assert len(summary["classes"]) == 10 and (synthesis / "overview.png").exists()
    table = (results / "results_table.md").read_text()
    assert "### mnist: Table 2" in table and "### cifar10: Table 2" in table
    assert "paper: ours (routed) (WRN-34-10)" in table
    (results / "results_table.md").unlink()
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing finished run") == len(plan(True))
    # A call limited to one run still writes the tables of every finished run.
    one = subprocess.run(cmd + ["--runs=nfi_seed0", "--datasets=mnist"], cwd=REPO, capture_output=True,
                         text=True, timeout=600, env=env)
    assert one.returncode == 0 and one.stdout.count("reusing finished run") == 1, one.stderr[-3000:]
    table = (results / "results_table.md").read_text()
    assert "### mnist: Table 2" in table and "### cifar10: Table 2" in table
    for step in ("training", "synthesis", "independent attack"):
        assert step not in again.stdout, step


def _one_step(config, x, y):
    """The weights after one training step of `config` from its seed's initial weights."""
    import tensorflow as tf

    from nfi_tf.models import build_classifier
    from nfi_tf.training import AdversarialTrainer, configure_runtime, make_optimizer

    config = dataclasses.replace(config, train=dataclasses.replace(config.train, deterministic=True))
    configure_runtime(config)
    model = build_classifier(config.model, x.shape[1:], 10)
    trainer = AdversarialTrainer(model, config)
    trainer.compile(optimizer=make_optimizer(config, steps_per_epoch=10))
    trainer.train_step((tf.constant(x), tf.constant(y)))
    return [np.asarray(w) for w in model.trainable_weights]


@pytest.mark.parametrize("dataset", ["mnist", "cifar10"])
def test_every_ablation_changes_training(dataset):
    # Each ablation must train differently from the run it is compared with: same seed, same
    # batch, one step, different weights. (The loss-weight control once trained exactly like
    # plain TRADES because the TRADES loss ignored --tradeoff_weight; this catches any knob that
    # the training step does not read.) Repeating the reference gives identical weights, so a
    # difference is the config's.
    from nfi_tf import data

    runs = {r.name: r.config for r in plan(False) if r.dataset == dataset}
    ref = runs["ablation_nfi_reference"]
    x, y = data.load_arrays(ref.data, "train", 8)
    x = data.uint8_to_float(x)
    baseline = {"ablation_nfi_reference": _one_step(ref, x, y),
                "ablation_trades": _one_step(runs["ablation_trades"], x, y)}
    again = _one_step(ref, x, y)
    assert all(np.array_equal(a, b) for a, b in zip(again, baseline["ablation_nfi_reference"]))
    for name, config in runs.items():
        if not name.startswith("ablation_") or name in baseline:
            continue
        against = "ablation_trades" if config.model.method == "trades" else "ablation_nfi_reference"
        weights = _one_step(config, x, y)
        ref_weights = baseline[against]
        assert [w.shape for w in weights] == [w.shape for w in ref_weights], name
        moved = max(float(np.max(np.abs(a - b))) for a, b in zip(weights, ref_weights))
        assert moved > 1e-6, f"{name} trains exactly like {against}"


def test_ablation_table_names_the_attacks_behind_its_worst_case():
    run = _finished({"tradeoff": {"clean": 0.9, "worst_case": 0.5}},
                    settings={"attacks": ["clean", "pgd", "autoattack"]})
    lines = tables.ablation_table("mnist", {"ablation_trades": {None: run}})
    assert "worst case over autoattack, pgd)" in lines[0]
    assert lines[-1].startswith("| trades | — | — | 90.0 | 50.0 |")
