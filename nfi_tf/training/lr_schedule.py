"""The learning-rate schedules of `--lr_schedule`: TRADES' piecewise-constant decay and the
one-cycle ("cyclic") schedule of fast adversarial training.

The cyclic schedule is why a short run is worth having: a linear rise to the peak rate and a
linear fall to zero at the last step reaches more robustness in few epochs than a constant rate
decayed once (Wong, Rice & Kolter, "Fast is better than free", 2020, after Smith's
super-convergence). Its length is the run's total steps, so a run's epochs and batch size set it.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from nfi_tf.config import TrainConfig


@keras.saving.register_keras_serializable(package="nfi_tf")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """0 -> `peak` linearly over `rise_steps`, then `peak` -> 0 linearly until `total_steps`
    (0 after it: updates past the planned length change nothing)."""

    def __init__(self, peak: float, total_steps: int, rise_steps: int):
        if not 0 <= rise_steps < total_steps:
            raise ValueError(f"need 0 <= rise_steps < total_steps. Received: rise_steps="
                             f"{rise_steps}, total_steps={total_steps}")
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.rise_steps = int(rise_steps)

    def __call__(self, step):
        # Keras' optimizer passes its iteration count before the update (0 for the first):
        # update s of a rise of r steps uses peak * (s+1) / r, so none is taken at rate 0, and
        # the fall reaches peak / (total - r) at the last update, 0 only after it.
        step = tf.cast(step, tf.float32)
        rise = self.peak * (step + 1.0) / max(self.rise_steps, 1)
        fall = self.peak * (self.total_steps - step) / (self.total_steps - self.rise_steps)
        rate = tf.where(step < self.rise_steps, rise, fall)
        return tf.clip_by_value(rate, 0.0, self.peak)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "rise_steps": self.rise_steps}


def make_schedule(t: TrainConfig, steps_per_epoch: int):
    """The learning rate (a float or a Keras schedule) of a run of `t.epochs` epochs."""
    if t.lr_schedule == "cyclic":
        total = t.epochs * steps_per_epoch
        # At least one falling update, even for a one-step run with a late peak.
        rise = min(int(round(t.lr_peak_fraction * total)), total - 1)
        return OneCycle(t.learning_rate, total, rise_steps=rise)
    boundaries = [e * steps_per_epoch for e in t.lr_decay_epochs]
    values = [t.learning_rate * t.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    return (keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
            if boundaries else t.learning_rate)
