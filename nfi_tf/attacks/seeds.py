"""The one seed scheme: every random draw of an attack is a function of named parts.

A seed is a tuple of parts, ints and names (`(seed, "apgd", batch, target, restart)`,
`(train_seed, step)`). `parts` turns names into ints (crc32) once, and everything else derives
from that canonical tuple:

    stateless_seed(*parts)  [2] int64 key of TensorFlow's stateless draws: [p0, fold(p1, ...)]
                            (python ints, names or int tensors: the same values in a graph, so
                            training's (seed, step) key is computed in the compiled step)
    numpy_rng(*parts)       a NumPy Generator (SeedSequence of the canonical parts)
    int_seed(seed, key, b)  the evaluation's one int per (run seed, attack key, batch), which
                            its attacks then use as their first part

Same parts, same draws, on any run and after any resume. `stateless_seed(a, b)` is `[a, b]`
for 0 <= a, b < 2**62, so training's key is literally (seed, step) and the per-epoch check's
(seed, batch). The three functions keep the values of the helpers they replace
(`attacks.base.seed_tensor`, `attacks.base.numpy_rng` and the evaluation's former `int_seed`),
so no evaluation number moves because of this module.
"""

from __future__ import annotations

import zlib

import numpy as np
import tensorflow as tf

_FOLD = 1_000_003
_MOD = 2**62


def part(p) -> int:
    """One canonical part: crc32 of a name, an int as is."""
    return zlib.crc32(p.encode()) if isinstance(p, str) else int(p)


def parts(*ps) -> list[int]:
    return [part(p) for p in ps]


def stateless_seed(*ps) -> tf.Tensor:
    """The [2] int64 key of a stateless draw: [p0 mod 2**62, fold of the rest mod 2**62].

    Parts may be int tensors (e.g. the optimizer's step inside the compiled training step): the
    fold then runs in int64, whose wrap-around is exact modulo 2**64 and so, 2**62 dividing
    2**64, gives the same key as the Python ints would."""
    if not any(isinstance(p, (tf.Tensor, tf.Variable)) for p in ps):
        nums = parts(*ps)
        hi = nums[0] if nums else 0
        lo = 0
        for n in nums[1:]:
            lo = (lo * _FOLD + n) % _MOD
        return tf.constant([hi % _MOD, lo], tf.int64)
    nums = [tf.cast(p, tf.int64) if isinstance(p, (tf.Tensor, tf.Variable))
            else tf.constant(part(p), tf.int64) for p in ps]
    lo = tf.constant(0, tf.int64)
    for n in nums[1:]:
        lo = tf.math.floormod(lo * _FOLD + n, _MOD)
    return tf.stack([tf.math.floormod(nums[0], _MOD), lo])


def numpy_rng(*ps) -> np.random.Generator:
    """A NumPy generator from the same canonical parts (each taken modulo 2**32)."""
    return np.random.default_rng([n % (2**32) for n in parts(*ps)])


def int_seed(seed: int, key: str, batch: int) -> int:
    """One int per (seed, attack key, batch): the evaluation's attacks' draws are keyed by it."""
    return (int(seed) * 1_000_003 + part(key) * 4099 + int(batch)) % (2**31 - 1)
