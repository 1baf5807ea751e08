"""Route-aware objectives against the routed model (docs/method.md §3-4).

The routed model answers with one of three heads, chosen by whether the trade-off head and its
two part scores agree. An attacker who understands the switch has three ways past it, each an
objective for `nfi_tf.attacks.pgd_judged.JudgedPGD` (which judges every iterate by the *hard*
routed output, so any iterate that fools the served model is kept):

- `all_heads`: make every head wrong at once (sum of the capped CW margins of the benign,
  adversarial and trade-off heads): whichever route is then taken, the answer is wrong.
- `route_target("benign")`: push the trade-off head and both part scores to agree on a wrong
  class t, and the benign head to say t, so the rule routes to the benign head, which is wrong.
  `route_target("adversarial")`: the trade-off head and the robust part agree on t, the
  non-robust part does not, and the adversarial head says t.
- `relaxed(mode, temperature)`: CE of the routed logits with the switch relaxed:
  "straight_through" (forward: the hard routed logits; backward: the selected head's own
  gradient plus the gradient of the soft route weights times each head's logits), or "soft"
  (the soft mixture itself). Each score vector is divided by its own (stop-gradient) standard
  deviation before the temperature, so the relaxation is not saturated on a confident model
  whatever its logit scale; a sweep over temperatures covers sharp and smooth switches.
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf import outputs
from nfi_tf.attacks import losses
from nfi_tf.models import heads as heads_lib

CAP = 10.0  # margins are capped so a head already far past the boundary stops dominating
TEMPERATURES = (0.1, 1.0, 10.0)
ROUTES = (outputs.BENIGN, outputs.ADVERSARIAL)


def _margin_to(logits, t):
    """z_t - max_{j != t} z_j: > 0 where class t wins."""
    return -losses.margin_loss_fn(labels=t, logits=logits)


def _capped(v):
    return tf.minimum(v, CAP)


def all_heads(classifier):
    """objective(x, y, aux): sum over heads of min(margin against y, CAP) (and the judged logits)."""

    def objective(x, y, aux):
        del aux
        out = classifier(x, training=False)
        return tf.add_n([_capped(losses.margin_loss_fn(labels=y, logits=out[h]))
                         for h in outputs.HEADS]), out[outputs.ROUTED]

    return objective


def route_target(classifier, route: str):
    """objective(x, y, t): steer the switch onto `route` with every deciding score on class t."""
    if route not in ROUTES:
        raise ValueError(f"route must be one of {ROUTES}. Received: route={route!r}")

    def objective(x, y, t):
        del y
        out = classifier(x, training=False)
        agree = (outputs.TRADEOFF, outputs.ROB, outputs.NR, outputs.BENIGN) if route == outputs.BENIGN \
            else (outputs.TRADEOFF, outputs.ROB, outputs.ADVERSARIAL)
        # The training step's route guard steers with the same objective (benign route).
        total = losses.agreement_loss_fn(t, tf.concat([out[name] for name in agree], axis=-1),
                                         num_scores=len(agree), cap=CAP)
        if route == outputs.ADVERSARIAL:  # the non-robust part must disagree for route 1
            total += _capped(-_margin_to(out[outputs.NR], t))
        return total, out[outputs.ROUTED]

    return objective


def _normalized(scores, temperature):
    scale = tf.stop_gradient(tf.math.reduce_std(scores, axis=-1, keepdims=True)) + 1e-6
    return scores / (scale * temperature)


def relaxed_logits(out: dict, mode: str, temperature: float) -> tf.Tensor:
    """The routed logits with the switch relaxed (forward pass exact for straight_through)."""
    p_t = tf.nn.softmax(_normalized(out[outputs.TRADEOFF], temperature))
    p_r = tf.nn.softmax(_normalized(out[outputs.ROB], temperature))
    p_n = tf.nn.softmax(_normalized(out[outputs.NR], temperature))
    agree = tf.reduce_sum(p_t * p_r, axis=-1)
    benign = tf.reduce_sum(p_t * p_r * p_n, axis=-1)
    w = tf.stack([benign, agree - benign, 1.0 - agree], axis=-1)  # route order 0, 1, 2
    stacked = tf.stack([out[name] for name in outputs.ROUTE_NAMES], axis=1)  # [B, 3, C]
    if mode == "soft":
        return tf.reduce_sum(w[:, :, None] * stacked, axis=1)
    if mode != "straight_through":
        raise ValueError(f"mode must be soft or straight_through. Received: mode={mode!r}")
    route = heads_lib.routes(out[outputs.TRADEOFF], out[outputs.ROB], out[outputs.NR])
    hard = heads_lib.select_by_route(route, out[outputs.BENIGN], out[outputs.ADVERSARIAL],
                                     out[outputs.TRADEOFF])
    # Value: exactly `hard`. Gradient: the selected head's own, plus sum_r h_r * dw_r.
    switch = tf.reduce_sum((w - tf.stop_gradient(w))[:, :, None] * tf.stop_gradient(stacked), axis=1)
    return hard + switch


def relaxed(classifier, mode: str, temperature: float):
    """objective(x, y, aux): CE of the relaxed routed logits."""

    def objective(x, y, aux):
        del aux
        out = classifier(x, training=False)
        logits = relaxed_logits(out, mode, temperature)
        return losses.ce_loss_fn(labels=y, logits=logits), out[outputs.ROUTED]

    return objective


def hard_routed(classifier):
    """images -> the hard routed logits (the judge of every route-aware attack)."""
    return lambda x: classifier(x, training=False)[outputs.ROUTED]
