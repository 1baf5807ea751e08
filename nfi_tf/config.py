"""Run configuration: frozen, grouped dataclasses built once (from flags) and passed down.

The per-dataset presets equal TRADES' official scripts (docs/method.md §2); every field can be
overridden. The final config is written next to the checkpoints (`config.json`) so a model
dir always says how it was made, and evaluation/export read it back from there.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

from nfi_tf import backbones, io_utils
from nfi_tf.errors import NfiError, check
from nfi_tf.vocab import Method

BACKBONES = backbones.BACKBONES
ADVERSARIAL_LOSSES = ("ce", "literal_kl")
# docs/method.md §2; "relative" is accepted as the floored form's old name (LossConfig maps it).
COUNTERFACTUAL_LOSSES = ("floored", "running", "log_ratio", "literal")
MIXED_PRECISION = ("off", "mixed_float16", "mixed_bfloat16")
LR_SCHEDULES = ("piecewise", "cyclic")
STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


# Every setting's help text lives with its field (metadata "help"): the training flags are made
# from these fields (flags/dataclass_flags.py), their defaults shown from PRESETS. Metadata
# "none" says what a None default means; "flag" names a flag that differs from the field.


@dataclass(frozen=True)
class DataConfig:
    dataset: str = "mnist"
    data_dir: str | None = None  # None: tfds' default, which honours TFDS_DATA_DIR
    train_examples: int | None = field(default=None, metadata={
        "help": "Use the first N training images", "none": "all"})
    eval_examples: int = field(default=1000, metadata={
        "help": "Test images for the per-epoch evaluation"})
    # > 0: the last N train-split images are held out of training and the per-epoch evaluation
    # reports on them instead of the test subset, so settings can be chosen without test data.
    validation_examples: int = field(default=0, metadata={
        "help": "Hold out the last N train-split images from training; the per-epoch evaluation "
                "then reports on them, not on test images (0: no validation split)"})
    # TRADES' CIFAR augmentation: pad 4, random crop, horizontal flip
    augment: bool = field(default=False, metadata={"help": "Pad-4 random crop + flip"})
    # Streamed tfds sets (not mnist/cifar10, whose rows are permuted exactly) shuffle in a buffer.
    shuffle_buffer: int = 10_000
    # Sets whose images differ in size need it; a fixed-size set is resized when it is given.
    image_size: int | None = field(default=None, metadata={
        "help": "Resize every image to NxN pixels (needed when the dataset's images differ in "
                "size)", "none": "the dataset's own size"})
    # A folder without PATH/test, an .npz without x_test, a tfds set without a test or
    # validation split: this share of the training images is the test split (said at start).
    test_share: float = field(default=0.1, metadata={
        "help": "When the dataset has no test split of its own (a folder without test/, an .npz "
                "without x_test, a tfds set without test or validation): the share of its "
                "training images held out as the test split"})


@dataclass(frozen=True)
class ModelConfig:
    # A Method member (a str: config.json and the flag keep "nfi"/"trades"); a string given for
    # it becomes the member, so a loaded config.json equals the config that wrote it.
    method: Method = field(default=Method.NFI, metadata={
        "help": "nfi (three heads + routing) or trades (the baseline)", "kind": "string"})
    backbone: str = field(default="small_cnn", metadata={
        "help": f"Feature extractor: {', '.join(BACKBONES)} or keras.applications.NAME (e.g. "
                f"keras.applications.MobileNetV2: include_top=False, global average pooling, its "
                f"preprocess_input inside the model, which takes [0, 1] pixels)"})
    depth: int = field(default=34, metadata={"help": "WideResNet depth, 6n+4"})  # WideResNet only
    width: int = field(default=10, metadata={"help": "WideResNet widening factor"})
    # d: the first d feature dims are the robust part. None: 128 if 128 < D else D // 2 (see
    # nfi_tf/backbones/registry.py), resolved here so config.json records the number.
    robust_dims: int | None = field(default=None, metadata={
        "help": "d: feature dims of the robust part",
        "none": "128 if the backbone's feature size D is over 128, else D // 2"})
    dropout: float = field(default=0.5, metadata={"help": "SmallCNN dropout rate"})  # TRADES: 0.5
    # keras.applications backbones only; checked for existence when the model is built, so a
    # model dir's config.json still loads where the file is gone.
    backbone_weights: str | None = field(default=None, metadata={
        "help": "keras.applications backbones: a local include_top=False weights file to start "
                "from (never downloaded)", "none": "random initialization"})

    def __post_init__(self):
        if self.method in tuple(Method):  # else validate() names the value received
            object.__setattr__(self, "method", Method(self.method))
        if self.robust_dims is None:
            dims = backbones.known_feature_dims(self)  # None: custom, or validate() says why
            if dims is not None and dims > 0:  # else validate() reports the setting (a width)
                object.__setattr__(self, "robust_dims", backbones.default_robust_dims(dims))


@dataclass(frozen=True)
class AttackConfig:
    """An L-inf PGD threat model; eps and step in [0, 1] pixel units (8/255 ~ 0.031)."""

    # The help is completed by the group: "Training PGD ..." / "Per-epoch evaluation PGD ...".
    epsilon: float = field(default=0.3, metadata={
        "help": "L-inf budget in [0, 1] pixels (8/255 = 0.031)"})
    step_size: float = field(default=0.01, metadata={"help": "step size in [0, 1] pixels"})
    num_steps: int = field(default=40, metadata={"help": "iterations", "flag": "attack_steps"})


@dataclass(frozen=True)
class LossConfig:
    beta: float = field(default=1.0, metadata={"help": "TRADES' KL weight"})
    tradeoff_weight: float = field(default=1.0, metadata={
        "help": "Weight of the trade-off loss, eq. 7; with --method=trades it scales TRADES' "
                "loss (the ablations' loss-weight control)"})
    benign_weight: float = field(default=1.0, metadata={
        "help": "Weight of the benign-head loss, eq. 9"})
    adversarial_weight: float = field(default=1.0, metadata={
        "help": "Weight of the adversarial-head loss, eq. 11"})
    # 0.1 with the running form: the validation sweep's choice (results/counterfactual_sweep.json);
    # at weight 1 every form whose ratio acts collapsed the trade-off head.
    counterfactual_weight: float = field(default=0.1, metadata={
        "help": "Weight of the counterfactual loss, eq. 5"})
    adversarial_loss: str = field(default="ce", metadata={
        "help": "ce (CE of h_a on x') or literal_kl (eq. 11 as printed)"})
    # One of COUNTERFACTUAL_LOSSES (see nfi_tf.losses.counterfactual_terms); "literal": eq. 5
    # as printed (whole over part). "running" divides by a moving average of the whole model's KL,
    # so the ratio acts (its denominator moves with training); "floored" at floor 1 never did.
    counterfactual_loss: str = field(default="running", metadata={
        "help": "Counterfactual loss, eq. 5 (docs/method.md §2): running (the part's KL over a "
                "moving average of the whole model's KL), floored ('relative' is its old name), "
                "log_ratio, or literal (eq. 5 as printed)"})
    # Lower bound on the floored form's stop-gradient denominator (0: the bare 1e-8).
    # Early in training KL(p_t(x)||p_t(x')) is ~1e-5: the bare ratio's gradient diverges, and
    # small floors (0.01, 0.1) let the term swamp the trade-off head's CE (see BUILD_NOTES.md).
    counterfactual_floor: float = field(default=1.0, metadata={
        "help": "Lower bound on the floored counterfactual loss's stop-gradient denominator "
                "(0: the bare 1e-8)"})
    # The running form's moving average: denominator <- decay * denominator + (1 - decay) * KL.
    counterfactual_ema_decay: float = field(default=0.99, metadata={
        "help": "Moving-average decay of the running form's denominator"})
    # Steps over which the counterfactual term goes from the plain part KL to its form (0: none).
    # 32: the sweep's choice; without it the running ratio blows up while the whole KL is ~1e-3.
    counterfactual_warmup_steps: int = field(default=32, metadata={
        "help": "Steps over which the counterfactual term goes from the plain KL to its ratio "
                "(0: none)"})
    detach_aux_heads: bool = field(default=False, metadata={
        "help": "Ablation: the benign/adversarial heads do not train f"})
    # Not the paper's method, an option beside it (0: off): weight of CE(rob(x_rg), y), where x_rg
    # steers the routing switch onto the benign route on a wrong class (see training/step.py).
    route_guard_weight: float = field(default=0.0, metadata={
        "help": "Not in the paper (0: off): also train the robust part score to keep the label "
                "on inputs steered onto the benign route on a wrong class (one more PGD per "
                "step; docs/method.md §6)"})

    def __post_init__(self):
        # Old config.json files say "relative" for the floored form: load them as "floored".
        if self.counterfactual_loss == "relative":
            object.__setattr__(self, "counterfactual_loss", "floored")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = field(default=100, metadata={"help": "Training epochs"})
    batch_size: int = field(default=128, metadata={"help": "Global batch size"})
    learning_rate: float = field(default=0.01, metadata={"help": "Initial SGD learning rate"})
    momentum: float = field(default=0.9, metadata={"help": "SGD momentum"})
    weight_decay: float = field(default=0.0, metadata={"help": "Coupled L2 weight decay"})
    # One comma-separated string on the command line ('' for none), as it always was.
    lr_decay_epochs: tuple[int, ...] = field(default=(55, 75, 90), metadata={
        "help": "Comma-separated epochs where the lr is multiplied by --lr_decay_factor; '' for "
                "none", "kind": "string"})
    lr_decay_factor: float = field(default=0.1, metadata={"help": "Learning-rate decay factor"})
    # "cyclic" is the one-cycle schedule fast adversarial training uses (Wong et al., 2020;
    # Smith's super-convergence): a short run reaches more robustness than with a constant rate.
    lr_schedule: str = field(default="piecewise", metadata={
        "help": "piecewise: --learning_rate, decayed at --lr_decay_epochs; cyclic: rises linearly "
                "from 0 to --learning_rate over the first --lr_peak_fraction of the steps, then "
                "falls linearly to 0 at the end of the run (--lr_decay_epochs is not used)"})
    lr_peak_fraction: float = field(default=0.4, metadata={
        "help": "With --lr_schedule=cyclic: the share of the steps before the peak learning rate"})
    seed: int = field(default=0, metadata={"help": "Random seed"})
    jit_compile: bool = field(default=False, metadata={
        "help": "Compile the training step with XLA"})
    mixed_precision: str = field(default="off", metadata={
        "help": "off, mixed_float16 (GPUs) or mixed_bfloat16"})
    deterministic: bool = field(default=False, metadata={
        "help": "TF op determinism: a resumed run ends bit-identical"})
    checkpoint_every_steps: int = field(default=0, metadata={
        "help": "Also checkpoint every N steps (0: only at the end of each epoch)"})
    strategy: str = field(default="default", metadata={
        "help": f"tf.distribute strategy: {', '.join(STRATEGIES)}"})
    eval_batch_size: int = field(default=256, metadata={
        "help": "Batch size of the per-epoch evaluation"})


@dataclass(frozen=True)
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    attack: AttackConfig = field(default_factory=AttackConfig)  # used in training
    eval_attack: AttackConfig = field(default_factory=AttackConfig)  # PGD as TRADES evaluates
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        groups = {f.name: f.type for f in dataclasses.fields(cls)}
        kwargs = {}
        for name in groups:
            sub_cls = _GROUP_CLASSES[name]
            values = dict(d.get(name, {}))
            if "lr_decay_epochs" in values:
                values["lr_decay_epochs"] = tuple(values["lr_decay_epochs"])
            known = {f.name for f in dataclasses.fields(sub_cls)}
            unknown = set(values) - known
            if unknown:
                raise NfiError(f"config group '{name}' has unknown keys {sorted(unknown)}")
            kwargs[name] = sub_cls(**values)
        return validate(cls(**kwargs))

    def save(self, path: str) -> None:
        io_utils.atomic_write_text(path, self.to_json() + "\n")

    @classmethod
    def load(cls, path: str) -> Config:
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except FileNotFoundError as e:
            raise NfiError(f"no config at {path}: is this a model dir written by nfi_tf.train?") from e
        except (json.JSONDecodeError, TypeError) as e:
            raise NfiError(f"corrupt config {path}: {e}") from e


_GROUP_CLASSES = {
    "data": DataConfig,
    "model": ModelConfig,
    "attack": AttackConfig,
    "eval_attack": AttackConfig,
    "loss": LossConfig,
    "train": TrainConfig,
}

# TRADES' official settings (train_trades_mnist.py, train_trades_cifar10.py and their
# pgd_attack scripts). Other datasets get one derived from their images (`derived_preset`).
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "mnist": {
        "data": {"augment": False},
        "model": backbones.preset(backbones.SMALL_CNN),
        "attack": {"epsilon": 0.3, "step_size": 0.01, "num_steps": 40},
        "eval_attack": {"epsilon": 0.3, "step_size": 0.01, "num_steps": 40},
        "loss": {"beta": 1.0},
        "train": {
            "epochs": 100,
            "learning_rate": 0.01,
            "weight_decay": 0.0,
            "lr_decay_epochs": (55, 75, 90),
        },
    },
    "cifar10": {
        "data": {"augment": True},
        "model": backbones.preset(backbones.WIDE_RESNET),  # WRN-34-10
        "attack": {"epsilon": 0.031, "step_size": 0.007, "num_steps": 10},
        "eval_attack": {"epsilon": 0.031, "step_size": 0.003, "num_steps": 20},
        "loss": {"beta": 6.0},
        "train": {
            "epochs": 76,
            "learning_rate": 0.1,
            "weight_decay": 2e-4,
            "lr_decay_epochs": (75, 90, 100),
        },
    },
}


# A dataset without a preset: MNIST's recipe for small grayscale images (digits-like), else
# CIFAR-10's (eps 8/255: natural images). Small or grayscale images get SmallCNN; larger RGB ones
# CIFAR-10's WideResNet-34-10, named in `preset_note` since it is slow on a CPU.
_MNIST_LIKE_MAX_SIDE = 36  # 28x28-ish
_SMALL_CNN_MAX_SIDE = 31  # below CIFAR-10's 32x32


def derived_preset(image_shape) -> tuple[str, dict[str, dict[str, Any]]]:
    """(a name, the preset) for images of (height, width, channels); height and width may be
    None (a tfds set of variable size, no --image_size): taken as large."""
    h, w, c = image_shape
    side = max(h, w) if h is not None and w is not None else None
    small = side is not None and side <= _SMALL_CNN_MAX_SIDE
    if c == 1 and side is not None and side <= _MNIST_LIKE_MAX_SIDE:
        return "mnist-like", PRESETS["mnist"]
    preset = {group: dict(values) for group, values in PRESETS["cifar10"].items()}
    if c == 1 or small:
        preset["model"] = backbones.preset(backbones.SMALL_CNN)
    return ("natural-image" if c == 3 else "natural-grayscale"), preset


def preset_note(dataset: str, image_shape, estimate: str | None = None) -> str | None:
    """The one line that says which preset a dataset without one got (None for mnist/cifar10).

    `estimate`: how long the run takes (`nfi_tf.training.estimate.preset_estimate`), said where
    the note calls CIFAR-10's WideResNet slow on a CPU."""
    if dataset in PRESETS:
        return None
    name, p = derived_preset(image_shape)
    h, w, c = image_shape
    a, model = p["attack"], p["model"]
    backbone = model["backbone"]
    if backbone == backbones.WIDE_RESNET:
        slow = f"slow on a CPU, {estimate}" if estimate else "slow on a CPU"
        backbone = (f"CIFAR-10's wide_resnet depth {model['depth']} width {model['width']} "
                    f"({slow}: --backbone=small_cnn or --depth/--width for a smaller one)")
    return (f"nfi_tf: {dataset} has no preset: derived the {name} preset from its "
            f"{h or '?'}x{w or '?'}x{c} images: epsilon {a['epsilon']:g}, training PGD "
            f"{a['num_steps']} steps of {a['step_size']:g}, beta {p['loss']['beta']:g}, "
            f"augment {p['data']['augment']}, backbone {backbone} (every flag overrides it)")


def make_config(dataset: str, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """The preset for `dataset`, with `overrides` ({group: {field: value}}) applied, validated.

    mnist and cifar10 have TRADES' presets; any other dataset (a tfds name, folder:PATH or an
    .npz) one derived from its images (`derived_preset`), which reads its image shape (one
    header; an unknown or missing dataset is an NfiError here). A path is made absolute."""
    preset = PRESETS.get(dataset)
    if preset is None:
        from nfi_tf.datasets import probe

        data = (overrides or {}).get("data", {})
        dataset, shape = probe.preset_shape(dataset, data.get("data_dir"), data.get("image_size"))
        preset = PRESETS.get(dataset) or derived_preset(shape)[1]
    groups: dict[str, dict[str, Any]] = {}
    for name in _GROUP_CLASSES:
        groups[name] = dict(preset.get(name, {}))
        groups[name].update((overrides or {}).get(name, {}))
    groups["data"]["dataset"] = dataset
    groups["model"] = _model_settings(preset.get("model", {}), (overrides or {}).get("model", {}))
    unknown_groups = set(overrides or {}) - set(_GROUP_CLASSES)
    if unknown_groups:
        raise NfiError(f"unknown config groups {sorted(unknown_groups)}")
    return Config.from_dict(groups)


def _model_settings(preset: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The model group: the chosen backbone's own preset (its registry entry's), then the
    dataset preset's model settings when they are for that backbone, then the overrides."""
    backbone = overrides.get("backbone", preset.get("backbone", ModelConfig.backbone))
    spec = backbones.lookup(backbone)  # an unknown name: validate() names it
    same = preset.get("backbone", ModelConfig.backbone) == backbone
    return {**(spec.preset if spec is not None else {}), **(preset if same else {}), **overrides}


def validate(c: Config) -> Config:
    """Reject contradictory or out-of-range settings with the offending value in the message,
    group by group (the backbone's own settings by its registry entry)."""
    _validate_data(c.data)
    _validate_model(c.model)
    for name, attack in (("attack", c.attack), ("eval_attack", c.eval_attack)):
        _validate_attack(name, attack)
    _validate_loss(c.loss, c.model)
    _validate_train(c.train)
    return c


def trainable_method(value) -> Method:
    """`value` as a Method that `python -m nfi_tf.train` trains, or a one-line NfiError."""
    shown = value.value if isinstance(value, Method) else value
    check(value in Method.trainable(), f"method must be one of "
          f"{tuple(m.value for m in Method.trainable())}. Received: method={shown!r}")
    return Method(value)


def _validate_data(d: DataConfig) -> None:
    check(bool(d.dataset), "dataset must be a tfds name, folder:PATH or PATH.npz")
    check(d.image_size is None or d.image_size >= 8,
          f"image_size must be >= 8 pixels. Received: image_size={d.image_size}")
    check(0 < d.test_share < 1, f"test_share must be in (0, 1). Received: test_share={d.test_share}")
    check(d.train_examples is None or d.train_examples > 0,
          f"train_examples must be > 0. Received: train_examples={d.train_examples}")
    check(d.eval_examples > 0, f"eval_examples must be > 0. Received: eval_examples={d.eval_examples}")
    check(isinstance(d.validation_examples, int) and d.validation_examples >= 0,
          f"validation_examples must be an integer >= 0. "
          f"Received: validation_examples={d.validation_examples!r}")


def _validate_model(m: ModelConfig) -> None:
    trainable_method(m.method)
    spec = backbones.get(m.backbone)  # a name no backbone claims: the choices, in one line
    takers = ", ".join(s.name.rstrip(".") for s in backbones.specs() if s.weights)
    check(m.backbone_weights is None or spec.weights,
          f"backbone_weights is for {takers} backbones. "
          f"Received: backbone_weights={m.backbone_weights!r}, backbone={m.backbone!r}")
    spec.validate(m)  # its own settings (WideResNet's depth, an application's name, ...)
    if spec.feature_dims is None:  # D is the model's own: the heads check d < D at build
        check(isinstance(m.robust_dims, int) and m.robust_dims > 0,
              f"robust_dims must be an integer >= 1. Received: robust_dims={m.robust_dims!r}")
        return
    feat = spec.feature_dims(m)
    check(m.robust_dims is not None and 0 < m.robust_dims < feat,
          f"robust_dims must be in [1, {feat - 1}] for the {m.backbone} feature of size "
          f"{feat}. Received: robust_dims={m.robust_dims}")


def _validate_attack(name: str, a: AttackConfig) -> None:
    check(math.isfinite(a.epsilon) and a.epsilon > 0,
          f"{name} epsilon must be > 0. Received: epsilon={a.epsilon}")
    check(a.epsilon <= 1, f"{name} epsilon is in [0, 1] pixel units (8/255 = 0.031). "
          f"Received: epsilon={a.epsilon}")
    check(0 < a.step_size <= a.epsilon,
          f"{name} step_size must be in (0, epsilon={a.epsilon}]. Received: step_size={a.step_size}")
    check(a.num_steps >= 1, f"{name} num_steps must be >= 1. Received: num_steps={a.num_steps}")


def _validate_loss(lo: LossConfig, m: ModelConfig) -> None:
    check(lo.beta >= 0, f"beta must be >= 0. Received: beta={lo.beta}")
    for w in ("tradeoff_weight", "benign_weight", "adversarial_weight", "counterfactual_weight",
              "route_guard_weight"):
        check(getattr(lo, w) >= 0, f"{w} must be >= 0. Received: {w}={getattr(lo, w)}")
    check(lo.counterfactual_floor >= 0,
          f"counterfactual_floor must be >= 0. Received: counterfactual_floor={lo.counterfactual_floor}")
    check(0 <= lo.counterfactual_ema_decay < 1,
          f"counterfactual_ema_decay must be in [0, 1). "
          f"Received: counterfactual_ema_decay={lo.counterfactual_ema_decay}")
    check(isinstance(lo.counterfactual_warmup_steps, int) and lo.counterfactual_warmup_steps >= 0,
          f"counterfactual_warmup_steps must be an integer >= 0. "
          f"Received: counterfactual_warmup_steps={lo.counterfactual_warmup_steps!r}")
    check(lo.route_guard_weight == 0 or m.method == Method.NFI,
          f"route_guard_weight guards the routing switch, which only method=nfi has. "
          f"Received: route_guard_weight={lo.route_guard_weight}, method={m.method}")
    check(lo.adversarial_loss in ADVERSARIAL_LOSSES,
          f"adversarial_loss must be one of {ADVERSARIAL_LOSSES}. Received: {lo.adversarial_loss!r}")
    check(lo.counterfactual_loss in COUNTERFACTUAL_LOSSES,
          f"counterfactual_loss must be one of {COUNTERFACTUAL_LOSSES}. "
          f"Received: counterfactual_loss={lo.counterfactual_loss!r}")


def _validate_train(t: TrainConfig) -> None:
    check(t.epochs >= 1, f"epochs must be >= 1. Received: epochs={t.epochs}")
    check(t.batch_size >= 1, f"batch_size must be >= 1. Received: batch_size={t.batch_size}")
    check(t.eval_batch_size >= 1,
          f"eval_batch_size must be >= 1. Received: eval_batch_size={t.eval_batch_size}")
    check(t.learning_rate > 0, f"learning_rate must be > 0. Received: learning_rate={t.learning_rate}")
    check(0 <= t.momentum < 1, f"momentum must be in [0, 1). Received: momentum={t.momentum}")
    check(t.weight_decay >= 0, f"weight_decay must be >= 0. Received: weight_decay={t.weight_decay}")
    check(list(t.lr_decay_epochs) == sorted(t.lr_decay_epochs) and all(e > 0 for e in t.lr_decay_epochs),
          f"lr_decay_epochs must be increasing positive epochs. Received: {list(t.lr_decay_epochs)}")
    check(0 < t.lr_decay_factor <= 1,
          f"lr_decay_factor must be in (0, 1]. Received: lr_decay_factor={t.lr_decay_factor}")
    check(t.lr_schedule in LR_SCHEDULES,
          f"lr_schedule must be one of {LR_SCHEDULES}. Received: lr_schedule={t.lr_schedule!r}")
    check(0 <= t.lr_peak_fraction < 1,
          f"lr_peak_fraction must be in [0, 1). Received: lr_peak_fraction={t.lr_peak_fraction}")
    check(t.mixed_precision in MIXED_PRECISION,
          f"mixed_precision must be one of {MIXED_PRECISION}. Received: {t.mixed_precision!r}")
    # XLA has no deterministic MaxPool (SmallCNN) gradient; TF fails deep inside the compiler.
    check(not (t.deterministic and t.jit_compile),
          "deterministic and jit_compile cannot be combined: XLA has no deterministic kernels for "
          "every op used here (e.g. MaxPool's gradient). Received: deterministic=True, jit_compile=True")
    check(t.strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}. Received: {t.strategy!r}")
    check(t.checkpoint_every_steps >= 0,
          f"checkpoint_every_steps must be >= 0. Received: {t.checkpoint_every_steps}")
