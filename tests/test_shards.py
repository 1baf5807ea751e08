"""Exact sharded evaluation: N shards of an evaluation, gathered, equal the unsharded run image
for image (per-attack and in cascade, an nfi model and a plain classifier); a bad shard set is a
one-line error; the local, Kubernetes and Slurm recipes split the images as the shards do.

The evaluations are the golden cases' (tests/eval_golden_cases.py): 24 real MNIST test images in
batches of 8 (3 batches), every attack family at a tiny budget.
"""

import os
import re
import shutil

import eval_golden_cases as cases
import numpy as np
import pytest
from helpers import REPO, fixture_dir, run_cli

import nfi_tf
from nfi_tf.errors import NfiError
from nfi_tf.evaluation import records, shard_records
from nfi_tf.evaluation.config import EvalConfig
from nfi_tf.evaluation.runner import evaluate_model
from nfi_tf.evaluation.shard import Shard, environment_index, parse

CHEAP = dict(cases.BUDGET, attacks=("clean", "pgd"), attack_outputs=("routed", "tradeoff"))


def _model_dir(tmp_path, name, method="nfi"):
    out = tmp_path / name
    out.mkdir()
    for f in ("config.json", "model.keras"):
        shutil.copy(os.path.join(fixture_dir(method, 0), f), out / f)
    return str(out)


def _evaluate(model_dir, **settings):
    return evaluate_model(EvalConfig(model_dir=model_dir, **settings), log=lambda m: None)


def _sharded(model_dir, n, **settings):
    for i in range(n):
        _evaluate(model_dir, shard=f"{i}/{n}", **settings)
    assert not os.path.exists(os.path.join(model_dir, "eval.json"))  # a shard writes no report
    return _evaluate(model_dir, gather=True, **settings)


def _assert_same(a, b, model_dir_a, model_dir_b):
    """The same table, per-image results, sections and eval.npz arrays (not the seconds)."""
    assert a.report.table == b.report.table
    assert a.report.columns == b.report.columns and a.report.rows == b.report.rows
    assert a.report.attack_keys == b.report.attack_keys and a.report.suite_keys == b.report.suite_keys
    for row in a.correct:
        assert set(a.correct[row]) == set(b.correct[row]), row
        for key in a.correct[row]:
            np.testing.assert_array_equal(a.correct[row][key], b.correct[row][key], err_msg=f"{row} {key}")
    for name in ("autoattack_cumulative", "cascade_cumulative", "routed_adaptive", "route_stats",
                 "feature_overlap"):
        assert getattr(a.report, name) == getattr(b.report, name), name
    assert a.report.checks == b.report.checks and a.report.notes == b.report.notes
    ra = records.load(os.path.join(model_dir_a, "eval.npz"))
    rb = records.load(os.path.join(model_dir_b, "eval.npz"))
    for kind in ("correct", "margins"):
        for row, by_key in ra[kind].items():
            for key, v in by_key.items():
                np.testing.assert_array_equal(v, rb[kind][row][key], err_msg=f"{kind} {row} {key}")


def test_shard_arithmetic_covers_every_batch_once():
    for total in (1, 3, 7, 50):
        for n in range(1, total + 1):
            got = [b for i in range(n) for b in Shard(i, n).batches(total)]
            assert got == list(range(total)), (total, n)
            sizes = [len(Shard(i, n).batches(total)) for i in range(n)]
            assert max(sizes) - min(sizes) <= 1  # balanced
    assert parse("2/5") == Shard(2, 5) and parse((1, 3)) == Shard(1, 3) and parse(None) is None
    assert parse("env/4", {"JOB_COMPLETION_INDEX": "3"}) == Shard(3, 4)
    assert environment_index({"SLURM_ARRAY_TASK_ID": "12", "SLURM_ARRAY_TASK_MIN": "10"}) == 2
    for bad, message in (("5/5", "0 <= I < N"), ("1-3", "I/N"), ("x/3", "whole number"),
                         ("env/3", "none is set")):
        with pytest.raises(NfiError, match=message):
            parse(bad, {})


def test_three_shards_gather_to_the_unsharded_run(tmp_path):
    whole = _model_dir(tmp_path, "whole")
    a = _evaluate(whole, **CHEAP)
    sharded = _model_dir(tmp_path, "sharded")
    b = _sharded(sharded, 3, **CHEAP)
    _assert_same(a, b, whole, sharded)
    assert sorted(os.listdir(os.path.join(sharded, "shards"))) == [
        "shard-0-of-3.npz", "shard-1-of-3.npz", "shard-2-of-3.npz"]


def test_a_bad_shard_set_is_a_one_line_error_naming_it(tmp_path):
    model_dir = _model_dir(tmp_path, "bad")
    for i in range(2):
        _evaluate(model_dir, shard=f"{i}/3", **CHEAP)
    shard_dir = os.path.join(model_dir, "shards")
    with pytest.raises(NfiError, match=r"shard\(s\) 2/3 missing"):
        _evaluate(model_dir, gather=True, **CHEAP)
    _evaluate(model_dir, shard="2/3", **CHEAP)
    shutil.copy(os.path.join(shard_dir, "shard-1-of-3.npz"), os.path.join(shard_dir, "copy.npz"))
    with pytest.raises(NfiError, match="duplicates shard 1/3"):
        _evaluate(model_dir, gather=True, **CHEAP)
    os.remove(os.path.join(shard_dir, "copy.npz"))
    _evaluate(model_dir, shard="1/3", **dict(CHEAP, seed=7))  # the same shard under another seed
    with pytest.raises(NfiError, match="shard-1-of-3.npz is a shard of another evaluation"):
        _evaluate(model_dir, gather=True, **CHEAP)
    with pytest.raises(NfiError, match="use at most 3 shards"):
        _evaluate(model_dir, shard="0/4", **CHEAP)
    with pytest.raises(NfiError, match="give one"):
        _evaluate(model_dir, shard="0/3", gather=True, **CHEAP)


@pytest.mark.large
@pytest.mark.parametrize("cascade", [False, True], ids=["per_attack", "cascade"])
def test_one_two_or_three_shards_equal_the_unsharded_run_image_for_image(tmp_path, cascade):
    settings = dict(cases.BUDGET, cascade=cascade)
    whole = _model_dir(tmp_path, "whole")
    a = _evaluate(whole, **settings)
    for n in (1, 2, 3):
        sharded = _model_dir(tmp_path, f"n{n}")
        _assert_same(a, _sharded(sharded, n, **settings), whole, sharded)


@pytest.mark.large
def test_a_plain_classifier_sharded_through_evaluate_classifier(tmp_path, mnist_test_arrays):
    x, y = mnist_test_arrays[0][:24], mnist_test_arrays[1][:24]
    model = nfi_tf.load_model(fixture_dir("trades", 0))
    logits = lambda z: model(z, training=False)["tradeoff"]  # noqa: E731
    budget = dict(batch_size=8, apgd_steps=4, apgd_targets=2, fab_steps=4, fab_targets=2, square_queries=12)
    run = lambda out, **kw: nfi_tf.evaluate_classifier(  # noqa: E731
        logits, x, y, epsilon=0.3, out_dir=str(tmp_path / out), **budget, **kw)
    a = run("whole")
    for n in (2, 3):
        for i in range(n):
            run(f"n{n}", shard=(i, n))
        _assert_same(a, run(f"n{n}", gather=True), str(tmp_path / "whole"), str(tmp_path / f"n{n}"))


@pytest.mark.large
def test_the_local_recipe_runs_three_processes_and_gathers(tmp_path):
    whole = _model_dir(tmp_path, "whole")
    a = _evaluate(whole, **CHEAP)
    sharded = _model_dir(tmp_path, "local")
    flags = [f"--model_dir={sharded}", "--attacks=clean,pgd", "--attack_outputs=routed,tradeoff"] + [
        f"--{k}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
        for k, v in cases.BUDGET.items() if k not in ("verbose",)]
    import subprocess
    import sys

    done = subprocess.run(["bash", os.path.join(REPO, "scripts", "evaluate_shards.sh"), "3", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "PYTHON": sys.executable})
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(os.listdir(os.path.join(sharded, "shards"))) == 3
    b = nfi_tf.evaluation.report.EvalReport.load(os.path.join(sharded, "eval.json"))
    assert b.table == a.report.table
    ra, rb = records.load(os.path.join(whole, "eval.npz")), records.load(os.path.join(sharded, "eval.npz"))
    for row, by_key in ra["correct"].items():
        for key, v in by_key.items():
            np.testing.assert_array_equal(v, rb["correct"][row][key])


def test_the_engine_recipes_split_as_many_shards_as_they_run():
    k8s = open(os.path.join(REPO, "deploy", "kubernetes", "evaluate-indexed-job.yaml")).read()
    completions = int(re.search(r"completions:\s*(\d+)", k8s)[1])
    assert "completionMode: Indexed" in k8s
    assert int(re.search(r"parallelism:\s*(\d+)", k8s)[1]) <= completions
    assert re.search(r"--shard=env/(\d+)", k8s)[1] == str(completions)
    slurm = open(os.path.join(REPO, "deploy", "slurm", "evaluate-array.sbatch")).read()
    low, high = map(int, re.search(r"#SBATCH --array=(\d+)-(\d+)", slurm).groups())
    assert re.search(r"--shard=env/(\d+)", slurm)[1] == str(high - low + 1)
    # Each engine's index variable gives every shard of that N exactly once.
    n = completions
    indices = sorted(parse(f"env/{n}", {"JOB_COMPLETION_INDEX": str(i)}).index for i in range(n))
    assert indices == list(range(n))
    ids = range(low, high + 1)
    got = [parse(f"env/{high - low + 1}", {"SLURM_ARRAY_TASK_ID": str(i), "SLURM_ARRAY_TASK_MIN": str(low)})
           for i in ids]
    assert [s.index for s in got] == list(range(high - low + 1))


def test_the_cli_shard_flags_and_examples_all_are_checked_in_one_line():
    done = run_cli("nfi_tf.evaluate", "--model_dir=/nonexistent", "--shard=3/3")
    assert done.returncode == 2 and "0 <= I < N" in done.stderr.strip().splitlines()[-1]
    done = run_cli("nfi_tf.evaluate", "--model_dir=/nonexistent", "--eval_examples=some")
    assert done.returncode == 2 and "whole number or all" in done.stderr.strip().splitlines()[-1]
    assert shard_records.DIR == "shards"


def test_an_evaluation_says_how_long_it_will_take_after_its_first_batch(tmp_path):
    """The estimate line (issue: long runs say how long they will take) is logged once, after the
    first of the 3 batches (24 images, batch 8), and its arithmetic holds: whole = 3 x first."""
    lines = []
    evaluate_model(EvalConfig(model_dir=_model_dir(tmp_path, "estimate"), **dict(CHEAP, verbose=1)),
                   log=lines.append)
    found = [ln for ln in lines if ln.startswith("evaluate: batch 1/")]
    assert len(found) == 1, lines
    m = re.match(r"evaluate: batch 1/3 \(8 images\) took ([\d.]+) s \(([\d.]+) s per image; "
                 r"(.+)\); the whole run: about ([\d.]+) s, ([\d.]+) s left$", found[0])
    assert m, found[0]
    first, per_image, families, whole, left = m.groups()
    # The seconds are printed rounded to whole seconds, the per-image cost to 0.01 s.
    assert float(per_image) == pytest.approx(float(first) / 8, abs=0.07)
    assert float(whole) == pytest.approx(3 * float(first), abs=2)
    assert float(left) == pytest.approx(2 * float(first), abs=1.5)
    assert "PGD" in families or "pgd" in families, families
