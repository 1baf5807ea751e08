"""The automatic twin: a differentiable TensorFlow function built from an ONNX graph itself.

`build_twin(path_or_model, output=None)` returns `x -> output` (a tf.Tensor, float32) that runs
in the file's own layout (an NCHW file takes NCHW images), takes any batch size, and passes
gradients to x (tf.GradientTape). The evaluation trusts it only after the parity check against
ONNX Runtime on its own images, as it does a hand-written twin.

Supported operators (SUPPORTED_OPS, the registry's keys; docs/own_model.md lists the same):
- convolution and pooling, 2-D, NCHW: Conv (group, dilations, strides, pads, auto_pad),
  ConvTranspose (group 1, pads, output_padding), MaxPool and AveragePool (pads, auto_pad,
  ceil_mode, dilations; AveragePool's count_include_pad), GlobalAveragePool, GlobalMaxPool;
- linear and normalization: Gemm (alpha, beta, transA, transB), MatMul, BatchNormalization
  (inference), LayerNormalization;
- elementwise with numpy broadcasting: Add, Sub, Mul, Div, Pow, Sum, Max, Min, Mean, Neg, Abs,
  Exp, Log, Sqrt, Reciprocal, Erf;
- activations: Relu, LeakyRelu, PRelu, Elu, Selu, Sigmoid, Tanh, HardSigmoid, HardSwish, Gelu,
  Softplus, Softsign, Clip, Softmax, LogSoftmax (opset < 13 and >= 13 semantics);
- reductions: ReduceMean, ReduceSum, ReduceMax, ReduceMin;
- shapes and constants: Reshape (0 and -1), Flatten, Transpose, Concat, Pad (constant, reflect,
  edge), Squeeze, Unsqueeze, Slice, Gather, Expand, Shape, Cast, Constant, ConstantOfShape,
  Identity, Dropout (inference).

Outside it (an LSTM, NonMaxSuppression, a custom domain's operator, or a supported operator
with a setting listed as unsupported, e.g. a 3-D Conv) `build_twin` raises a one-line
`NfiError` naming the operator and its node: then write a twin by hand (a Keras model or
function of the same network, in the file's layout) and pass it with `--twin=PATH`.
"""

from nfi_tf.onnx_twin import (  # noqa: F401  (each module registers its operators)
    ops_const,
    ops_conv,
    ops_elementwise,
    ops_linear,
    ops_pad,
    ops_pool,
    ops_reduce,
    ops_shape,
)
from nfi_tf.onnx_twin.registry import OPS
from nfi_tf.onnx_twin.twin import OnnxTwin, build_twin

SUPPORTED_OPS = tuple(sorted(OPS))

__all__ = ["SUPPORTED_OPS", "OnnxTwin", "build_twin"]
