"""Route statistics: how often each route fires, and the routed model's accuracy within it."""

from __future__ import annotations

import numpy as np

from nfi_tf.outputs import ROUTE_NAMES


def route_stats(routes: np.ndarray, correct: np.ndarray) -> dict:
    """{route name: {count, share, accuracy}}; accuracy is None for a route that never fired."""
    routes, correct = np.asarray(routes), np.asarray(correct, dtype=bool)
    n = max(len(routes), 1)
    out = {}
    for index, name in enumerate(ROUTE_NAMES):
        hit = routes == index
        count = int(hit.sum())
        out[name] = {"count": count, "share": count / n,
                     "accuracy": float(correct[hit].mean()) if count else None}
    return out
