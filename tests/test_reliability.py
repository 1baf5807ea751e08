"""Exact resume after SIGKILL, atomic writes under injected crashes, NaN stops,
bad input everywhere (one-line error, exit 2), and MirroredStrategy over two logical CPUs."""

import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_mnist_config

from nfi_tf import io_utils, losses
from nfi_tf.errors import NfiError, TrainingDivergedError
from nfi_tf.training import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(REPO, "tests")

# A short deterministic real-MNIST run: 512 images, 8 steps/epoch, 2 epochs, dropout on.
RUN_FLAGS = ["--dataset=mnist", "--train_examples=512", "--eval_examples=64", "--epochs=2",
             "--batch_size=64", "--attack_steps=5", "--step_size=0.1", "--eval_attack_steps=2",
             "--eval_step_size=0.2", "--learning_rate=0.05", "--lr_decay_epochs=1",
             "--deterministic", "--checkpoint_every_steps=2"]


def _train_cmd(model_dir, *extra):
    return [sys.executable, "-m", "nfi_tf.train", f"--model_dir={model_dir}", *RUN_FLAGS, *extra]


def _weights(model_dir):
    model = keras.models.load_model(os.path.join(model_dir, "model.keras"))
    return [np.asarray(v) for v in model.weights]


def _latest_step(model_dir):
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else 0


@pytest.mark.large
def test_sigkill_then_rerun_ends_bit_identical_to_an_uninterrupted_run(tmp_path):
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    subprocess.run(_train_cmd(straight), cwd=REPO, check=True, capture_output=True, timeout=600)

    proc = subprocess.Popen(_train_cmd(killed), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _latest_step(killed) < 6 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = _latest_step(killed)
    assert 6 <= killed_at < 16, f"kill landed at step {killed_at}: not mid-run"
    assert not os.path.exists(os.path.join(killed, "model.keras"))

    out = subprocess.run(_train_cmd(killed), cwd=REPO, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"resuming at step {killed_at}" in out.stdout
    for a, b in zip(_weights(straight), _weights(killed)):
        np.testing.assert_array_equal(a, b)
    history = json.load(open(os.path.join(killed, "history.json")))
    assert [h["epoch"] for h in history] == [1, 2]


@pytest.mark.large
def test_in_process_resume_matches_uninterrupted(tmp_path):
    config = tiny_mnist_config("nfi", data={"train_examples": 256},
                               train={"epochs": 2, "deterministic": True})
    train_and_evaluate(config, str(tmp_path / "a"), verbose=0)
    stopped = train_and_evaluate(config, str(tmp_path / "b"), verbose=0, stop_after_steps=5)
    assert (stopped["steps"], stopped["finished"]) == (5, False)
    train_and_evaluate(config, str(tmp_path / "b"), verbose=0)
    for a, b in zip(_weights(str(tmp_path / "a")), _weights(str(tmp_path / "b"))):
        np.testing.assert_array_equal(a, b)


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    calls = tf.Variable(0, dtype=tf.int64)
    original = losses.nfi_loss

    def poisoned(clean, adv, labels, cfg, **state):  # state: the running denominator, warm-up
        terms = original(clean, adv, labels, cfg, **state)
        calls.assign_add(1)
        # From the 6th step on the loss is NaN, as a diverging run would make it.
        terms["loss"] = terms["loss"] + tf.where(calls >= 6, np.nan, 0.0)
        return terms

    monkeypatch.setattr(losses, "nfi_loss", poisoned)
    config = tiny_mnist_config("nfi", data={"train_examples": 256},
                               train={"epochs": 2, "batch_size": 64})
    with pytest.raises(TrainingDivergedError, match="loss is nan at step 6 \\(epoch 2\\)"):
        train_and_evaluate(config, str(tmp_path), verbose=0)
    assert _latest_step(str(tmp_path)) == 4  # the end of epoch 1, before the bad update
    assert not os.path.exists(os.path.join(tmp_path, "model.keras"))


@pytest.mark.large
def test_crash_during_model_write_keeps_the_previous_model(tmp_path, monkeypatch):
    config = tiny_mnist_config("trades", data={"train_examples": 128},
                               train={"epochs": 1, "batch_size": 64})
    train_and_evaluate(config, str(tmp_path), verbose=0)
    path = os.path.join(tmp_path, "model.keras")
    before = open(path, "rb").read()

    def crash_midway(self, filepath, *args, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half a model")
        raise OSError("disk full (injected)")

    monkeypatch.setattr(keras.Model, "save", crash_midway)
    bigger = tiny_mnist_config("trades", data={"train_examples": 128},
                               train={"epochs": 2, "batch_size": 64})
    with pytest.raises(OSError, match="injected"):
        train_and_evaluate(bigger, str(tmp_path), verbose=0)
    assert open(path, "rb").read() == before
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".model.keras")]


@pytest.mark.large
def test_crash_during_checkpoint_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    from tensorflow.python.checkpoint import checkpoint_management

    config = tiny_mnist_config("trades", data={"train_examples": 128},
                               train={"epochs": 2, "batch_size": 64})
    assert train_and_evaluate(config, str(tmp_path), verbose=0, stop_after_steps=2)["steps"] == 2
    assert _latest_step(str(tmp_path)) == 2

    def crash(*args, **kwargs):  # after the data files, before the state file points at them
        raise OSError("killed while checkpointing (injected)")

    monkeypatch.setattr(checkpoint_management, "update_checkpoint_state_internal", crash)
    with pytest.raises(OSError, match="injected"):
        train_and_evaluate(config, str(tmp_path), verbose=0)
    monkeypatch.undo()
    assert _latest_step(str(tmp_path)) == 2
    summary = train_and_evaluate(config, str(tmp_path), verbose=0)  # resumes from step 2
    assert summary["steps"] == 4


def test_atomic_text_write_survives_a_crash(tmp_path):
    path = str(tmp_path / "summary.json")
    io_utils.atomic_write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with io_utils.atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write('{"a": ')
            raise RuntimeError("crash")
    assert json.load(open(path)) == {"a": 1}
    assert os.listdir(tmp_path) == ["summary.json"]


def _trained_dir(tmp_path):
    model_dir = str(tmp_path / "trained")
    subprocess.run(_train_cmd(model_dir, "--epochs=1", "--train_examples=128"), cwd=REPO,
                   check=True, capture_output=True, timeout=600)
    return model_dir


def _corrupt_latest_checkpoint(model_dir):
    latest = tf.train.latest_checkpoint(os.path.join(model_dir, "checkpoints"))
    with open(latest + ".data-00000-of-00001", "r+b") as f:
        f.truncate(16)


BAD_INPUT = [
    # (name, extra flags, setup, expected message)
    ("unknown dataset", ["--dataset=imagenet_nope"], None, "unknown dataset 'imagenet_nope'"),
    ("negative eps", ["--epsilon=-0.1"], None, "epsilon must be > 0. Received: epsilon=-0.1"),
    ("step above eps", ["--epsilon=0.1", "--step_size=0.2"], None, "step_size must be in"),
    ("robust dims too big", ["--robust_dims=200"], None, "robust_dims=200"),
    ("batch size 0", ["--batch_size=0"], None, "batch_size must be >= 1"),
    ("unknown method", ["--method=madry"], None, "method must be one of"),
    ("bad decay list", ["--lr_decay_epochs=a,b"], None, "comma-separated list of integers"),
    ("other method's dir", ["--method=trades"], "trained", "holds a model with method='nfi'"),
    ("corrupt checkpoint", [], "corrupt", "is corrupt or from another model"),
]


@pytest.mark.large  # one training subprocess per case
@pytest.mark.parametrize("name,extra,setup,message", BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, name, extra, setup, message):
    model_dir = str(tmp_path / "fresh")
    if setup:
        model_dir = _trained_dir(tmp_path)
        if setup == "corrupt":
            _corrupt_latest_checkpoint(model_dir)
            os.remove(os.path.join(model_dir, "model.keras"))
        extra = [*extra, "--epochs=2"]
    before = sorted(os.listdir(model_dir)) if os.path.exists(model_dir) else None
    out = subprocess.run(_train_cmd(model_dir, *extra), cwd=REPO, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    errors = [line for line in out.stderr.splitlines() if "nfi_tf.train: error:" in line]
    assert len(errors) == 1 and message in errors[0], out.stderr[-1500:]
    assert "Traceback" not in out.stderr
    after = sorted(os.listdir(model_dir)) if os.path.exists(model_dir) else None
    assert before == after or before is None  # nothing written or removed on bad input


def test_loading_a_missing_or_corrupt_model_is_a_clear_error(tmp_path):
    from nfi_tf.model_io import load_classifier

    with pytest.raises(NfiError, match="no trained model at"):
        load_classifier(str(tmp_path / "model.keras"))
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(NfiError, match="corrupt or not a Keras model"):
        load_classifier(str(bad))


@pytest.mark.large
def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(tmp_path):
    script = os.path.join(TESTS, "scripts", "mirrored_equivalence.py")
    env = dict(os.environ, PYTHONPATH=REPO)
    out = subprocess.run([sys.executable, script, str(tmp_path), TESTS], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["n"] == 18
    # Same global batches, same random starts; only the cross-replica gradient sum's order
    # differs (and the sign steps of PGD it can flip): close, not bit-identical.
    assert result["max_abs_diff"] < 5e-3, result


def test_atomic_write_gives_the_mode_a_plain_open_would(tmp_path):
    # mkstemp's 0600 must not leak into user files (a served model unreadable by another user).
    old = os.umask(0o022)
    try:
        path = str(tmp_path / "config.json")
        io_utils.atomic_write_json(path, {"a": 1})
    finally:
        os.umask(old)
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o644)


def test_a_finished_run_asked_again_with_other_settings_keeps_its_config(tmp_path, capsys):
    # Rerunning a changed recipe (the quickstart's PGD-10 -> PGD-5) on an old, finished model dir
    # trains nothing; config.json must go on saying what the model was trained with.
    config = tiny_mnist_config("trades", data={"train_examples": 128},
                               train={"epochs": 1, "batch_size": 64})
    train_and_evaluate(config, str(tmp_path), verbose=0)
    before = open(os.path.join(tmp_path, "config.json")).read()
    weights = _weights(str(tmp_path))
    changed = tiny_mnist_config("trades", data={"train_examples": 128},
                                train={"epochs": 1, "batch_size": 64},
                                attack={"num_steps": config.attack.num_steps + 3})
    summary = train_and_evaluate(changed, str(tmp_path), verbose=1)
    assert open(os.path.join(tmp_path, "config.json")).read() == before
    assert summary["finished"] and summary["steps"] == 2
    for a, b in zip(weights, _weights(str(tmp_path))):
        np.testing.assert_array_equal(a, b)
    out = capsys.readouterr().out
    assert (f"nothing to train: {tmp_path} holds a finished run trained with other settings "
            f"(attack.num_steps={config.attack.num_steps}->{config.attack.num_steps + 3})") in out
    # The same settings again: nothing printed, config.json the same.
    train_and_evaluate(config, str(tmp_path), verbose=1)
    assert "nothing to train" not in capsys.readouterr().out
    assert open(os.path.join(tmp_path, "config.json")).read() == before
