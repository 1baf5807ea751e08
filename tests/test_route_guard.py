"""The route guard (--route_guard_weight, an option beside the paper's method): its steering
objective by hand, its config check, and the training step's extra PGD and loss on real MNIST."""

import os

import numpy as np
import pytest
import tensorflow as tf
from helpers import tiny_mnist_config

from nfi_tf import attacks, data
from nfi_tf.errors import NfiError
from nfi_tf.model_io import load_classifier
from nfi_tf.models import build_classifier
from nfi_tf.training import AdversarialTrainer, configure_runtime, make_optimizer


def test_agreement_objective_by_hand():
    # Two score vectors over 3 classes, target class 2.
    a = [1.0, 0.0, 3.0]   # t wins by 2
    b = [5.0, 0.0, -10.0]  # t loses by 15 (the cap bounds only the upper side)
    logits = tf.constant([a + b], tf.float32)
    got = attacks.agreement_loss_fn(tf.constant([2]), logits, num_scores=2, cap=10.0)
    assert got.numpy() == pytest.approx([2.0 + (-15.0)])
    far = tf.constant([[0.0, 0.0, 50.0] + [0.0, 0.0, 1.0]])  # first score past the cap
    assert attacks.agreement_loss_fn(tf.constant([2]), far, num_scores=2).numpy() == pytest.approx([11.0])


def test_route_guard_needs_the_routed_model_and_a_non_negative_weight():
    with pytest.raises(NfiError, match="Received: route_guard_weight=1.0, method=trades"):
        tiny_mnist_config("trades", loss={"route_guard_weight": 1.0})
    with pytest.raises(NfiError, match="route_guard_weight must be >= 0"):
        tiny_mnist_config("nfi", loss={"route_guard_weight": -1.0})
    assert tiny_mnist_config("nfi").loss.route_guard_weight == 0.0  # the paper's method by default


def _trainer(weight):
    config = tiny_mnist_config("nfi", data={"train_examples": 128}, attack={"num_steps": 5},
                               loss={"route_guard_weight": weight})
    configure_runtime(config)
    model = build_classifier(config.model, (28, 28, 1), 10)
    trainer = AdversarialTrainer(model, config)
    trainer.compile(optimizer=make_optimizer(config, steps_per_epoch=2))
    x, y = data.load_arrays(config.data, "train", 64)
    return trainer, config, tf.constant(data.uint8_to_float(x)), tf.constant(y)


def test_route_guard_examples_steer_the_switch_within_the_ball(trained_mnist_dir):
    trainer, config, x, y = _trainer(1.0)
    # The briefly trained fixture model: its routes mean something (an untrained one's do not).
    trainer.classifier.set_weights(load_classifier(os.path.join(trained_mnist_dir, "model.keras"))
                                   .get_weights())
    x_rg = trainer.route_guard_examples(x, tf.constant([0, 0], tf.int64)).numpy()
    eps = config.attack.epsilon
    assert np.max(np.abs(x_rg - x.numpy())) <= eps + 1e-6
    assert x_rg.min() >= 0.0 and x_rg.max() <= 1.0
    # The PGD raised the agreement of the four deciding scores on the chosen wrong class.
    out = trainer.classifier(x, training=False)
    clean = out["tradeoff"].numpy()
    masked = clean.copy()
    masked[np.arange(len(clean)), clean.argmax(1)] = -np.inf
    target = tf.constant(masked.argmax(1), tf.int32)

    def all_on_target(images):
        o = trainer.classifier(images, training=False)
        return np.all([o[n].numpy().argmax(1) == target.numpy()
                       for n in ("tradeoff", "rob", "nr", "benign")], axis=0)

    # On the clean images no example has its four deciding scores on t; after the PGD some do.
    assert all_on_target(x).mean() == 0.0
    # 9 of 64 (14%) at 5 steps on both committed fixtures, with oneDNN's kernels on and off.
    assert all_on_target(x_rg).mean() > 0.1


def test_training_step_adds_the_guard_only_when_asked():
    trainer, _, x, y = _trainer(0.5)
    m = {k: float(v) for k, v in tf.function(trainer.train_step)((x, y)).items()}
    assert np.isfinite(m["loss_route_guard"]) and m["loss_route_guard"] > 0
    assert 0.0 <= m["route_guard_fooled"] <= 1.0
    # The total is the paper's loss plus the weighted guard term.
    paper = m["loss_tradeoff"] + m["loss_benign"] + m["loss_adversarial"] + 0.1 * m["loss_counterfactual"]
    assert m["loss"] == pytest.approx(paper + 0.5 * m["loss_route_guard"], rel=1e-4)
    off, _, x0, y0 = _trainer(0.0)
    assert "loss_route_guard" not in tf.function(off.train_step)((x0, y0))
