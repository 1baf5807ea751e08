"""Flags of `python -m nfi_tf.train`, and the config they build.

Every training flag defaults to None, meaning "the dataset preset" (TRADES' settings, see
nfi_tf.config.PRESETS); a flag given on the command line overrides its preset value.
"""

from absl import flags

from flags import common
from nfi_tf.config import Config, make_config

# flag name -> (config group, field)
_OVERRIDES = {
    "train_examples": ("data", "train_examples"),
    "eval_examples": ("data", "eval_examples"),
    "validation_examples": ("data", "validation_examples"),
    "augment": ("data", "augment"),
    "method": ("model", "method"),
    "backbone": ("model", "backbone"),
    "depth": ("model", "depth"),
    "width": ("model", "width"),
    "robust_dims": ("model", "robust_dims"),
    "dropout": ("model", "dropout"),
    "epsilon": ("attack", "epsilon"),
    "step_size": ("attack", "step_size"),
    "attack_steps": ("attack", "num_steps"),
    "eval_epsilon": ("eval_attack", "epsilon"),
    "eval_step_size": ("eval_attack", "step_size"),
    "eval_attack_steps": ("eval_attack", "num_steps"),
    "beta": ("loss", "beta"),
    "tradeoff_weight": ("loss", "tradeoff_weight"),
    "benign_weight": ("loss", "benign_weight"),
    "adversarial_weight": ("loss", "adversarial_weight"),
    "counterfactual_weight": ("loss", "counterfactual_weight"),
    "adversarial_loss": ("loss", "adversarial_loss"),
    "counterfactual_loss": ("loss", "counterfactual_loss"),
    "detach_aux_heads": ("loss", "detach_aux_heads"),
    "route_guard_weight": ("loss", "route_guard_weight"),
    "counterfactual_floor": ("loss", "counterfactual_floor"),
    "counterfactual_ema_decay": ("loss", "counterfactual_ema_decay"),
    "counterfactual_warmup_steps": ("loss", "counterfactual_warmup_steps"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "learning_rate": ("train", "learning_rate"),
    "momentum": ("train", "momentum"),
    "weight_decay": ("train", "weight_decay"),
    "lr_decay_factor": ("train", "lr_decay_factor"),
    "seed": ("train", "seed"),
    "jit_compile": ("train", "jit_compile"),
    "mixed_precision": ("train", "mixed_precision"),
    "deterministic": ("train", "deterministic"),
    "checkpoint_every_steps": ("train", "checkpoint_every_steps"),
    "strategy": ("train", "strategy"),
    "eval_batch_size": ("train", "eval_batch_size"),
}


def define_train_flags() -> None:
    common.define_model_dir(help_text="Where checkpoints, config, logs and the model go. "
                            "Rerunning with the same dir resumes.")
    common.define_data_dir()
    common.define_cpu_devices()
    flags.DEFINE_string("dataset", "mnist", "A tfds image classification dataset: mnist, cifar10, "
                        "cifar100, svhn_cropped, ...")
    f = flags
    # data
    f.DEFINE_integer("train_examples", None, "Use the first N training images (default: all).")
    f.DEFINE_integer("eval_examples", None, "Test images for the per-epoch evaluation (default 1000).")
    f.DEFINE_integer("validation_examples", None, "Hold out the last N train-split images from "
                     "training; the per-epoch evaluation then reports on them, not on test "
                     "images (default 0: no validation split).")
    f.DEFINE_bool("augment", None, "Pad-4 random crop + flip (default: on for 32x32 RGB sets).")
    # model
    f.DEFINE_string("method", None, "nfi (three heads + routing, default) or trades (baseline).")
    f.DEFINE_string("backbone", None, "small_cnn (MNIST default) or wide_resnet (CIFAR default).")
    f.DEFINE_integer("depth", None, "WideResNet depth, 6n+4 (default 34).")
    f.DEFINE_integer("width", None, "WideResNet widening factor (default 10).")
    f.DEFINE_integer("robust_dims", None, "d: feature dims of the robust part (default 128 if the "
                     "backbone's feature size D is over 128, else D // 2).")
    f.DEFINE_float("dropout", None, "SmallCNN dropout rate (default 0.5).")
    # training attack
    f.DEFINE_float("epsilon", None, "Training PGD L-inf budget in [0, 1] pixels (MNIST 0.3, CIFAR 0.031).")
    f.DEFINE_float("step_size", None, "Training PGD step size (MNIST 0.01, CIFAR 0.007).")
    f.DEFINE_integer("attack_steps", None, "Training PGD iterations (MNIST 40, CIFAR 10).")
    f.DEFINE_float("eval_epsilon", None, "Evaluation PGD budget (default: as TRADES evaluates).")
    f.DEFINE_float("eval_step_size", None, "Evaluation PGD step size (MNIST 0.01, CIFAR 0.003).")
    f.DEFINE_integer("eval_attack_steps", None, "Evaluation PGD iterations (MNIST 40, CIFAR 20).")
    # losses
    f.DEFINE_float("beta", None, "TRADES KL weight (MNIST 1, CIFAR 6).")
    f.DEFINE_float("tradeoff_weight", None, "Weight of the trade-off loss, eq. 7 (default 1); "
                   "with --method=trades it scales TRADES' loss (the ablations' loss-weight "
                   "control).")
    f.DEFINE_float("benign_weight", None, "Weight of the benign-head loss, eq. 9 (default 1).")
    f.DEFINE_float("adversarial_weight", None, "Weight of the adversarial-head loss, eq. 11.")
    f.DEFINE_float("counterfactual_weight", None, "Weight of the counterfactual loss, eq. 5 (default 0.1).")
    f.DEFINE_string("adversarial_loss", None, "ce (default: CE of h_a on x') or literal_kl (eq. 11).")
    f.DEFINE_string("counterfactual_loss", None, "Counterfactual loss, eq. 5 (docs/method.md §2): "
                    "running (default: the part's KL over a moving average of the whole model's "
                    "KL), floored ('relative' is its old name), log_ratio, or literal (eq. 5 as "
                    "printed).")
    f.DEFINE_float("counterfactual_floor", None, "Lower bound on the floored counterfactual "
                   "loss's stop-gradient denominator (default 1; 0: the bare 1e-8).")
    f.DEFINE_float("counterfactual_ema_decay", None, "Moving-average decay of the running "
                   "form's denominator (default 0.99).")
    f.DEFINE_integer("counterfactual_warmup_steps", None, "Steps over which the counterfactual "
                     "term goes from the plain KL to its ratio (default 32; 0: none).")
    f.DEFINE_bool("detach_aux_heads", None, "Ablation: benign/adversarial heads do not train f.")
    f.DEFINE_float("route_guard_weight", None, "Not in the paper (default 0: off): also train the "
                   "robust part score to keep the label on inputs steered onto the benign route "
                   "on a wrong class (one more PGD per step; docs/method.md §6).")
    # optimization
    f.DEFINE_integer("epochs", None, "Training epochs (MNIST 100, CIFAR 76).")
    f.DEFINE_integer("batch_size", None, "Global batch size (default 128).")
    f.DEFINE_float("learning_rate", None, "Initial SGD learning rate (MNIST 0.01, CIFAR 0.1).")
    f.DEFINE_float("momentum", None, "SGD momentum (default 0.9).")
    f.DEFINE_float("weight_decay", None, "Coupled L2 weight decay (MNIST 0, CIFAR 2e-4).")
    f.DEFINE_string("lr_decay_epochs", None, "Comma-separated epochs where the lr is multiplied by "
                    "--lr_decay_factor (MNIST 55,75,90; CIFAR 75,90,100); '' for none.")
    f.DEFINE_float("lr_decay_factor", None, "Learning-rate decay factor (default 0.1).")
    f.DEFINE_integer("seed", None, "Random seed (default 0).")
    f.DEFINE_bool("jit_compile", None, "Compile the training step with XLA.")
    f.DEFINE_string("mixed_precision", None, "off (default), mixed_float16 (GPUs) or mixed_bfloat16.")
    f.DEFINE_bool("deterministic", None, "TF op determinism: a resumed run ends bit-identical.")
    f.DEFINE_integer("checkpoint_every_steps", None, "Also checkpoint every N steps (0: per epoch).")
    f.DEFINE_string("strategy", None, "tf.distribute strategy: default, mirrored, multi_worker, tpu.")
    f.DEFINE_integer("eval_batch_size", None, "Batch size of the per-epoch evaluation (default 256).")


def train_config_from_flags(values: flags.FlagValues) -> Config:
    """The one place where training flags become a Config."""
    from nfi_tf.data import require_known_dataset

    require_known_dataset(values["dataset"].value)
    overrides: dict[str, dict] = {}
    for name, (group, field) in _OVERRIDES.items():
        value = values[name].value
        if value is not None:
            overrides.setdefault(group, {})[field] = value
    decay = common.parse_int_list(values["lr_decay_epochs"].value)
    if decay is not None:
        overrides.setdefault("train", {})["lr_decay_epochs"] = decay
    data = overrides.setdefault("data", {})
    data["data_dir"] = values["data_dir"].value
    return make_config(values["dataset"].value, overrides)
