"""The routing switch, hard (as the model runs) and relaxed (for attacks on the routed model).

The hard switch (docs/method.md §3) compares three argmaxes: it has no gradient, so PGD
through it only ever follows the head it happens to select and cannot push an input across a
route boundary. Two relaxations give the attacker that gradient:

- soft, temperature T: with p_t, p_r, p_n = softmax(h_t / T), softmax(rob / T), softmax(nr / T)
  (the same three scores the hard rule compares),
      w_benign      = sum_c p_t p_r p_n        (soft "y == y_r == y_n")
      w_adversarial = sum_c p_t p_r - w_benign (soft "y == y_r, y != y_n")
      w_tradeoff    = 1 - sum_c p_t p_r        (soft "y != y_r")
  and the routed logits are w_b h_b + w_a h_a + w_t h_t. As T -> 0 the weights tend to the
  hard route's one-hot.
- straight-through: forward exactly the hard routed logits, backward the soft mixture's
  gradient (`stop_gradient(hard) + (soft - stop_gradient(soft))`; the bracket is exactly 0.0
  in the forward pass, so predictions and losses are the model's own, bit for bit).
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf.models import heads as heads_lib

MODES = ("hard", "straight_through", "soft")
_ORDER = ("benign", "adversarial", "tradeoff")  # route index order: 0, 1, 2


def soft_route_weights(outputs: dict, temperature: float) -> tf.Tensor:
    """[B, 3] soft route weights (benign, adversarial, trade-off), rows summing to 1."""
    p_t = tf.nn.softmax(outputs["tradeoff"] / temperature)
    p_r = tf.nn.softmax(outputs["rob"] / temperature)
    p_n = tf.nn.softmax(outputs["nr"] / temperature)
    agree_rob = tf.reduce_sum(p_t * p_r, axis=-1)
    benign = tf.reduce_sum(p_t * p_r * p_n, axis=-1)
    return tf.stack([benign, agree_rob - benign, 1.0 - agree_rob], axis=-1)


def hard_route_weights(outputs: dict) -> tf.Tensor:
    route = heads_lib.routes(outputs["tradeoff"], outputs["rob"], outputs["nr"])
    return tf.one_hot(route, 3, dtype=outputs["tradeoff"].dtype)


def route_weights(outputs: dict, mode: str, temperature: float = 1.0) -> tf.Tensor:
    """[B, 3] route weights under `mode` (one of MODES)."""
    if mode == "hard":
        return hard_route_weights(outputs)
    soft = soft_route_weights(outputs, temperature)
    if mode == "soft":
        return soft
    if mode == "straight_through":
        return tf.stop_gradient(hard_route_weights(outputs)) + (soft - tf.stop_gradient(soft))
    raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")


def routed_logits(outputs: dict, mode: str, temperature: float = 1.0) -> tf.Tensor:
    """The routed model's logits with its switch in `mode` (hard: the model's own `routed`)."""
    route = heads_lib.routes(outputs["tradeoff"], outputs["rob"], outputs["nr"])
    hard = heads_lib.select_by_route(route, outputs["benign"], outputs["adversarial"],
                                     outputs["tradeoff"])
    if mode == "hard":
        return hard
    w = soft_route_weights(outputs, temperature)
    stacked = tf.stack([outputs[name] for name in _ORDER], axis=1)  # [B, 3, C]
    soft = tf.reduce_sum(w[:, :, None] * stacked, axis=1)
    if mode == "soft":
        return soft
    if mode == "straight_through":
        return tf.stop_gradient(hard) + (soft - tf.stop_gradient(soft))
    raise ValueError(f"mode must be one of {MODES}. Received: mode={mode!r}")
