"""The adversarial training step: one PGD generation per batch, then all losses, one update.

The PGD is the project's one core (`nfi_tf.attacks.pgd_core.pgd`: CleverHans' PGD loop with a
start drawn statelessly from (seed, step)), the same the per-epoch check and the evaluation run.

`AdversarialTrainer` is a Keras 3 model following the keras-io custom `train_step` idiom, so
it also works with `compile()`/`fit()` (tests/test_own_backbone.py): `make_trainer` builds one
from a config or around your own classifier, `compile()` defaults to the config's SGD, `fit()`
logs epoch means of every batch metric (as the CLI's history does) and takes Keras' callbacks,
`evaluate()` / validation report clean `acc_routed` and `acc_tradeoff`, and `save_model_dir`
writes the model dir that `export` and `nfi_tf.evaluate` read. `nfi_tf.training.controller`
drives the same step with its own loop for exact resume, NaN stops and tf.distribute. The step
reads nothing global: the config is passed in. `step_function` compiles it for a strategy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import keras
import tensorflow as tf

from nfi_tf import backbones, data, losses, model_io, outputs
from nfi_tf.attacks import losses as attack_losses
from nfi_tf.attacks import pgd_core
from nfi_tf.attacks.seeds import stateless_seed
from nfi_tf.config import Config
from nfi_tf.models.classifier import build_classifier, feature_dims
from nfi_tf.outputs import ROUTE_NAMES
from nfi_tf.vocab import Method


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
        # fit()/evaluate(): one Mean per logged value, made when the step is first traced (the
        # keys depend on the config's losses). Kept out of Keras' attribute tracking.
        self._means = _Means()
        self._epoch_means = False  # set by fit(): train_step then returns epoch means
        # The classifier is built (functional): so is the trainer, as BackupAndRestore requires.
        self.built = True

    # === Keras' compile()/fit() ===

    def compile(self, optimizer=None, **kwargs):
        """Keras' compile; `optimizer=None`: SGD with the config's learning rate and momentum
        (constant: pass `nfi_tf.training.make_optimizer(config, steps_per_epoch)` for TRADES'
        decay epochs). `jit_compile` defaults to the config's. The losses are the step's own:
        `loss`/`metrics` arguments are not used."""
        if optimizer is None:
            t = self.config.train
            optimizer = keras.optimizers.SGD(learning_rate=t.learning_rate, momentum=t.momentum)
        kwargs.setdefault("jit_compile", self.config.train.jit_compile)
        super().compile(optimizer=optimizer, **kwargs)

    def fit(self, *args, **kwargs):
        """Keras' fit on [0, 1] float images and integer labels; logs are epoch means."""
        self._epoch_means = True
        try:
            return super().fit(*args, **kwargs)
        finally:
            self._epoch_means = False

    @property
    def metrics(self):
        return list(self._means.trackers.values())

    def _mean_logs(self, values: dict) -> dict:
        out = {}
        for key, value in values.items():
            if key not in self._means.trackers:
                self._means.trackers[key] = keras.metrics.Mean(name=key)
            tracker = self._means.trackers[key]
            tracker.update_state(value)
            out[key] = tracker.result()
        return out

    def save_model_dir(self, model_dir: str, *, serving_examples: bool = True,
                       download: bool = True) -> str:
        """Write `model_dir` as `python -m nfi_tf.train` does (config.json, model.keras and,
        unless told not to, serving_examples.npz): `export` and `nfi_tf.evaluate` take it."""
        return model_io.save_model_dir(self.classifier, self.config, model_dir,
                                       serving_examples=serving_examples, download=download)

    def counterfactual_state(self) -> dict[str, tf.Variable]:
        """The variables a checkpoint must hold for an exact resume (none unless the running
        form is used, so checkpoints of the other forms keep their old layout)."""
        if self.config.model.method != Method.NFI or self.config.loss.counterfactual_loss != "running":
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
        if self.config.loss.detach_aux_heads and self.config.model.method == Method.NFI:
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
        if self.config.model.method != Method.NFI:
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
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
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
        m = self.batch_metrics(terms, clean, adv, y)
        return self._mean_logs(m) if self._epoch_means else m

    def batch_metrics(self, terms, clean, adv, y):
        m = dict(terms)
        m["acc_tradeoff"] = _accuracy(y, clean[outputs.TRADEOFF])
        m["adv_acc_tradeoff"] = _accuracy(y, adv[outputs.TRADEOFF])
        if self.config.model.method == Method.NFI:
            m["acc_benign"] = _accuracy(y, clean[outputs.BENIGN])
            m["adv_acc_adversarial"] = _accuracy(y, adv[outputs.ADVERSARIAL])
            m["acc_robust_part"] = _accuracy(y, clean[outputs.ROBUST_PART])
            m["acc_nonrobust_part"] = _accuracy(y, clean[outputs.NONROBUST_PART])
            m["acc_routed"] = _accuracy(y, clean[outputs.ROUTED])
            for i, name in enumerate(ROUTE_NAMES):
                m[f"route_{name}"] = tf.reduce_mean(tf.cast(tf.equal(clean[outputs.ROUTE], i), tf.float32))
        return m

    def test_step(self, data):
        """Clean accuracy of the routed output and the trade-off head (means over the batches;
        batch-size weighted, so the last partial batch counts by its size)."""
        x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
        out = self.classifier(x, training=False)
        size = tf.cast(tf.shape(y)[0], tf.float32)
        logs = {}
        for key, name in (("acc_routed", outputs.ROUTED), ("acc_tradeoff", outputs.TRADEOFF)):
            if key not in self._means.trackers:
                self._means.trackers[key] = keras.metrics.Mean(name=key)
            self._means.trackers[key].update_state(_accuracy(y, out[name]), sample_weight=size)
            logs[key] = self._means.trackers[key].result()
        return logs


class _Means:
    """A plain holder (Keras tracks a model's dict attributes; these metrics are made lazily)."""

    def __init__(self):
        self.trackers: dict[str, keras.metrics.Mean] = {}


def make_trainer(config: Config, classifier: keras.Model | None = None, *, image_shape=None,
                 num_classes=None) -> AdversarialTrainer:
    """An `AdversarialTrainer` for compile()/fit().

    Without `classifier`: the one `config.model` describes, on the dataset's image shape and
    classes (from its info unless given). With your own (`nfi_tf.build_classifier(backbone=...)`):
    its method and robust_dims are written into the config (backbone `custom` unless the
    config's backbone has its feature size), so the saved config.json describes the model.
    """
    if classifier is None:
        if image_shape is None or num_classes is None:
            info = data.load_info(config.data)
            image_shape = image_shape or info.image_shape
            num_classes = num_classes or info.num_classes
        classifier = build_classifier(config.model, image_shape, num_classes)
        return AdversarialTrainer(classifier, config)
    return AdversarialTrainer(classifier, config_for(classifier, config))


def config_for(classifier: keras.Model, config: Config) -> Config:
    """`config` with its model group describing `classifier` (method, robust_dims, backbone)."""
    heads = classifier.get_layer(outputs.HEADS_LAYER)
    method = Method.NFI if tuple(heads.heads) == outputs.HEADS else Method.TRADES
    m = config.model
    same = backbones.known_feature_dims(m) == feature_dims(classifier)
    model = dataclasses.replace(m, method=method, robust_dims=int(heads.robust_dims),
                                backbone=m.backbone if same else backbones.CUSTOM,
                                backbone_weights=m.backbone_weights if same else None)
    return Config.from_dict({**config.to_dict(), "model": dataclasses.asdict(model)})


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
