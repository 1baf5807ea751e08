"""The automatic twin (nfi_tf/onnx_twin): ONNX classifiers nfi-tf did not write, built with
onnx.helper and with tf2onnx, against ONNX Runtime (logits within 1e-4 relative) and against
finite differences or Keras' own gradients; every supported operator in at least one graph."""

import os
import re

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from helpers import REPO
from onnx import TensorProto, helper, numpy_helper

from nfi_tf.errors import NfiError
from nfi_tf.onnx_twin import SUPPORTED_OPS, build_twin

TOL = 1e-4  # max |twin - ONNX Runtime| / max(1, max |ONNX Runtime|)
node = helper.make_node


def make_model(nodes, inits, in_shape, opset=17, out="y"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              ir_version=8 if opset <= 17 else 10)
    return model  # ONNX Runtime validates it (the checker wants output shapes we leave open)


def ort_run(model, x):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def assert_matches_ort(model, x, twin=None):
    twin = twin or build_twin(model)
    ref, got = ort_run(model, x), twin(tf.constant(x)).numpy()
    assert got.shape == ref.shape and got.dtype == np.float32
    diff = float(np.max(np.abs(got - ref))) / max(1.0, float(np.max(np.abs(ref))))
    assert diff <= TOL, diff
    return twin


def assert_gradient_matches_finite_differences(model, x, coords=4, seed=0):
    """d/dx sum(twin64(x) * v) at a few coordinates, central differences in float64."""
    rng = np.random.default_rng(seed)
    twin = build_twin(model, dtype="float64")
    x64 = tf.constant(x, tf.float64)
    v = tf.constant(rng.normal(size=twin(x64).shape))

    def f(z):
        return tf.reduce_sum(twin(z) * v)

    with tf.GradientTape() as tape:
        tape.watch(x64)
        value = f(x64)
    grad = tape.gradient(value, x64).numpy().ravel()
    eps = 1e-6
    for i in rng.choice(x.size, size=coords, replace=False):
        step = np.zeros(x.size)
        step[i] = eps
        step = tf.constant(step.reshape(x.shape))
        fd = float((f(x64 + step) - f(x64 - step)) / (2 * eps))
        assert abs(grad[i] - fd) <= 1e-6 + 1e-4 * abs(fd), (i, grad[i], fd)


# === An NCHW CNN written with onnx.helper ===

def nchw_cnn(seed=0):
    """Conv pads 1 -> BN -> Relu -> Conv group 2 -> MaxPool -> Conv dilation 2 stride 2 -> Relu
    -> depthwise Conv SAME_UPPER stride 2 -> GlobalAveragePool -> Flatten -> Gemm transB=1: 3x32x32 -> 10."""
    rng = np.random.default_rng(seed)
    w = lambda *s: (rng.normal(size=s) / np.sqrt(np.prod(s[1:]))).astype(np.float32)  # noqa: E731
    inits = {"w0": w(8, 3, 3, 3), "b0": w(8), "scale": 1 + 0.1 * w(8), "bias": w(8), "mean": w(8),
             "var": (1 + rng.uniform(size=8)).astype(np.float32), "w1": w(8, 4, 3, 3), "w2": w(16, 8, 3, 3),
             "b2": w(16), "w3": w(16, 1, 3, 3), "fc": w(10, 16), "fcb": w(10)}
    nodes = [
        node("Conv", ["x", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1]),
        node("BatchNormalization", ["c0", "scale", "bias", "mean", "var"], ["n0"], epsilon=1e-3),
        node("Relu", ["n0"], ["r0"]),
        node("Conv", ["r0", "w1"], ["c1"], pads=[1, 0, 1, 2], group=2),
        node("MaxPool", ["c1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["p1", "w2", "b2"], ["c2"], dilations=[2, 2], strides=[2, 2], pads=[2, 1, 1, 2]),
        node("Relu", ["c2"], ["r2"]),
        node("Conv", ["r2", "w3"], ["c3"], group=16, auto_pad="SAME_UPPER", strides=[2, 2]),
        node("GlobalAveragePool", ["c3"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1),
    ]
    return make_model(nodes, inits, ["N", 3, 32, 32], opset=13)


@pytest.fixture(scope="module")
def cnn():
    return nchw_cnn()


def test_an_onnx_helper_cnn_matches_onnx_runtime_at_batch_1_and_7(cnn):
    rng = np.random.default_rng(1)
    twin = build_twin(cnn)
    for batch in (1, 7):
        x = rng.uniform(size=(batch, 3, 32, 32)).astype(np.float32)
        assert_matches_ort(cnn, x, twin)
    traced = tf.function(twin, reduce_retracing=True)  # as the attacks compile it
    for batch in (7, 3):
        x = rng.uniform(size=(batch, 3, 32, 32)).astype(np.float32)
        np.testing.assert_allclose(traced(tf.constant(x)).numpy(), ort_run(cnn, x), atol=TOL)


def test_the_cnn_gradient_matches_finite_differences_and_float32(cnn):
    x = np.random.default_rng(2).uniform(size=(2, 3, 32, 32)).astype(np.float32)
    assert_gradient_matches_finite_differences(cnn, x, coords=6)
    grads = []
    for dtype in ("float32", "float64"):
        xt = tf.constant(x, dtype)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            out = build_twin(cnn, dtype=dtype)(xt)
            loss = tf.reduce_sum(out * tf.cast(tf.range(10), dtype))
        grads.append(tape.gradient(loss, xt).numpy().astype(np.float64))
    scale = np.max(np.abs(grads[1]))
    assert scale > 0 and np.max(np.abs(grads[0] - grads[1])) <= 1e-4 * scale


# === A Keras model with an NCHW input, converted by tf2onnx ===

def nchw_keras_model(shape):
    keras.utils.set_random_seed(3)
    inp = keras.Input(shape)
    z = keras.layers.Permute((2, 3, 1))(inp)
    z = keras.layers.Conv2D(8, 3, activation="relu")(z)
    z = keras.layers.MaxPooling2D()(z)
    z = keras.layers.Conv2D(12, 3, strides=2, padding="same")(z)
    z = keras.layers.BatchNormalization()(z)
    z = keras.layers.ReLU()(z)
    z = keras.layers.DepthwiseConv2D(3, padding="same")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    z = keras.layers.Dense(16, activation="tanh")(z)
    model = keras.Model(inp, keras.layers.Dense(10)(z))
    bn = model.layers[4]  # give BatchNormalization statistics that are not the identity
    bn.set_weights([w + np.random.default_rng(0).uniform(0.1, 0.5, w.shape).astype(np.float32)
                    for w in bn.get_weights()])
    return model


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_a_tf2onnx_export_of_an_nchw_keras_model(shape, tmp_path):
    import tf2onnx

    model = nchw_keras_model(shape)
    path = str(tmp_path / "keras.onnx")
    spec = (tf.TensorSpec((None, *shape), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=13, output_path=path)
    x = np.random.default_rng(4).uniform(size=(7, *shape)).astype(np.float32)
    twin = assert_matches_ort(onnx.load(path), x, build_twin(path))
    xt = tf.constant(x)
    grads = []
    for fn in (twin, lambda z: model(z, training=False)):
        with tf.GradientTape() as tape:
            tape.watch(xt)
            loss = tf.reduce_sum(fn(xt) * tf.range(10, dtype=tf.float32))
        grads.append(tape.gradient(loss, xt).numpy())
    scale = np.max(np.abs(grads[1]))
    assert scale > 0 and np.max(np.abs(grads[0] - grads[1])) <= 1e-4 * scale


# === Small graphs: every supported operator against ONNX Runtime ===

def _x(shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def _f(*values):
    return np.asarray(values, np.float32)


def _i(*values):
    return np.asarray(values, np.int64)


CASES = {
    "average_pool_pads_ceil_exclude_pad": lambda: (make_model(
        [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
              ceil_mode=1)], {}, [None, 2, 8, 7]), _x((3, 2, 8, 7))),
    "average_pool_pads_ceil_include_pad": lambda: (make_model(
        [node("AveragePool", ["x"], ["y"], kernel_shape=[3, 2], strides=[2, 2], pads=[1, 0, 2, 1],
              ceil_mode=1, count_include_pad=1)], {}, [None, 2, 8, 7]), _x((3, 2, 8, 7))),
    "pools_whose_last_ceil_window_would_start_in_the_padding": lambda: (make_model(
        [node("AveragePool", ["x"], ["a"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1],
              ceil_mode=1, count_include_pad=1),
         node("MaxPool", ["x"], ["m"], kernel_shape=[2, 2], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1),
         node("Add", ["a", "m"], ["y"])], {}, [None, 1, 5, 5]), _x((2, 1, 5, 5))),
    "average_pool_same_lower_and_dilated_max_pool": lambda: (make_model(
        [node("AveragePool", ["x"], ["a"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_LOWER"),
         node("MaxPool", ["x"], ["m"], kernel_shape=[2, 2], strides=[2, 2], dilations=[2, 2],
              pads=[1, 1, 1, 1], ceil_mode=1),
         node("AveragePool", ["x"], ["d"], kernel_shape=[2, 3], strides=[2, 1], dilations=[2, 2],
              pads=[1, 0, 1, 2], ceil_mode=1, count_include_pad=1),
         node("Mul", ["a", "m"], ["am"]), node("ReduceMax", ["d", "rax"], ["ds"]),
         node("Add", ["am", "ds"], ["y"])], {"rax": _i(2, 3)}, [None, 2, 9, 9], opset=19), _x((2, 2, 9, 9))),
    "reshape_by_a_shape_gather_concat_chain": lambda: (make_model(
        [node("Shape", ["x"], ["s"]), node("Gather", ["s", "zero"], ["n"], axis=0),
         node("Unsqueeze", ["n", "axes"], ["n1"]), node("Concat", ["n1", "minus1"], ["shape"], axis=0),
         node("Reshape", ["x", "shape"], ["y"])],
        {"zero": np.asarray(0, np.int64), "axes": _i(0), "minus1": _i(-1)}, ["N", 2, 3, 4]),
        _x((7, 2, 3, 4))),
    "reshape_zero_copies_a_dimension_and_flatten_axis_2": lambda: (make_model(
        [node("Reshape", ["x", "shape"], ["r"]), node("Flatten", ["r"], ["y"], axis=2)],
        {"shape": _i(0, 3, -1, 2)}, ["N", 6, 4]), _x((3, 6, 4))),
    "clip_from_inputs_and_softmax_of_opset_13": lambda: (make_model(
        [node("Clip", ["x", "low", ""], ["c"]), node("Clip", ["c", "", "high"], ["d"]),
         node("Softmax", ["d"], ["y"], axis=1)], {"low": _f(-0.3), "high": _f(0.5)}, [None, 3, 4, 5]),
        _x((2, 3, 4, 5))),
    "clip_attributes_and_softmax_flattened_before_opset_13": lambda: (make_model(
        [node("Clip", ["x"], ["c"], min=-0.5, max=0.4), node("Softmax", ["c"], ["s"], axis=1),
         node("LogSoftmax", ["x"], ["l"], axis=2), node("Add", ["s", "l"], ["y"])],
        {}, [None, 3, 4, 5], opset=10), _x((2, 3, 4, 5))),
    "log_softmax_of_opset_13": lambda: (make_model(
        [node("LogSoftmax", ["x"], ["y"], axis=-2)], {}, [None, 3, 4], opset=13), _x((2, 3, 4))),
    "pad_constant_reflect_edge_and_a_negative_pad": lambda: (make_model(
        [node("Pad", ["x", "p1", "v"], ["a"], mode="constant"),
         node("Pad", ["a", "p2"], ["b"], mode="reflect"),
         node("Pad", ["b", "p3"], ["y"], mode="edge")],
        {"p1": _i(0, 0, 1, 2, 0, 0, 2, -1), "v": _f(0.7), "p2": _i(0, 0, 2, 1, 0, 0, 1, 2),
         "p3": _i(0, 1, 1, 0, 0, 0, 2, 1)}, [None, 2, 5, 6]), _x((2, 2, 5, 6))),
    "pad_of_opset_2_attributes": lambda: (make_model(
        [node("Pad", ["x"], ["y"], pads=[0, 0, 1, 1, 0, 0, 1, 2], value=-0.5)], {}, [None, 2, 3, 3],
        opset=9), _x((2, 2, 3, 3))),
    "squeeze_unsqueeze_by_inputs_and_concat": lambda: (make_model(
        [node("Unsqueeze", ["x", "ax"], ["u"]), node("Squeeze", ["u", "ax"], ["s"]),
         node("Concat", ["x", "s", "x"], ["c"], axis=-1), node("ReduceMean", ["c", "keep"], ["m"]),
         node("Squeeze", ["m"], ["y"])],
        {"ax": _i(1, -1), "keep": _i(1)}, [None, 3, 4], opset=18), _x((2, 3, 4))),
    "squeeze_unsqueeze_by_attributes": lambda: (make_model(
        [node("Unsqueeze", ["x"], ["u"], axes=[0, 3]), node("Squeeze", ["u"], ["y"], axes=[0])],
        {}, [None, 3, 4], opset=11), _x((2, 3, 4))),
    "gemm_trans_a_alpha_beta_and_matmul_broadcast": lambda: (make_model(
        [node("Gemm", ["x", "b", "c"], ["g"], transA=1, alpha=0.5, beta=2.0),
         node("MatMul", ["stack", "g"], ["m"]), node("MatMul", ["m", "vec"], ["y"])],
        {"b": _x((6, 3), 1), "c": _x((3,), 2), "stack": _x((2, 5, 4), 3), "vec": _x((3,), 4)},
        [6, 4]), _x((6, 4))),
    "matmul_of_a_vector_by_a_matrix": lambda: (make_model(
        [node("MatMul", ["vec", "x"], ["y"])], {"vec": _x((4,), 1)}, [None, 4, 3]), _x((2, 4, 3))),
    "conv_transpose_stride_pads_output_padding_dilation": lambda: (make_model(
        [node("ConvTranspose", ["x", "w", "b"], ["t"], strides=[2, 2], pads=[1, 0, 0, 1],
              output_padding=[1, 0]),
         node("ConvTranspose", ["x", "w"], ["d"], dilations=[2, 1], strides=[2, 3], pads=[0, 1, 2, 0]),
         node("ReduceMean", ["t"], ["tm"], axes=[2, 3]), node("Add", ["d", "tm"], ["y"])],
        {"w": _x((3, 4, 3, 2), 1), "b": _x((4,), 2)}, [None, 3, 5, 4]), _x((2, 3, 5, 4))),
    "conv_grouped_general_strided_same_lower": lambda: (make_model(
        [node("Conv", ["x", "w"], ["y"], group=3, strides=[2, 1], auto_pad="SAME_LOWER",
              kernel_shape=[3, 2])], {"w": _x((6, 2, 3, 2), 1)}, [None, 6, 7, 7]), _x((2, 6, 7, 7))),
    "activations": lambda: (make_model(
        [node("LeakyRelu", ["x"], ["a"], alpha=0.2), node("PRelu", ["x", "slope"], ["b"]),
         node("HardSigmoid", ["x"], ["c"], alpha=0.3, beta=0.4), node("HardSwish", ["x"], ["d"]),
         node("Elu", ["x"], ["e"], alpha=0.7), node("Selu", ["x"], ["f"]), node("Softplus", ["x"], ["g"]),
         node("Softsign", ["x"], ["h"]), node("Sigmoid", ["x"], ["i"]), node("Tanh", ["x"], ["j"]),
         node("Gelu", ["x"], ["k"]), node("Gelu", ["x"], ["l"], approximate="tanh"),
         node("Sum", ["a", "b", "c", "d", "e", "f"], ["s1"]),
         node("Sum", ["g", "h", "i", "j", "k", "l"], ["s2"]),
         node("Relu", ["s2"], ["r"]), node("Mul", ["s1", "r"], ["y"])],
        {"slope": _x((3, 1, 1), 1)}, [None, 3, 4, 4], opset=20), _x((2, 3, 4, 4), low=-3, high=3)),
    "arithmetic": lambda: (make_model(
        [node("Abs", ["x"], ["a"]), node("Add", ["a", "one"], ["a1"]), node("Sqrt", ["a1"], ["s"]),
         node("Log", ["a1"], ["l"]), node("Reciprocal", ["a1"], ["r"]), node("Pow", ["a1", "p"], ["w"]),
         node("Neg", ["x"], ["n"]), node("Exp", ["n"], ["e"]), node("Erf", ["x"], ["f"]),
         node("Sub", ["s", "l"], ["d1"]), node("Div", ["r", "w"], ["d2"]),
         node("Max", ["e", "f", "d1"], ["mx"]),
         node("Min", ["d2", "f"], ["mn"]), node("Mean", ["mx", "mn", "x"], ["y"])],
        {"one": _f(1.0), "p": _f(1.5)}, [None, 3, 4]), _x((2, 3, 4), low=-2, high=2)),
    "reductions_and_layer_normalization": lambda: (make_model(
        [node("ReduceSum", ["x", "ax"], ["s"], keepdims=1), node("ReduceMax", ["x"], ["m"], axes=[1]),
         node("ReduceMin", ["x"], ["n"], axes=[-1], keepdims=0),
         node("ReduceMean", ["x"], ["e"], axes=[1, 2]),
         node("LayerNormalization", ["x", "g", "b"], ["ln"], axis=-1, epsilon=1e-3),
         node("Add", ["ln", "s"], ["t"]), node("Mul", ["t", "m"], ["t2"]),
         node("Unsqueeze", ["n", "ax"], ["n2"]), node("Sub", ["t2", "n2"], ["t3"]),
         node("Unsqueeze", ["e", "ax2"], ["e2"]), node("Add", ["t3", "e2"], ["y"])],
        {"ax": _i(-1), "ax2": _i(1, 2), "g": _x((5,), 1), "b": _x((5,), 2)}, [None, 4, 5]), _x((2, 4, 5))),
    "slice_gather_transpose_expand_cast_and_constants": lambda: (make_model(
        [node("Slice", ["x", "st", "en", "axs", "stp"], ["sl"]),
         node("Gather", ["sl", "idx"], ["ga"], axis=1),
         node("Transpose", ["ga"], ["tr"], perm=[0, 2, 1]),
         node("Expand", ["tr", "eshape"], ["ex"]),
         node("Constant", [], ["k"], value=numpy_helper.from_array(_f(0.25))),
         node("Constant", [], ["k2"], value_float=2.0),
         node("Shape", ["ex"], ["shp"], start=1),
         node("ConstantOfShape", ["shp"], ["co"], value=numpy_helper.from_array(_f(0.5))),
         node("Cast", ["co"], ["cd"], to=TensorProto.DOUBLE),
         node("Cast", ["cd"], ["cf"], to=TensorProto.FLOAT),
         node("Mul", ["ex", "k"], ["m1"]), node("Mul", ["m1", "k2"], ["m2"]),
         node("Add", ["m2", "cf"], ["a"]),
         node("Identity", ["a"], ["id"]), node("Dropout", ["id"], ["y"])],
        {"st": _i(-1, 0), "en": _i(-2**63, 5), "axs": _i(1, 2), "stp": _i(-2, 2), "idx": _i(-1, 0),
         "eshape": _i(2, 1, 1, 1)}, [None, 5, 5], opset=15), _x((3, 5, 5))),
    "global_max_pool_and_batch_normalization_of_2d_input": lambda: (make_model(
        [node("GlobalMaxPool", ["x"], ["g"]), node("Flatten", ["g"], ["f"]),
         node("BatchNormalization", ["f", "s", "b", "m", "v"], ["y"])],
        {"s": _x((3,), 1), "b": _x((3,), 2), "m": _x((3,), 3), "v": _x((3,), 4, 0.5, 1.5)},
        [None, 3, 4, 4]), _x((2, 3, 4, 4))),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_small_graphs_match_onnx_runtime_and_finite_differences(case):
    model, x = CASES[case]()
    assert_matches_ort(model, x)
    assert_gradient_matches_finite_differences(model, x)


def test_a_shape_chain_follows_the_batch_inside_a_tf_function():
    model, _ = CASES["reshape_by_a_shape_gather_concat_chain"]()
    traced = tf.function(build_twin(model), reduce_retracing=True)
    for batch in (1, 7, 2):
        x = _x((batch, 2, 3, 4), seed=batch)
        np.testing.assert_allclose(traced(tf.constant(x)).numpy(), ort_run(model, x), atol=TOL)


def test_every_supported_operator_is_in_a_tested_graph(cnn):
    graphs = [cnn] + [CASES[c]()[0] for c in CASES]
    tested = {n.op_type for m in graphs for n in m.graph.node}
    assert set(SUPPORTED_OPS) - tested == set()


# === What the twin refuses, in one line ===

def test_an_unsupported_operator_is_a_one_line_error_naming_it_and_the_fallback():
    lstm = make_model(
        [node("LSTM", ["x", "w", "r"], ["seq"], hidden_size=4), node("Flatten", ["seq"], ["y"])],
        {"w": _x((1, 16, 3)), "r": _x((1, 16, 4))}, [5, None, 3])
    with pytest.raises(NfiError) as error:
        build_twin(lstm)
    message = str(error.value)
    assert "ONNX operator LSTM" in message and "--twin=PATH" in message and "\n" not in message
    conv3d = make_model([node("Conv", ["x", "w"], ["y"])], {"w": _x((2, 1, 2, 2, 2))}, [None, 1, 4, 4, 4])
    with pytest.raises(NfiError, match="ONNX operator Conv with 3 spatial dimensions .*--twin=PATH"):
        build_twin(conv3d)


def test_an_unused_output_does_not_need_supporting_and_outputs_are_chosen_by_name():
    nodes = [node("Relu", ["x"], ["y"]), node("TopK", ["x", "k"], ["values", "indices"], axis=-1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None),
         helper.make_tensor_value_info("values", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(_i(2), "k")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    x = _x((3, 4))
    np.testing.assert_array_equal(build_twin(model)(tf.constant(x)).numpy(), np.maximum(x, 0))
    with pytest.raises(NfiError, match="ONNX operator TopK"):
        build_twin(model, output="values")
    with pytest.raises(NfiError, match="no output 'z'"):
        build_twin(model, output="z")


def test_a_missing_or_unreadable_file_is_a_one_line_error(tmp_path):
    with pytest.raises(NfiError, match="no ONNX file"):
        build_twin(str(tmp_path / "missing.onnx"))
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(NfiError, match="not a loadable ONNX model"):
        build_twin(str(tmp_path / "bad.onnx"))


def test_the_docs_list_the_supported_operators():
    doc = open(os.path.join(REPO, "docs", "own_model.md")).read()
    section = doc.split("<!-- onnx-twin-operators -->", 1)[1].split("<!-- /onnx-twin-operators -->", 1)[0]
    listed = set(re.findall(r"`(\w+)`", section))
    assert listed == set(SUPPORTED_OPS)
