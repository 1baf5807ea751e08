"""Square: AutoAttack's fourth attack, gradient-free (random square updates on the margin loss).

It only queries the served output (the judge), so on the routed model it needs no relaxation of
the switch, and it can run on a model it cannot differentiate (an ONNX file through ONNX
Runtime: a target with a `query`). L-inf and L2 (the threat's norm): the L2 version moves
pseudo-gaussian mass between windows on the eps sphere (nfi_tf.attacks.square).
"""

from __future__ import annotations

from nfi_tf.evaluation.suite import registry
from nfi_tf.evaluation.vocab import Column
from nfi_tf.vocab import Norm

P_INIT = 0.8  # AutoAttack's p_init (the same for L-inf and L2)
BUDGETS = (
    registry.Budget("square_queries", 5000, 1000, label="Square", unit="queries",
                    help="Square queries (AutoAttack's standard version: 5,000)."),
)


class SquareAttack:
    def __init__(self, budgets, threat):
        self.budgets, self.threat = budgets, threat
        self._built = registry.PerTarget(self._make)

    def _make(self, target):
        from nfi_tf.attacks.square import keras_query

        if target.query is not None:  # a model it can only query (an ONNX file): the file itself
            return self.on_query(target.query)
        return self.on_query(keras_query(target.judge_logits, self.budgets.batch_size))

    def on_query(self, query):
        """Square on a numpy images -> logits function (e.g. ONNX Runtime)."""
        from nfi_tf.attacks.square import Square

        return Square(query, self.threat, self.budgets.square_queries, p_init=P_INIT)

    def run(self, x, y, seed, target):
        return self._built(target).run(x, y, seed)


def _note(entry):
    # Records written before Square had an L2 version have no norm in their entry: L-inf.
    l2 = entry.get("norm", Norm.LINF) == Norm.L2
    return (f"Square: {entry['queries']} queries, p_init {entry.get('p_init', P_INIT):g}, margin loss "
            f"(gradient-free{', L2 pseudo-gaussian windows' if l2 else ''})")


SPEC = registry.AttackSpec(
    name=Column.SQUARE, title="Square", budgets=BUDGETS, suite_position=3, gradient=False,
    routed_variants=False, norms=(Norm.LINF, Norm.L2), build=SquareAttack,
    settings=lambda b, threat: {"queries": b.square_queries, "p_init": P_INIT, "norm": threat.norm},
    note=_note)
