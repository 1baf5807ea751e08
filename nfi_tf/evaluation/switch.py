"""The routing switch as an attacker sees it (docs/method.md §3-4).

The routed model answers with one of three heads, chosen by whether the trade-off head and its
two part scores agree; the choice (an argmax comparison) has no gradient. A gradient attack
therefore follows a relaxation of the switch while the hard routed output judges every iterate:

- `hard_routed`: the served logits (the selected head's own gradient flows through them);
- `relaxed_logits(out, Switch.STRAIGHT_THROUGH, T)`: forward the hard routed logits, backward
  the selected head's own gradient plus the gradient of the soft route weights times each
  head's logits;
- `relaxed_logits(out, Switch.SOFT, T)`: the soft mixture of the heads itself.

Each score vector is divided by its own (stop-gradient) standard deviation before the
temperature T, so the relaxation is not saturated on a confident model whatever its logit scale.
`output_target` builds the attack target of any planned (output, switch) of a classifier.
"""

from __future__ import annotations

import tensorflow as tf

from nfi_tf import outputs
from nfi_tf.attacks.base import Target
from nfi_tf.evaluation.vocab import Switch
from nfi_tf.models import heads as heads_lib

SWITCHES = tuple(Switch)  # a gradient attack on the routed model runs once per switch


def _normalized(scores, temperature):
    scale = tf.stop_gradient(tf.math.reduce_std(scores, axis=-1, keepdims=True)) + 1e-6
    return scores / (scale * temperature)


def relaxed_logits(out: dict, switch: Switch | str, temperature: float) -> tf.Tensor:
    """The routed logits with the switch relaxed (forward pass exact for straight-through).
    `switch`: Switch.STRAIGHT_THROUGH / Switch.SOFT, or their relaxation names."""
    mode = Switch(switch).relaxation if switch in tuple(Switch) else switch
    if mode not in {s.relaxation for s in Switch if s.relaxation}:
        raise ValueError(f"mode must be soft or straight_through. Received: mode={switch!r}")
    p_t = tf.nn.softmax(_normalized(out[outputs.TRADEOFF], temperature))
    p_r = tf.nn.softmax(_normalized(out[outputs.ROB], temperature))
    p_n = tf.nn.softmax(_normalized(out[outputs.NR], temperature))
    agree = tf.reduce_sum(p_t * p_r, axis=-1)
    benign = tf.reduce_sum(p_t * p_r * p_n, axis=-1)
    w = tf.stack([benign, agree - benign, 1.0 - agree], axis=-1)  # route order 0, 1, 2
    stacked = tf.stack([out[name] for name in outputs.ROUTE_NAMES], axis=1)  # [B, 3, C]
    if mode == Switch.SOFT.relaxation:
        return tf.reduce_sum(w[:, :, None] * stacked, axis=1)
    route = heads_lib.routes(out[outputs.TRADEOFF], out[outputs.ROB], out[outputs.NR])
    hard = heads_lib.select_by_route(route, out[outputs.BENIGN], out[outputs.ADVERSARIAL],
                                     out[outputs.TRADEOFF])
    # Value: exactly `hard`. Gradient: the selected head's own, plus sum_r h_r * dw_r.
    switch_part = tf.reduce_sum((w - tf.stop_gradient(w))[:, :, None] * tf.stop_gradient(stacked), axis=1)
    return hard + switch_part


def hard_routed(classifier):
    """images -> the hard routed logits (the judge of every attack on the routed model)."""
    return lambda x: classifier(x, training=False)[outputs.ROUTED]


def output_target(classifier, key) -> Target:
    """The target of a planned attack on one output: a head or part score is its own logits;
    the routed output runs through the key's switch, judged by the hard routed logits."""
    name = str(key)
    if key.target != outputs.ROUTED:
        return Target(lambda z: classifier(z, training=False)[key.target], name=name)
    hard = hard_routed(classifier)
    if key.variant in (None, Switch.HARD):
        def joint(z):
            routed = classifier(z, training=False)[outputs.ROUTED]
            return routed, routed

        return Target(hard, name=name, joint=joint)  # judged by the logits themselves
    switch = Switch(key.variant)

    def relaxed(z):
        return relaxed_logits(classifier(z, training=False), switch, 1.0)

    def joint_relaxed(z):
        out = classifier(z, training=False)
        return relaxed_logits(out, switch, 1.0), out[outputs.ROUTED]

    return Target(relaxed, judge=hard, name=name, joint=joint_relaxed)
