"""scripts/carry_runs.sh: a long plan's state travels through git, and only the state a run needs.

Run in a throwaway git repository holding a copy of the script (it works from the repository it
lives in), with a run dir shaped like the runner's: config, history, logs, checkpoints."""

import os
import shutil
import subprocess

import pytest

from helpers import REPO

RUN = "runs/plan/cifar10/a_seed0"


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


def _carry(repo, *args):
    return subprocess.run(["bash", "scripts/carry_runs.sh", *args], cwd=repo, capture_output=True, text=True)


def _checkpoint(run, step):
    (run / "checkpoints" / "checkpoint").write_text(
        f'model_checkpoint_path: "ckpt-{step}"\nall_model_checkpoint_paths: "ckpt-{step}"\n')
    for ext in ("index", "data-00000-of-00001"):
        (run / "checkpoints" / f"ckpt-{step}.{ext}").write_bytes(b"w" * step)


def _tracked(repo):
    return sorted(_git(repo, "ls-files").split())


def _log(repo):
    rows = (repo / "runs/plan/carry_log.tsv").read_text().splitlines()
    return [r.split("\t") for r in rows[1:]]


@pytest.fixture
def repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(os.path.join(REPO, "scripts", "carry_runs.sh"), repo / "scripts")
    (repo / ".gitignore").write_text("runs/\n")  # as the project's: runs/ is never added by accident
    _git(repo, "init", "-q")
    run = repo / RUN
    (run / "checkpoints").mkdir(parents=True)
    (run / "logs").mkdir()
    (run / "logs" / "events").write_text("tensorboard")
    (run / "config.json").write_text("{}")
    (run / "history.json").write_text("[]")
    return repo


def test_a_training_run_carries_its_config_history_and_latest_checkpoint_only(repo):
    run = repo / RUN
    _checkpoint(run, 10)
    _checkpoint(run, 20)
    out = _carry(repo, "runs/plan")
    assert out.returncode == 0, out.stderr
    assert _tracked(repo) == sorted([f"{RUN}/{f}" for f in (
        "checkpoints/checkpoint", "checkpoints/ckpt-20.data-00000-of-00001", "checkpoints/ckpt-20.index",
        "config.json", "history.json")] + ["runs/plan/carry_log.tsv"])
    (row,) = _log(repo)
    assert row[1:3] == ["cifar10/a_seed0", "20"] and row[-1] == "training"
    assert "family" in row[3]  # the CPU is named with its family/model: the same name hides two kinds

    # The next carry: the newer checkpoint replaces the older in the index; a trained run adds its model.
    _checkpoint(run, 30)
    (run / "model.keras").write_bytes(b"model")
    assert _carry(repo, "runs/plan").returncode == 0
    tracked = _tracked(repo)
    assert f"{RUN}/checkpoints/ckpt-30.index" in tracked and f"{RUN}/model.keras" in tracked
    assert not [t for t in tracked if "ckpt-20" in t or "ckpt-10" in t or "/logs/" in t]
    assert [r[2] for r in _log(repo)] == ["20", "30"] and _log(repo)[-1][-1] == "trained"


def test_a_run_the_runner_has_checked_leaves_the_index_once_and_started_marks_only_unfinished_runs(repo):
    run = repo / RUN
    _checkpoint(run, 40)
    other = repo / "runs/plan/cifar10/b_seed0"  # still training when the runner restarts
    (other / "checkpoints").mkdir(parents=True)
    (other / "config.json").write_text("{}")
    _checkpoint(other, 7)
    assert _carry(repo, "runs/plan").returncode == 0
    kept = repo / "results" / "cifar10" / "a_seed0"
    kept.mkdir(parents=True)
    (kept / "independent_attack.json").write_text("{}")
    assert _carry(repo, "runs/plan", "results").returncode == 0
    assert not [t for t in _tracked(repo) if t.startswith(RUN)]
    assert _carry(repo, "runs/plan").returncode == 0  # done already: no second line
    assert [r[-1] for r in _log(repo) if r[1] == "cifar10/a_seed0"] == ["training", "done"]
    before = len(_log(repo))
    assert _carry(repo, "runs/plan", "started").returncode == 0
    # The runner skips a kept run, so only the unfinished one is marked as (re)started.
    assert [r[1:3] + r[-1:] for r in _log(repo)[before:]] == [["cifar10/b_seed0", "7", "started"]]


def test_a_missing_work_dir_is_one_line_and_exit_2(repo):
    out = _carry(repo, "runs/nowhere")
    assert out.returncode == 2
    assert out.stderr.strip() == "carry_runs: no work dir runs/nowhere"
