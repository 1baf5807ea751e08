"""What a training run costs before it starts: the line `train_and_evaluate` prints at start and
`python -m nfi_tf.train --dry_run` prints without training.

The cost model (FLOPs from `nfi_tf.flops`, F the model's forward FLOPs per image):

    one epoch = train images x F x (2 K + 7)          the adversarial training steps
              + train images x F x (2 K + 4)          with --route_guard_weight > 0 only
              + checked images x F x (2 K_eval + 2)   the per-epoch check
    the run   = one epoch x the epochs left (a resumed run: its steps left)

over the rate `nfi_tf.estimate.Rate.assumed` gives (no GPU: BENCHMARKS.md's measured GFLOP/s of
training steps per CPU core, times the cores; a GPU: no rate, the time is measured). Not
counted: data loading, checkpoints, tracing (seconds to a minute at the first step).

When the model is the paper's CIFAR-10 one (the cifar10 preset's WRN-34-10) and no GPU is
visible, the line also names the CPU-scale recipe the reproduction trains instead, as the flags
that turn this run into it (nfi_tf/experiments/reproduction.py): a note, the run goes on.
"""

from __future__ import annotations

import dataclasses

from nfi_tf import flops
from nfi_tf.config import PRESETS, Config, ModelConfig
from nfi_tf.estimate import Rate, duration, flop_text


@dataclasses.dataclass(frozen=True)
class TrainingCost:
    """A run's FLOPs, from its config, its model's forward FLOPs and its data's sizes."""

    forward: int  # F: forward FLOPs per image
    epochs: int
    steps_per_epoch: int
    batch_size: int
    attack_steps: int
    step_flops: int  # one training step on a full batch
    epoch_flops: int  # one epoch: its training steps and its per-epoch check
    done_steps: int = 0  # steps a resumed run has already

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    @property
    def steps_left(self) -> int:
        return max(self.total_steps - self.done_steps, 0)

    @property
    def flops_left(self) -> float:
        return self.epoch_flops * self.steps_left / self.steps_per_epoch


def training_cost(config: Config, forward: int, train_examples: int, check_examples: int,
                  done_steps: int = 0) -> TrainingCost:
    """The cost of `config`'s run on `train_examples` images (`check_examples` checked at each
    epoch's end), of which `done_steps` are done."""
    k, batch = config.attack.num_steps, config.train.batch_size

    def per_batch(b: int) -> int:
        out = flops.train_step_flops(forward, k, b)
        if config.loss.route_guard_weight:
            out += flops.route_guard_flops(forward, k, b)
        return out

    epoch = per_batch(train_examples) + flops.epoch_check_flops(
        forward, config.eval_attack.num_steps, check_examples)
    return TrainingCost(forward=forward, epochs=config.train.epochs,
                        steps_per_epoch=-(-train_examples // batch), batch_size=batch,
                        attack_steps=k, step_flops=per_batch(batch), epoch_flops=epoch,
                        done_steps=done_steps)


def check_examples(config: Config, test_size: int) -> int:
    """Images the per-epoch check reads: the validation split, else the first test images."""
    v = config.data.validation_examples
    return v if v else min(config.data.eval_examples, test_size)


def is_paper_model(model: ModelConfig) -> bool:
    """The cifar10 preset's model (WRN-34-10): the paper's, months of training on a CPU."""
    return all(getattr(model, k) == v for k, v in PRESETS["cifar10"]["model"].items())


def cpu_scale_flags(config: Config) -> list[str]:
    """The training flags that turn `config` into the reproduction's CPU-scale CIFAR-10 recipe
    (its settings that differ from this config's)."""
    from nfi_tf.experiments.reproduction import FULL
    from nfi_tf.experiments.runs import format_flag_value, train_flag_name

    given = config.to_dict()
    return [f"--{train_flag_name(group, name)}={format_flag_value(value)}"
            for group, values in FULL["cifar10"]["common"].items()
            for name, value in values.items() if given[group][name] != value]


def seconds_left(cost: TrainingCost, rate: Rate) -> float | None:
    return rate.seconds(cost.flops_left)


def start_line(config: Config, cost: TrainingCost, rate: Rate) -> str | None:
    """The one line a run prints at start (None when nothing is left to train)."""
    if not cost.steps_left:
        return None
    steps = (f"{cost.epochs} epochs x {cost.steps_per_epoch} steps of {cost.batch_size} images"
             if not cost.done_steps else f"{cost.steps_left} of {cost.total_steps} steps left")
    guard = " + the route guard's PGD" if config.loss.route_guard_weight else ""
    line = (f"nfi_tf: estimate: {steps}, {flop_text(cost.step_flops)} per step "
            f"({flop_text(cost.forward)} forward x (2 x {cost.attack_steps} PGD steps + 7) per "
            f"image{guard}), {flop_text(cost.flops_left)} with the per-epoch checks: "
            f"{rate.time_text(cost.flops_left)}")
    if is_paper_model(config.model) and rate.flop_per_s is not None:
        line += ("; this is the paper's CIFAR-10 model (WRN-34-10), which needs a GPU: the "
                 "reproduction (RESULTS.md) trains a CPU-scale recipe instead, this command with "
                 f"{' '.join(cpu_scale_flags(config))} (a note: this run goes on)")
    return line


def preset_estimate(cost: TrainingCost, rate: Rate) -> str | None:
    """The estimate in the derived-preset note's words: `about 113 days for this run here`."""
    seconds = seconds_left(cost, rate)
    return None if seconds is None else f"about {duration(seconds)} for this run here"
