"""APGD-CE and targeted APGD-DLR, the core of AutoAttack, from the adversarial-robustness-toolbox.

ART's `AutoProjectedGradientDescent` with a `TensorFlowV2Classifier` runs both losses on
TF 2.21 / Keras 3. The classifier ART sees is one output's logits function (for
the routed model: the straight-through switch, whose forward pass is the model's own).

ART's own DLR loss object loops over the batch in Python (one eager gather per example, per
iteration): on this CPU it made APGD-DLR three times slower than APGD-CE. `DlrLoss` below is
the same formula, vectorized (plus AutoAttack's 1e-12 in the denominator), handed to ART as
the classifier's loss; ART's APGD algorithm (step-size schedule, momentum, checkpoints) is
unchanged. A test checks it against ART's DLR object.

Two things ART leaves to the caller: its random start draws from NumPy's global generator,
so each call runs under a seed derived from (seed, attack, batch) and restores the global
state afterwards; and its projection can leave x' a float rounding above eps, so x' is
clipped back into the eps ball and [0, 1] here.
"""

from __future__ import annotations

import contextlib
import warnings
import zlib
from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

FAMILIES = ("apgd_ce", "apgd_dlr")


@contextlib.contextmanager
def numpy_seed(*seed: int) -> Iterator[None]:
    state = np.random.get_state()
    np.random.seed([int(s) % (2**32) for s in seed])
    try:
        yield
    finally:
        np.random.set_state(state)


def _art():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "PyTorch not found" and friends at import
        from art.attacks.evasion import AutoProjectedGradientDescent
        from art.estimators.classification import TensorFlowV2Classifier
    return AutoProjectedGradientDescent, TensorFlowV2Classifier


class DlrLoss:
    """The DLR loss as ART computes it, vectorized: -(z_y - max_{j != y} z_j) / (z_(1) - z_(3)).

    `y_true` is one-hot (ART's convention); for a targeted attack it is the target, and ART
    descends instead of ascends. `reduction` is set by ART between calls ("none"/"mean"/"sum"
    or their tf.keras Reduction equivalents).
    """

    def __init__(self):
        self.reduction = "mean"

    def __call__(self, y_true, y_pred, *args, **kwargs):
        del args, kwargs
        y_pred = tf.convert_to_tensor(y_pred)
        onehot = tf.cast(tf.convert_to_tensor(y_true), y_pred.dtype)
        top = tf.sort(y_pred, axis=-1, direction="DESCENDING")
        z_y = tf.reduce_sum(onehot * y_pred, axis=-1)
        z_other = tf.reduce_max(y_pred - 1e9 * onehot, axis=-1)
        dlr = -(z_y - z_other) / (top[:, 0] - top[:, 2] + 1e-12)
        reduction = str(getattr(self.reduction, "value", self.reduction)).lower()
        if reduction == "none":
            return dlr
        if reduction == "sum":
            return tf.reduce_sum(dlr)
        return tf.reduce_mean(dlr)


class Apgd:
    """APGD on one logits function: `ce(x, y, seed)` and `dlr_targeted(x, targets, seed)`."""

    def __init__(self, model_fn: Callable[[tf.Tensor], tf.Tensor], input_shape, num_classes: int,
                 epsilon: float, steps: int, restarts: int, batch_size: int):
        apgd_cls, classifier_cls = _art()
        compiled = tf.function(model_fn, reduce_retracing=True)

        def model(x, training=False):
            del training  # always inference mode (batch-norm statistics frozen)
            return compiled(x)

        import keras

        self._estimator = classifier_cls(
            model=model, nb_classes=int(num_classes), input_shape=tuple(input_shape),
            clip_values=(0.0, 1.0),
            loss_object=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        self.epsilon = float(epsilon)
        common = dict(norm=np.inf, eps=self.epsilon, eps_step=2 * self.epsilon,  # AutoAttack: 2 eps
                      max_iter=int(steps), nb_random_init=int(restarts), batch_size=int(batch_size),
                      verbose=False)
        self._ce = apgd_cls(self._estimator, targeted=False, loss_type="cross_entropy", **common)
        self._dlr = None
        if num_classes >= 3:  # DLR divides by z_(1) - z_(3)
            dlr_estimator = classifier_cls(
                model=model, nb_classes=int(num_classes), input_shape=tuple(input_shape),
                clip_values=(0.0, 1.0), loss_object=DlrLoss())
            self._dlr = apgd_cls(dlr_estimator, targeted=True, loss_type=None, **common)

    @property
    def has_dlr(self) -> bool:
        return self._dlr is not None

    def _finish(self, x: np.ndarray, x_adv: np.ndarray) -> np.ndarray:
        x_adv = np.clip(x_adv, x - self.epsilon, x + self.epsilon)
        return np.clip(x_adv, 0.0, 1.0).astype(np.float32)

    def ce(self, x: np.ndarray, y: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
        """Untargeted APGD-CE against the true labels."""
        with numpy_seed(*seed, zlib.crc32(b"apgd_ce")):
            return self._finish(x, self._ce.generate(x.astype(np.float32), y=y.astype(np.int64)))

    def dlr_targeted(self, x: np.ndarray, targets: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
        """Targeted APGD-DLR towards `targets` (one target class per example)."""
        if self._dlr is None:
            raise ValueError("targeted APGD-DLR needs at least 3 classes")
        with numpy_seed(*seed, zlib.crc32(b"apgd_dlr")):
            return self._finish(x, self._dlr.generate(x.astype(np.float32),
                                                      y=targets.astype(np.int64)))


def top_other_classes(logits: np.ndarray, labels: np.ndarray, n: int) -> np.ndarray:
    """[B, n] the n highest-scoring classes other than the label (AutoAttack's APGD-T targets)."""
    scores = np.array(logits, dtype=np.float64, copy=True)
    scores[np.arange(len(labels)), labels] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")
    return order[:, :n]
