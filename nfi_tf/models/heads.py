"""The triple-head layer, the part scores of its trade-off head, and the routing rule.

docs/method.md §1 (notation) and §3 (the routing rule). With f = f(x) split as
z_r = f[:d] (robust part) and z_n = f[d:] (non-robust part):

    rob(x) = W_t[:d]^T z_r,   nr(x) = W_t[d:]^T z_n,   h_t(x) = rob(x) + nr(x) + b_t

and the trade-off head on the masked feature m * f (Table 1's "robust part alone") is
rob(x) + b_t; on (1 - m) * f it is nr(x) + b_t.
"""

import keras
from keras import layers, ops

from nfi_tf import outputs
from nfi_tf.outputs import ROUTE_ADVERSARIAL, ROUTE_BENIGN, ROUTE_NAMES, ROUTE_TRADEOFF  # noqa: F401

# Output and route names live in nfi_tf.outputs; HEAD_NAMES and ROUTE_NAMES stay importable here.
HEAD_NAMES = outputs.HEADS


@keras.saving.register_keras_serializable(package="nfi_tf")
class TripleHead(layers.Layer):
    """Dense heads `D -> num_classes` on one feature vector, plus the trade-off head's parts.

    Returns a dict: `tradeoff`, `benign`, `adversarial` (logits of each head present), `rob`
    and `nr` (part scores, no bias), `robust_part` and `nonrobust_part` (the trade-off head on
    the masked feature). The trade-off logits are computed as `rob + nr + b_t`, so the
    identity holds to rounding by construction.

    Args:
        num_classes: number of classes C.
        robust_dims: d, the size of the robust part (the first d feature dims).
        heads: which heads to build; ("tradeoff",) is the TRADES baseline's single head.
    """

    def __init__(self, num_classes, robust_dims, heads=HEAD_NAMES, **kwargs):
        super().__init__(**kwargs)
        unknown = set(heads) - set(HEAD_NAMES)
        if outputs.TRADEOFF not in heads or unknown:
            raise ValueError(f"heads must include 'tradeoff' and be among {HEAD_NAMES}. "
                             f"Received: heads={heads}")
        self.num_classes = int(num_classes)
        self.robust_dims = int(robust_dims)
        self.heads = tuple(heads)

    def build(self, feature_shape):
        dims = int(feature_shape[-1])
        if not 0 < self.robust_dims < dims:
            raise ValueError(f"robust_dims must be in [1, {dims - 1}] for a feature of size {dims}. "
                             f"Received: robust_dims={self.robust_dims}")
        # PyTorch's nn.Linear default init (TRADES' heads), zero bias as TRADES' WideResNet.
        bound = 1.0 / dims**0.5
        for head in self.heads:
            kernel = self.add_weight(name=f"{head}_kernel", shape=(dims, self.num_classes),
                                     initializer=keras.initializers.RandomUniform(-bound, bound))
            bias = self.add_weight(name=f"{head}_bias", shape=(self.num_classes,),
                                   initializer="zeros")
            setattr(self, f"{head}_kernel", kernel)
            setattr(self, f"{head}_bias", bias)

    def call(self, feature):
        d = self.robust_dims
        w_t, b_t = self.tradeoff_kernel, self.tradeoff_bias
        rob = ops.matmul(feature[:, :d], w_t[:d])
        nr = ops.matmul(feature[:, d:], w_t[d:])
        out = {
            outputs.TRADEOFF: rob + nr + b_t,
            outputs.ROB: rob,
            outputs.NR: nr,
            outputs.ROBUST_PART: rob + b_t,
            outputs.NONROBUST_PART: nr + b_t,
        }
        for head in self.heads[1:]:
            out[head] = self.head_logits(head, feature)
        return out

    def head_logits(self, head, feature):
        """One head's logits on a given feature (used to detach auxiliary heads from f)."""
        return ops.matmul(feature, getattr(self, f"{head}_kernel")) + getattr(self, f"{head}_bias")

    def compute_output_spec(self, feature):
        # One distinct symbolic tensor per output: a shared one would alias them all.
        shape = (feature.shape[0], self.num_classes)
        names = (outputs.TRADEOFF,) + outputs.PARTS + self.heads[1:]
        return {name: keras.KerasTensor(shape, dtype=self.compute_dtype) for name in names}

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, robust_dims=self.robust_dims,
                      heads=list(self.heads))
        return config


@keras.saving.register_keras_serializable(package="nfi_tf")
class RoutingLayer(layers.Layer):
    """Section 2.3's rule: which head answers, per input.

    y = argmax h_t, y_r = argmax rob, y_n = argmax nr:
      y == y_r == y_n -> route 0 (judged benign), answer h_b;
      else y == y_r   -> route 1 (judged adversarial), answer h_a;
      else            -> route 2 (uncertain), answer h_t.
    Ties in an argmax resolve to the lowest class index (tf.argmax on CPU and ONNX ArgMax
    with select_last_index=0 agree on this). With `single_head=True` (the TRADES baseline)
    every input takes route 2.

    Call with a dict holding `tradeoff`, `rob`, `nr` and, unless single_head, `benign` and
    `adversarial`. Returns (routed logits, int32 route).
    """

    def __init__(self, single_head=False, **kwargs):
        super().__init__(**kwargs)
        self.single_head = bool(single_head)

    def call(self, heads):
        tradeoff = heads[outputs.TRADEOFF]
        if self.single_head:
            return tradeoff, ops.full((ops.shape(tradeoff)[0],), ROUTE_TRADEOFF, dtype="int32")
        route = routes(tradeoff, heads[outputs.ROB], heads[outputs.NR])
        return select_by_route(route, heads[outputs.BENIGN], heads[outputs.ADVERSARIAL], tradeoff), route

    def compute_output_spec(self, heads):
        t = heads[outputs.TRADEOFF]
        return (keras.KerasTensor(t.shape, dtype=t.dtype),
                keras.KerasTensor((t.shape[0],), dtype="int32"))

    def get_config(self):
        config = super().get_config()
        config.update(single_head=self.single_head)
        return config


def routes(tradeoff, rob, nr):
    """The route index (int32) of each example from the three argmaxes."""
    y = ops.argmax(tradeoff, axis=-1)
    y_rob = ops.argmax(rob, axis=-1)
    y_nr = ops.argmax(nr, axis=-1)
    agree_rob = ops.equal(y, y_rob)
    route = ops.where(ops.logical_and(agree_rob, ops.equal(y, y_nr)), ROUTE_BENIGN,
                      ops.where(agree_rob, ROUTE_ADVERSARIAL, ROUTE_TRADEOFF))
    return ops.cast(route, "int32")


def select_by_route(route, benign, adversarial, tradeoff):
    r = ops.expand_dims(route, -1)
    return ops.where(ops.equal(r, ROUTE_BENIGN), benign,
                     ops.where(ops.equal(r, ROUTE_ADVERSARIAL), adversarial, tradeoff))
