"""The classifier's output names, stated once: which method has which, which are served, the route
names in route-index order, and the titles reports print for them.

Plain Python (no Keras/TensorFlow), so ONNX serving can import it.
"""

from __future__ import annotations

from nfi_tf.vocab import Method

# Heads (logits D -> C), in build order; the TRADES baseline has only the first.
TRADEOFF, BENIGN, ADVERSARIAL = "tradeoff", "benign", "adversarial"
HEADS = (TRADEOFF, BENIGN, ADVERSARIAL)
HEADS_TRADES = (TRADEOFF,)

# The trade-off head's part scores (no bias) and the head on the masked feature (with bias).
ROB, NR = "rob", "nr"
ROBUST_PART, NONROBUST_PART = "robust_part", "nonrobust_part"
PARTS = (ROB, NR, ROBUST_PART, NONROBUST_PART)

# The routing layer's outputs, the softmax of the routed logits, and the backbone's feature.
ROUTED, ROUTE, PROBABILITIES = "routed", "route", "probabilities"
FEATURE = "feature"

# Keras layer names of everything after the feature (tf2onnx keeps them as path segments).
HEADS_LAYER, ROUTING_LAYER = "heads", "routing"
FLOAT_LAYERS = (HEADS_LAYER, ROUTING_LAYER, PROBABILITIES, FEATURE)

# Route index -> the head it selects (docs/method.md §3): 0 benign, 1 adversarial, 2 trade-off.
ROUTE_BENIGN, ROUTE_ADVERSARIAL, ROUTE_TRADEOFF = 0, 1, 2
ROUTE_NAMES = (BENIGN, ADVERSARIAL, TRADEOFF)

# The outputs scored per method (evaluation rows, the per-epoch check), in report order.
SCORED_NFI = (ROUTED, TRADEOFF, BENIGN, ADVERSARIAL, ROBUST_PART, NONROBUST_PART)
SCORED_TRADES = (TRADEOFF, ROBUST_PART, NONROBUST_PART)

# Served outputs (SavedModel/ONNX), in this order; benign/adversarial exist only for method=nfi.
# The part scores and the feature stay internal: they are routing evidence, not predictions.
SERVED = (ROUTED, ROUTE, PROBABILITIES, TRADEOFF, BENIGN, ADVERSARIAL)
SERVED_REQUIRED = (ROUTED, ROUTE, PROBABILITIES, TRADEOFF)
# The served outputs compared numerically between runtimes (routes are compared exactly).
SERVED_FLOAT = (ROUTED, PROBABILITIES, TRADEOFF, BENIGN, ADVERSARIAL)
# The logits routing takes an argmax of (a near-tie there can flip a route).
ROUTING_EVIDENCE = (TRADEOFF, ROB, NR)

# The routed model exported to ONNX, attacked as an evaluation row of its own.
ROUTED_ONNX = "routed_onnx"

# Any other classifier (nfi_tf.evaluate_classifier): its one output, the logits.
LOGITS = "logits"
SCORED_CLASSIFIER = (LOGITS,)

ROW_TITLES = {
    ROUTED: "routed (NFI)",
    ROUTED_ONNX: "routed, exported ONNX",
    LOGITS: Method.CLASSIFIER.value,  # the one row of any classifier nfi-tf did not train
    TRADEOFF: "trade-off head",
    BENIGN: "benign head",
    ADVERSARIAL: "adversarial head",
    ROBUST_PART: "robust part alone",
    NONROBUST_PART: "non-robust part alone",
}


def heads_for(method: Method) -> tuple[str, ...]:
    """The heads a method builds: nfi all three, trades the trade-off head only."""
    return HEADS if method == Method.NFI else HEADS_TRADES


def scored_for(method: Method) -> tuple[str, ...]:
    """The outputs a method's evaluation scores (its table rows)."""
    if method == Method.CLASSIFIER:
        return SCORED_CLASSIFIER
    return SCORED_NFI if method == Method.NFI else SCORED_TRADES
