"""Long runs say how long (issue 35, 4): the training cost model's arithmetic, the line a run
prints at start, the measured time left after each epoch, and `python -m nfi_tf.train
--dry_run`, which prints the estimate (with the CPU-scale recipe for the paper's WRN-34-10) and
trains, downloads and writes nothing."""

import io
import json
import os
import re

import numpy as np
import pytest
from absl import flags as absl_flags
from helpers import run_cli

from flags import train as train_flags
from nfi_tf import estimate as est
from nfi_tf import flops
from nfi_tf.config import make_config, preset_note
from nfi_tf.experiments.reproduction import FULL
from nfi_tf.progress import LineProgress
from nfi_tf.training import estimate, train_and_evaluate
from nfi_tf.training.dry_run import dry_run

F = 1_000_000  # a model of 1 MFLOP per image


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _config(**train):
    return make_config("mnist", {
        "attack": {"num_steps": 2}, "eval_attack": {"num_steps": 3},
        "train": {"epochs": 2, "batch_size": 64, **train}})


def test_the_cost_is_images_times_flops_times_the_attack_steps():
    cost = estimate.training_cost(_config(), F, train_examples=256, check_examples=100)
    # per epoch: 256 images x F x (2 x 2 + 7) training, 100 checked x F x (2 x 3 + 2)
    assert cost.epoch_flops == 256 * F * 11 + 100 * F * 8 == 3_616 * F
    assert (cost.steps_per_epoch, cost.total_steps, cost.step_flops) == (4, 8, 64 * F * 11)
    assert cost.flops_left == 2 * 3_616 * F
    rate = est.Rate(1e9, "given")
    assert estimate.seconds_left(cost, rate) == pytest.approx(7.232)
    # A resumed run at step 6 of 8 has a quarter of the FLOPs left.
    resumed = estimate.training_cost(_config(), F, 256, 100, done_steps=6)
    assert resumed.flops_left == pytest.approx(3_616 * F / 2)
    assert "2 of 8 steps left" in estimate.start_line(_config(), resumed, rate)
    assert estimate.start_line(_config(), estimate.training_cost(_config(), F, 256, 100, 8), rate) is None
    # The route guard adds its own PGD and loss: F x (2K + 4) per image.
    guarded = make_config("mnist", {"attack": {"num_steps": 2}, "loss": {"route_guard_weight": 1.0}})
    assert estimate.training_cost(guarded, F, 64, 0).epoch_flops == 64 * F * (11 + 8)
    assert flops.epoch_check_flops(F, 3, 100) == 800 * F
    # 127 images in batches of 64: 2 steps, the FLOPs of 127 images.
    ragged = estimate.training_cost(_config(), F, 127, 0)
    assert (ragged.steps_per_epoch, ragged.epoch_flops) == (2, 127 * F * 11)


def test_the_assumed_rate_and_durations():
    cpu = est.Rate.assumed(gpus=0, cores=2)
    assert cpu.flop_per_s == 2 * est.CPU_GFLOP_PER_S_PER_CORE * 1e9 == 140e9
    assert "no GPU found" in cpu.basis and "BENCHMARKS.md" in cpu.basis
    assert cpu.time_text(140e9 * 3600 * 5) == f"about 5 h at 140 GFLOP/s ({cpu.basis})"
    gpu = est.Rate.assumed(gpus=1, cores=2)
    assert gpu.flop_per_s is None and gpu.seconds(1e12) is None
    assert gpu.time_text(1e12) == gpu.basis and "measured" in gpu.basis
    assert [est.duration(s) for s in (45, 720, 3.4 * 3600, 113 * 86400)] == [
        "45 s", "12 min", "3.4 h", "113 days"]
    assert est.flop_text(46.0e12) == "46 TFLOP" and est.flop_text(19.9e6) == "19.9 MFLOP"


def test_the_pace_leaves_out_the_first_step_once_it_can():
    clock = Clock()
    pace = est.Pace(10, clock)
    assert pace.left(5) is None
    clock.now = 30.0  # the first step: tracing
    pace.tick(11)
    assert pace.left(5) == pytest.approx(150.0)  # only the first step to go by
    clock.now = 34.0
    pace.tick(13)
    assert pace.seconds_per_unit() == pytest.approx(2.0)  # steps 12 and 13, 4 s
    assert pace.left(5) == pytest.approx(10.0)


def test_line_progress_says_the_time_left_and_the_note():
    out = io.StringIO()
    bar = LineProgress(4, "epoch 1", "step", every=0.0, stream=out, left=True,
                       note=lambda: "the run: about 1 h left")
    for i in range(4):
        bar.update(i + 1)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("epoch 1: 1/4 step (25%), ")
    assert all(", about " in ln and ln.endswith(" left; the run: about 1 h left") for ln in lines[:3])
    assert lines[-1].startswith("epoch 1: 4/4 step (100%), ") and ", about" not in lines[-1]
    assert lines[-1].endswith("; the run: about 1 h left")


def test_the_paper_model_is_named_with_the_cpu_scale_recipes_flags():
    cifar = make_config("cifar10")
    assert estimate.is_paper_model(cifar.model) and not estimate.is_paper_model(
        make_config("cifar10", {"model": {"depth": 10, "width": 1}}).model)
    flags = estimate.cpu_scale_flags(cifar)
    assert {"--depth=10", "--width=1", "--robust_dims=32", "--attack_steps=5", "--epochs=5",
            "--lr_decay_epochs=4"} <= set(flags)
    cost = estimate.training_cost(cifar, 13_317_838_336, 50_000, 1000)
    line = estimate.start_line(cifar, cost, est.Rate.assumed(0, 2))
    assert "paper's CIFAR-10 model (WRN-34-10)" in line and " ".join(flags) in line
    assert "days at 140 GFLOP/s" in line and "this run goes on" in line
    # With a GPU the note is not given (and no CPU rate is assumed).
    assert "WRN-34-10" not in estimate.start_line(cifar, cost, est.Rate.assumed(1, 2))


def test_a_tiny_training_run_prints_the_estimate_and_the_measured_time_left(tmp_path, capsys):
    config = make_config("mnist", {
        "data": {"train_examples": 256, "eval_examples": 32},
        "attack": {"num_steps": 1, "step_size": 0.1},
        "eval_attack": {"num_steps": 1, "step_size": 0.1},
        "train": {"epochs": 2, "batch_size": 128, "lr_decay_epochs": ()}})
    train_and_evaluate(config, str(tmp_path / "run"))
    out = capsys.readouterr().out
    assert "\nnfi_tf: estimate: 2 epochs x 2 steps of 128 images, 22.9 GFLOP per step (19.9 " \
           "MFLOP forward x (2 x 1 PGD steps + 7) per image)" in out
    assert " at 140 GFLOP/s (no GPU found" in out or "GPU(s) found" in out
    lines = out.splitlines()
    first = next(ln for ln in lines if ln.startswith("epoch 1/2: "))
    assert first.endswith(" left (from the measured steps)"), first
    assert next(ln for ln in lines if ln.startswith("epoch 2/2: ")).endswith("; training done")


@pytest.fixture(scope="module")
def cifar_dry_run():
    return run_cli("nfi_tf.train", "--dataset=cifar10", "--dry_run", timeout=300)


def test_dry_run_names_the_cpu_scale_recipe_for_the_paper_model(cifar_dry_run):
    out = cifar_dry_run
    assert out.returncode == 0, out.stderr[-2000:]
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("nfi_tf: estimate: "))
    assert line.startswith("nfi_tf: estimate: 76 epochs x 391 steps of 128 images, 46 TFLOP per step")
    assert " days at " in line or "GPU(s) found" in line
    if "no GPU found" in line:  # the note: the reproduction's flags, as the command takes them
        recipe = line.split("this command with ")[1].split(" (a note")[0].split()
        values = absl_flags.FlagValues()
        train_flags.define_train_flags(flag_values=values)
        values(["prog", "--model_dir=m", "--dataset=cifar10", *recipe])
        assert train_flags.train_config_from_flags(values) == make_config(
            "cifar10", FULL["cifar10"]["common"])


def test_dry_run_writes_and_downloads_nothing(tmp_path):
    model_dir, cache = tmp_path / "model", tmp_path / "cache"
    env = {**os.environ, "NFI_TF_CACHE_DIR": str(cache)}
    out = run_cli("nfi_tf.train", "--dataset=mnist", "--estimate", f"--model_dir={model_dir}",
                  "--epochs=3", timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert not model_dir.exists() and not cache.exists()
    assert re.search(r"^nfi_tf: estimate: 3 epochs x \d+ steps of 128 images, ", out.stdout, re.M)
    assert "dry run: nothing was trained" in out.stdout
    printed = out.stdout[out.stdout.index("{"):]
    assert json.loads(printed) == json.loads(make_config("mnist", {"train": {"epochs": 3}}).to_json())
    # A dataset not on disk is not downloaded: its declared sizes, or a one-line error.
    offline = run_cli("nfi_tf.train", "--dataset=cifar10", "--dry_run",
                      f"--data_dir={tmp_path / 'empty'}", "--depth=10", "--width=1",
                      timeout=300, env=env)
    if offline.returncode:  # no split sizes without the network: --train_examples is the fix
        assert offline.returncode == 2 and "--train_examples=N" in offline.stderr
    assert not [f for _, _, files in os.walk(tmp_path / "empty") for f in files]


def test_the_derived_preset_note_carries_the_estimate(tmp_path):
    path = str(tmp_path / "images.npz")
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.integers(0, 256, (120, 32, 32, 3), dtype=np.uint8),
             y=np.arange(120) % 10)
    config = make_config(path)
    lines = dry_run(config)
    note = next(ln for ln in lines if "has no preset" in ln)
    if not est.gpu_count():  # no rate is assumed with a GPU: the note stays as it was
        assert "wide_resnet depth 34 width 10 (slow on a CPU, about " in note
        assert " for this run here: --backbone=small_cnn" in note
    assert "\n" not in note
    assert "for this run here" in preset_note(config.data.dataset, (32, 32, 3),
                                              "about 11 h for this run here")
