"""The adversarial training step: one PGD generation per batch, then all losses, one update.

The PGD is the project's one core (`nfi_tf.attacks.pgd_core.pgd`: CleverHans' PGD loop with a
start drawn statelessly from (seed, step)), the same the per-epoch check and the evaluation run.

`AdversarialTrainer` is a Keras 3 model following the keras-io custom `train_step` idiom, so
it also works with `compile()`/`fit()`; `nfi_tf.training.controller` drives it with its own loop
for exact resume, NaN stops and tf.distribute. The step reads nothing global: the config is
passed in. `step_function` compiles it for a distribution strategy.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import tensorflow as tf

from nfi_tf import losses, outputs
from nfi_tf.attacks import losses as attack_losses
from nfi_tf.attacks import pgd_core
from nfi_tf.attacks.seeds import stateless_seed
from nfi_tf.config import Config
from nfi_tf.outputs import ROUTE_NAMES


def replica_info() -> tuple[tf.Tensor, int]:
    ctx = tf.distribute.get_replica_context()
    if ctx is None:  # cross-replica context: a single logical replica
        return tf.constant(0), 1
    return tf.cast(ctx.replica_id_in_sync_group, tf.int64), ctx.num_replicas_in_sync


def _accuracy(labels, logits):
    pred = tf.argmax(logits, axis=-1, output_type=tf.int32)
    return tf.reduce_mean(tf.cast(tf.equal(pred, tf.cast(labels, tf.int32)), tf.float32))


class AdversarialTrainer(keras.Model):
    """Wraps the classifier with the TRADES (`method=trades`) or nfi (`method=nfi`) step."""

    def __init__(self, classifier: keras.Model, config: Config, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.config = config
        self.heads_layer = classifier.get_layer(outputs.HEADS_LAYER)
        # The running counterfactual denominator (docs/method.md §2): a moving average of the
        # whole model's KL over steps, and how many steps it has seen (0: take the next batch's
        # value as is). Not trainable; checkpointed next to the model (`counterfactual_state`)
        # so a resumed run divides by what an uninterrupted one would. MEAN aggregation: every
        # replica assigns the same all-reduced value.
        self.cf_running_kl = tf.Variable(0.0, trainable=False, dtype=tf.float32,
                                         name="cf_running_kl",
                                         aggregation=tf.VariableAggregation.MEAN)
        self.cf_running_count = tf.Variable(0, trainable=False, dtype=tf.int64,
                                            name="cf_running_count",
                                            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)

    def counterfactual_state(self) -> dict[str, tf.Variable]:
        """The variables a checkpoint must hold for an exact resume (none unless the running
        form is used, so checkpoints of the other forms keep their old layout)."""
        if self.config.model.method != "nfi" or self.config.loss.counterfactual_loss != "running":
            return {}
        return {"running_kl": self.cf_running_kl, "running_count": self.cf_running_count}

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def _tradeoff_eval(self, x):
        # The attack sees the model in inference mode (batch-norm statistics frozen, no
        # dropout), as TRADES' `model.eval()` during generation.
        return self.classifier(x, training=False)[outputs.TRADEOFF]

    def adversarial_examples(self, x, seed):
        """x' maximizing KL(h_t(x) || h_t(x')) from TRADES' start x + 0.001 N(0, 1)."""
        clean_logits = tf.stop_gradient(self._tradeoff_eval(x))
        replica = replica_info()
        return pgd_core.pgd(self._tradeoff_eval, x, clean_logits, attack_losses.kl_loss_fn,
                            self.config.attack, seed, random_start="normal",
                            replica=replica if replica[1] > 1 else None)

    def route_guard_examples(self, x, seed):
        """x_rg: L-inf PGD (the training threat model) pushing the trade-off head, both part
        scores and the benign head onto one wrong class t (the trade-off head's strongest wrong
        class on x). Where all four agree on t the rule routes to the benign head, which then
        answers t: the attack that kept attacked CIFAR-10 inputs on the benign route.

        Why train `rob` against it: the benign route (and the adversarial one) needs the robust
        part score to agree with the trade-off head; if `rob` keeps the label on x_rg, no wrong
        class can be agreed on, and the switch falls back to the trade-off head."""
        clean = tf.stop_gradient(self.classifier(x, training=False)[outputs.TRADEOFF])
        num_classes = clean.shape[-1]
        target = tf.argmax(clean - 1e9 * tf.one_hot(tf.argmax(clean, axis=-1), num_classes),
                           axis=-1, output_type=tf.int32)
        names = (outputs.TRADEOFF, outputs.ROB, outputs.NR, outputs.BENIGN)

        def scores(images):
            out = self.classifier(images, training=False)
            return tf.concat([out[n] for n in names], axis=-1)

        def objective(labels, logits):
            return attack_losses.agreement_loss_fn(labels, logits, num_scores=len(names))

        replica = replica_info()
        return pgd_core.pgd(scores, x, target, objective, self.config.attack, seed,
                            random_start="uniform", replica=replica if replica[1] > 1 else None)

    def _route_guard(self, x_rg, y, training):
        """CE of the robust part score on x_rg, and how often x_rg fools the routed output."""
        out = self.classifier(x_rg, training=training)
        ce = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            y, tf.cast(out[outputs.ROB], tf.float32), from_logits=True))
        return ce, 1.0 - _accuracy(y, out[outputs.ROUTED])

    def step_seed(self, offset: int = 0):
        """The random start is a function of (seed, step): replayable after a resume. `offset`
        shifts the seed for a second attack in the same step (the key [seed + offset, step])."""
        return stateless_seed(self.config.train.seed + offset,
                              tf.cast(self.optimizer.iterations, tf.int64))

    def _outputs(self, x, training):
        out = dict(self.classifier(x, training=training))
        if self.config.loss.detach_aux_heads and self.config.model.method == "nfi":
            # Ablation: the benign and adversarial heads learn on a frozen copy of f(x).
            feature = tf.stop_gradient(out[outputs.FEATURE])
            for head in (outputs.BENIGN, outputs.ADVERSARIAL):
                out[head] = self.heads_layer.head_logits(head, feature)
        return out

    def _counterfactual_inputs(self, clean, adv):
        """(running denominator including this batch, or None; warm-up fraction), read from
        the state without changing it: `train_step` stores the new running value."""
        lo = self.config.loss
        warmup = None
        if lo.counterfactual_warmup_steps:
            warmup = losses.warmup_fraction(self.optimizer.iterations, lo.counterfactual_warmup_steps)
        if lo.counterfactual_loss != "running":
            return None, warmup
        whole = tf.cast(tf.stop_gradient(
            losses.kl_divergence(clean[outputs.TRADEOFF], adv[outputs.TRADEOFF])), tf.float32)
        ctx = tf.distribute.get_replica_context()
        if ctx is not None and ctx.num_replicas_in_sync > 1:
            # One denominator for the global batch, the same on every replica.
            whole = ctx.all_reduce(tf.distribute.ReduceOp.MEAN, whole)
        running = losses.running_mean_update(self.cf_running_kl, whole,
                                             lo.counterfactual_ema_decay, self.cf_running_count)
        return running, warmup

    def compute_losses(self, x, x_adv, y, training=True):
        clean = self._outputs(x, training)
        adv = self._outputs(x_adv, training)
        if self.config.model.method != "nfi":
            return losses.trades_loss(clean, adv, y, self.config.loss), clean, adv
        running, warmup = self._counterfactual_inputs(clean, adv)
        # Only forms that need state get it, so `nfi_loss(clean, adv, labels, cfg)` stays the call
        # for the others.
        state = {} if running is None else {"running": running}
        if warmup is not None:
            state["warmup"] = warmup
        terms = losses.nfi_loss(clean, adv, y, self.config.loss, **state)
        if running is not None:
            terms["cf_running_kl"] = running
        return terms, clean, adv

    def _weight_decay(self):
        # Coupled L2 (gradient += wd * w), as PyTorch SGD's weight_decay in TRADES' scripts;
        # Keras' own `weight_decay` is the decoupled form, which behaves differently with momentum.
        wd = self.config.train.weight_decay
        if wd == 0:
            return tf.constant(0.0)
        return 0.5 * wd * tf.add_n([tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                                    for v in self.classifier.trainable_variables])

    def train_step(self, data):
        x, y = data
        x_adv = self.adversarial_examples(x, self.step_seed())
        guard = self.config.loss.route_guard_weight
        if guard:
            # Its own random start: the seed pair shifted so it never repeats the PGD above.
            x_rg = self.route_guard_examples(x, self.step_seed(offset=7919))
        _, replicas = replica_info()
        with tf.GradientTape() as tape:
            terms, clean, adv = self.compute_losses(x, x_adv, y, training=True)
            if guard:
                ce, fooled = self._route_guard(x_rg, y, training=True)
                terms["loss_route_guard"], terms["route_guard_fooled"] = ce, fooled
                terms["loss"] = terms["loss"] + guard * ce
            objective = terms["loss"] + self._weight_decay()
            # Keras all-reduces (sums) gradients across replicas: average the per-replica loss.
            scaled = self.optimizer.scale_loss(objective / replicas)
        variables = self.classifier.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply(grads, variables)
        if "cf_running_kl" in terms:
            self.cf_running_kl.assign(terms["cf_running_kl"])
            self.cf_running_count.assign_add(1)
        return self.batch_metrics(terms, clean, adv, y)

    def batch_metrics(self, terms, clean, adv, y):
        m = dict(terms)
        m["acc_tradeoff"] = _accuracy(y, clean[outputs.TRADEOFF])
        m["adv_acc_tradeoff"] = _accuracy(y, adv[outputs.TRADEOFF])
        if self.config.model.method == "nfi":
            m["acc_benign"] = _accuracy(y, clean[outputs.BENIGN])
            m["adv_acc_adversarial"] = _accuracy(y, adv[outputs.ADVERSARIAL])
            m["acc_robust_part"] = _accuracy(y, clean[outputs.ROBUST_PART])
            m["acc_nonrobust_part"] = _accuracy(y, clean[outputs.NONROBUST_PART])
            m["acc_routed"] = _accuracy(y, clean[outputs.ROUTED])
            for i, name in enumerate(ROUTE_NAMES):
                m[f"route_{name}"] = tf.reduce_mean(tf.cast(tf.equal(clean[outputs.ROUTE], i), tf.float32))
        return m

    def test_step(self, data):
        x, y = data
        out = self.classifier(x, training=False)
        return {"acc_routed": _accuracy(y, out[outputs.ROUTED]),
                "acc_tradeoff": _accuracy(y, out[outputs.TRADEOFF])}


def step_function(trainer: AdversarialTrainer, strategy, jit_compile: bool) -> Callable:
    """The compiled training step as training runs it (public: the benchmarks time exactly this)."""
    replica_step = tf.function(trainer.train_step, jit_compile=jit_compile)
    if strategy.num_replicas_in_sync == 1:
        return replica_step

    @tf.function
    def distributed_step(batch):
        per_replica = strategy.run(replica_step, args=(batch,))
        return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    return distributed_step
