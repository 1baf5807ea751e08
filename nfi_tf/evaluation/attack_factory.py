"""The evaluation's seed per (run seed, attack key, batch).

The attacks themselves are built by the registry (nfi_tf/evaluation/suite/); this module keeps
the one seed function the runner keys every attack's random draws with.
"""

from __future__ import annotations

import zlib


def int_seed(seed: int, key: str, batch: int) -> int:
    """One int per (seed, attack key, batch): the attacks' stateless draws are keyed by it."""
    return (int(seed) * 1_000_003 + zlib.crc32(key.encode()) * 4099 + int(batch)) % (2**31 - 1)
