"""Real training steps on real MNIST, and the train CLI end to end."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import run_cli, tiny_mnist_config

from nfi_tf import data
from nfi_tf.models import build_classifier
from nfi_tf.training import AdversarialTrainer, configure_runtime, make_optimizer, train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _trainer(config):
    configure_runtime(config)
    model = build_classifier(config.model, (28, 28, 1), 10)
    trainer = AdversarialTrainer(model, config)
    trainer.compile(optimizer=make_optimizer(config, steps_per_epoch=10))
    return model, trainer


def _real_batches(config, n):
    x, y = data.load_arrays(config.data, "train", n)
    return tf.constant(data.uint8_to_float(x)), tf.constant(y)


def test_trades_steps_on_real_mnist_lower_the_training_loss():
    config = tiny_mnist_config("trades")
    model, trainer = _trainer(config)
    x, y = _real_batches(config, 384)
    step = tf.function(trainer.train_step)
    fixed_seed = tf.constant([0, 0], tf.int64)

    def loss_now():
        x_adv = trainer.adversarial_examples(x, fixed_seed)
        terms, _, _ = trainer.compute_losses(x, x_adv, y, training=False)
        return float(terms["loss"])

    before = loss_now()
    for _ in range(4):  # 4 epochs of 6 batches of 64
        for i in range(0, 384, 64):
            step((x[i:i + 64], y[i:i + 64]))
    after = loss_now()
    assert after < before - 0.3, (before, after)


def test_nfi_steps_change_every_head_and_keep_every_loss_finite():
    config = tiny_mnist_config("nfi")
    model, trainer = _trainer(config)
    x, y = _real_batches(config, 256)
    heads = model.get_layer("heads")
    before = {v.path: np.array(v) for v in heads.trainable_variables}
    step = tf.function(trainer.train_step)
    for i in range(0, 256, 64):
        metrics = {k: float(v) for k, v in step((x[i:i + 64], y[i:i + 64])).items()}
        for name in ("loss", "loss_tradeoff", "loss_benign", "loss_adversarial",
                     "loss_counterfactual"):
            assert np.isfinite(metrics[name]), (name, metrics[name])
    assert {"route_benign", "route_adversarial", "route_tradeoff", "acc_robust_part"} <= set(metrics)
    shares = metrics["route_benign"] + metrics["route_adversarial"] + metrics["route_tradeoff"]
    assert shares == pytest.approx(1.0, abs=1e-6)
    for v in heads.trainable_variables:
        assert np.abs(np.array(v) - before[v.path]).max() > 0, f"{v.path} did not change"


def test_detached_aux_heads_do_not_train_the_backbone():
    config = tiny_mnist_config("nfi", loss={"detach_aux_heads": True, "tradeoff_weight": 0.0,
                                            "counterfactual_weight": 0.0})
    model, trainer = _trainer(config)
    x, y = _real_batches(config, 64)
    backbone = model.get_layer("backbone")
    before = [np.array(v) for v in backbone.trainable_variables]
    tf.function(trainer.train_step)((x, y))
    # Only the benign/adversarial losses remain and they are detached: f must not move.
    for a, v in zip(before, backbone.trainable_variables):
        np.testing.assert_array_equal(a, np.array(v))
    assert np.abs(np.array(model.get_layer("heads").benign_kernel)).sum() > 0


@pytest.mark.large  # one training run per option
@pytest.mark.parametrize("option", [{"jit_compile": True}, {"mixed_precision": "mixed_bfloat16"}])
def test_xla_and_mixed_precision_run_on_cpu(tmp_path, option):
    config = tiny_mnist_config("nfi", train=option)
    try:
        result = train_and_evaluate(config, str(tmp_path), verbose=0, stop_after_steps=2)
    finally:
        import keras

        keras.mixed_precision.set_global_policy("float32")
    assert (result["steps"], result["finished"]) == (2, False)
    assert result["stop_reason"] == "stop_after_steps=2"
    assert os.path.exists(os.path.join(tmp_path, "checkpoints", "checkpoint"))


@pytest.mark.large
def test_cli_end_to_end_writes_every_artifact(tmp_path):
    model_dir = str(tmp_path / "run")
    out = run_cli("nfi_tf.train", "--dataset=mnist", f"--model_dir={model_dir}",
                  "--train_examples=256", "--eval_examples=64", "--epochs=2", "--batch_size=64",
                  "--attack_steps=3", "--step_size=0.1", "--eval_attack_steps=3",
                  "--eval_step_size=0.1")
    assert out.returncode == 0, out.stderr[-2000:]
    assert "clean accuracy" in out.stdout
    for name in ("config.json", "history.json", "model.keras", "summary.json",
                 "checkpoints/checkpoint"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    summary = json.load(open(os.path.join(model_dir, "summary.json")))
    assert summary["steps"] == 8 and summary["epochs"] == 2 and summary["method"] == "nfi"
    assert 0.0 <= summary["final_test"]["clean_routed"] <= 1.0
    assert summary["final_test"]["examples"] == 64
    config = json.load(open(os.path.join(model_dir, "config.json")))
    assert config["attack"]["num_steps"] == 3 and config["attack"]["epsilon"] == 0.3
    history = json.load(open(os.path.join(model_dir, "history.json")))
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(h["seconds"] > 0 for h in history)  # each epoch's wall time
    assert os.listdir(os.path.join(model_dir, "logs"))  # TensorBoard events
