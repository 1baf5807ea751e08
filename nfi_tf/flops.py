"""Analytic FLOP count of a Keras model's forward pass, and of one adversarial training step.

Forward pass: only the layers that do multiply-adds are counted, each multiply-add as 2 FLOPs,
per image:
    Conv2D     2 * out_h * out_w * out_channels * (k_h * k_w * in_channels / groups)
    Dense      2 * in_features * units (times the positions, if applied to a >2-D input)
    TripleHead 2 * D * num_classes per head (the trade-off head's `rob` and `nr` parts are its
               two row blocks, so they add up to one D x num_classes product)
Bias adds, batch norm, activations, pooling, softmax and the routing rule are not counted
(a few percent of the total at most for these models).

One training step on a batch of B images with K attack iterations costs, per image,

    F_step = F * (1 + 2 K + 2 * 3) = F * (2 K + 7)

with F the forward FLOPs above:
    1      the clean forward pass in inference mode whose logits the attack targets;
    2 K    K attack iterations, each one forward plus one backward pass to the *input* only
           (the weight gradients are not needed, and the backward to the input of a conv or
           dense layer costs the same multiply-adds as its forward);
    2 * 3  the loss's forward and full backward (input and weight gradients: 3 forwards' worth)
           on each of the two copies of the batch fed, x and x'.
The optimizer update and the loss arithmetic are O(parameters) or O(B * classes): not counted.

Two costs around it, counted the same way (`nfi_tf.training.estimate` adds them up):
    route guard (`--route_guard_weight` > 0)  F * (2 K + 4) more per image: its clean forward
               (the target class), its own K-iteration PGD, and the forward and full backward of
               its loss on a third copy of the batch.
    per-epoch check (`training/epoch_eval.py`)  F * (2 K_eval + 2) per checked image: K_eval
               attack iterations, then one forward pass on x and one on x'.
"""

from __future__ import annotations

import math

import keras

MULTIPLY_ADD = 2


def _shape(tensor) -> tuple:
    return tuple(int(d) if d is not None else 1 for d in tensor.shape)


def layer_flops(layer: keras.layers.Layer) -> int:
    """Forward FLOPs of one (non-container) layer per image; 0 for layers not counted."""
    from nfi_tf.models.heads import TripleHead

    if isinstance(layer, keras.layers.Conv2D):
        out = _shape(layer.output)  # (1, h, w, c): channels-last, the Keras default here
        kh, kw, cin_per_group, cout = (int(d) for d in layer.kernel.shape)
        return MULTIPLY_ADD * out[1] * out[2] * cout * kh * kw * cin_per_group
    if isinstance(layer, keras.layers.Dense):
        out = _shape(layer.output)
        positions = math.prod(out[1:-1])
        fan_in, units = (int(d) for d in layer.kernel.shape)
        return MULTIPLY_ADD * positions * fan_in * units
    if isinstance(layer, TripleHead):
        dims = int(layer.tradeoff_kernel.shape[0])
        return MULTIPLY_ADD * dims * layer.num_classes * len(layer.heads)
    return 0


def forward_flops_by_layer(model: keras.Model) -> dict[str, int]:
    """{layer path: forward FLOPs per image}, recursing into nested models, counted layers only."""
    counts: dict[str, int] = {}

    def walk(m, prefix):
        for layer in m.layers:
            name = f"{prefix}{layer.name}"
            if isinstance(layer, keras.Model):
                walk(layer, f"{name}/")
                continue
            n = layer_flops(layer)
            if n:
                counts[name] = n

    walk(model, "")
    return counts


def forward_flops(model: keras.Model) -> int:
    """Forward FLOPs per image of a built functional Keras model (see the module docstring)."""
    return sum(forward_flops_by_layer(model).values())


def train_step_flops(forward: int, attack_steps: int, batch_size: int) -> int:
    """FLOPs of one adversarial training step on `batch_size` images: B * F * (2K + 7)."""
    if attack_steps < 0 or batch_size < 1:
        raise ValueError(f"need attack_steps >= 0 and batch_size >= 1. Received: "
                         f"attack_steps={attack_steps}, batch_size={batch_size}")
    return batch_size * forward * (2 * attack_steps + 7)


def route_guard_flops(forward: int, attack_steps: int, batch_size: int) -> int:
    """FLOPs the route guard adds to a training step on `batch_size` images: B * F * (2K + 4)."""
    if attack_steps < 0 or batch_size < 1:
        raise ValueError(f"need attack_steps >= 0 and batch_size >= 1. Received: "
                         f"attack_steps={attack_steps}, batch_size={batch_size}")
    return batch_size * forward * (2 * attack_steps + 4)


def epoch_check_flops(forward: int, attack_steps: int, examples: int) -> int:
    """FLOPs of the per-epoch check (PGD-K_eval, then x and x') on `examples` images:
    N * F * (2 K_eval + 2)."""
    if attack_steps < 0 or examples < 0:
        raise ValueError(f"need attack_steps >= 0 and examples >= 0. Received: "
                         f"attack_steps={attack_steps}, examples={examples}")
    return examples * forward * (2 * attack_steps + 2)
