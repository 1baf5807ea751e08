"""The naive baseline: the same TRADES step written the obvious way, in eager mode.

CleverHans' `projected_gradient_descent` is called per batch outside any `tf.function` (with
its default sanity checks, which pull tensors to the host), then the loss is taped eagerly and
the optimizer applied. Same model, attack budget, losses (`nfi_tf.losses.trades_loss`) and
optimizer as the compiled step, so their time ratio is the compiled step's speed-up. Only
used by the benchmark: training uses `nfi_tf.training.AdversarialTrainer`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

from nfi_tf import losses, outputs
from nfi_tf.attacks.losses import kl_loss_fn


class NaiveTradesStep:
    """Callable on a batch (x, y), returning {"loss": ...} like the compiled step."""

    def __init__(self, classifier, optimizer, config):
        self.classifier = classifier
        self.optimizer = optimizer
        self.config = config

    def _logits(self, x):
        return self.classifier(x, training=False)[outputs.TRADEOFF]

    def __call__(self, batch):
        x, y = batch
        a = self.config.attack
        clean = self._logits(x)
        x_adv = projected_gradient_descent(
            self._logits, x, eps=a.epsilon, eps_iter=a.step_size, nb_iter=a.num_steps,
            norm=np.inf, loss_fn=kl_loss_fn, clip_min=0.0, clip_max=1.0, y=clean, rand_init=True,
            rand_minmax=0.001)
        variables = self.classifier.trainable_variables
        with tf.GradientTape() as tape:
            clean_out = self.classifier(x, training=True)
            adv_out = self.classifier(x_adv, training=True)
            terms = losses.trades_loss(clean_out, adv_out, y, self.config.loss)
            objective = terms["loss"]
            wd = self.config.train.weight_decay
            if wd:  # coupled L2, as the compiled step
                objective += 0.5 * wd * tf.add_n([tf.reduce_sum(tf.square(v)) for v in variables])
        grads = tape.gradient(objective, variables)
        self.optimizer.apply(grads, variables)
        return terms
