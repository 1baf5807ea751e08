"""White-box AutoAttack on ONNX classifiers nfi-tf did not write (issue 36): the automatic twin
as the default, hand-written twins in either layout, and the one-line refusals, through
`evaluate_classifier` and `python -m nfi_tf.evaluate --onnx`.

The files: an NCHW CNN written with onnx.helper (Conv with pads and groups, BatchNormalization,
MaxPool, GlobalAveragePool, Flatten, Gemm transB=1) carrying the weights of a Keras NHWC model
fitted on real MNIST, so the Keras model is its exact hand-written NHWC twin; and a Keras model
with an NCHW input, briefly PGD-trained on real MNIST and converted by tf2onnx."""

import os

import keras
import numpy as np
import onnx
import pytest
import tensorflow as tf
from helpers import run_cli
from onnx import TensorProto, helper, numpy_helper

import nfi_tf
from nfi_tf import data
from nfi_tf.config import make_config
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.report import EvalReport

SUITE = ["apgd_ce", "apgd_t", "fab_t", "square"]
FAST = dict(budget="cpu", apgd_steps=10, fab_steps=10, square_queries=100)
CLI_BUDGET = ["--dataset=mnist", "--budget=cpu", "--apgd_steps=5", "--fab_steps=5", "--square_queries=20"]
node = helper.make_node


@pytest.fixture(scope="module")
def mnist_train():
    images, labels = data.load_arrays(make_config("mnist").data, "train", 1024)
    return data.uint8_to_float(images), labels


# === An NCHW CNN written with onnx.helper, with a Keras NHWC model's weights ===

def _nhwc_keras_cnn():
    keras.utils.set_random_seed(0)
    inp = keras.Input((28, 28, 1))
    z = keras.layers.Conv2D(8, 3, padding="same")(inp)
    z = keras.layers.BatchNormalization(epsilon=1e-3)(z)
    z = keras.layers.ReLU()(z)
    z = keras.layers.Conv2D(8, 3, groups=2, activation="relu")(z)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(z)
    z = keras.layers.Conv2D(32, 6, activation="relu")(z)  # 1 x 1: GlobalAveragePool keeps it
    z = keras.layers.GlobalAveragePooling2D()(z)
    return keras.Model(inp, keras.layers.Dense(10)(z))


def _onnx_of(model, nhwc_input=False) -> onnx.ModelProto:
    """The same network as an ONNX graph written node by node, NCHW as ONNX defines it
    (`nhwc_input`: the file takes NHWC images and transposes them first, as tf2onnx writes)."""
    conv0, bn, _, conv1, _, conv2, conv3, _, dense = model.layers[1:]
    oihw = lambda k: np.transpose(k, (3, 2, 0, 1))  # noqa: E731  (Keras HWIO -> ONNX OIHW)
    gamma, beta, mean, var = bn.get_weights()
    inits = {"w0": oihw(conv0.kernel.numpy()), "b0": conv0.bias.numpy(), "gamma": gamma, "beta": beta,
             "mean": mean, "var": var, "w1": oihw(conv1.kernel.numpy()), "b1": conv1.bias.numpy(),
             "w2": oihw(conv2.kernel.numpy()), "b2": conv2.bias.numpy(),
             "w3": oihw(conv3.kernel.numpy()), "b3": conv3.bias.numpy(),
             "fc": dense.kernel.numpy().T, "fcb": dense.bias.numpy()}
    nodes = [
        node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]) if nhwc_input
        else node("Identity", ["x"], ["xt"]),
        node("Conv", ["xt", "w0", "b0"], ["c0"], pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        node("BatchNormalization", ["c0", "gamma", "beta", "mean", "var"], ["n0"], epsilon=1e-3),
        node("Relu", ["n0"], ["r0"]),
        node("Conv", ["r0", "w1", "b1"], ["c1"], group=2),
        node("Relu", ["c1"], ["r1"]),
        node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2]),
        node("Conv", ["p1", "w2", "b2"], ["c2"], strides=[2, 2]),
        node("Relu", ["c2"], ["r2"]),
        node("Conv", ["r2", "w3", "b3"], ["c3"]),
        node("Relu", ["c3"], ["r3"]),
        node("GlobalAveragePool", ["r3"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("Gemm", ["f", "fc", "fcb"], ["logits"], transB=1),
    ]
    return _model(nodes, inits, ("N", 28, 28, 1) if nhwc_input else ("N", 1, 28, 28))


def _model(nodes, inits, in_shape=("N", 1, 28, 28)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(in_shape))],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)


@pytest.fixture(scope="module")
def helper_cnn(mnist_train, tmp_path_factory):
    """(path of the onnx.helper file, its Keras NHWC twin, path of that twin's .keras file)."""
    x, y = mnist_train
    model = _nhwc_keras_cnn()
    _train(model, x, y, steps=0, epochs=3)
    folder = tmp_path_factory.mktemp("helper_cnn")
    path, keras_path = str(folder / "cnn.onnx"), str(folder / "nhwc_twin.keras")
    onnx.save(_onnx_of(model), path)
    model.save(keras_path)
    return path, model, keras_path


def test_an_onnx_helper_cnn_is_attacked_white_box_through_its_automatic_twin(helper_cnn, mnist_test_arrays,
                                                                             tmp_path):
    path, model, _ = helper_cnn
    x, y = mnist_test_arrays[0][:48], mnist_test_arrays[1][:48]
    r = nfi_tf.evaluate_classifier(path, x, y, epsilon=0.1, seed=1, out_dir=str(tmp_path), **FAST)
    keras_clean = np.mean(np.argmax(model.predict(x, verbose=0), 1) == y)
    assert r.report.table["logits"]["clean"] == pytest.approx(keras_clean) and keras_clean > 0.5
    assert list(r.report.autoattack_cumulative["logits"]) == SUITE  # not Square alone
    assert {"apgd_ce@logits", "apgd_t@logits", "fab_t@logits"} <= set(r.correct["logits"])
    assert r.report.table["logits"]["autoattack"] < r.report.table["logits"]["clean"]
    described = EvalReport.load(os.path.join(str(tmp_path), "eval.json")).settings.model
    assert "ONNX file cnn.onnx (NCHW input" in described
    assert "re-scores every adversarial image" in described
    assert "automatic twin built from the ONNX graph (14 nodes, ops: BatchNormalization, Conv" in described
    assert "twin checked against ONNX Runtime on 48 images: max |diff|" in described
    assert "argmax agreement 100%" in described
    assert "automatic twin" in open(os.path.join(str(tmp_path), "eval.md")).read()


def test_a_hand_written_nhwc_twin_of_an_nchw_file_is_given_nhwc_images(helper_cnn, mnist_test_arrays):
    path, model, keras_path = helper_cnn
    x, y = mnist_test_arrays[0][:16], mnist_test_arrays[1][:16]
    kw = dict(epsilon=0.1, attacks=("clean", "apgd_ce"), seed=1, **FAST)
    for twin in (model, keras_path):
        r = nfi_tf.evaluate_classifier(path, x, y, twin=twin, **kw)
        assert "(NHWC, the file's NCHW images transposed for it)" in r.report.settings.model
        assert "apgd_ce@logits" in r.correct["logits"]
    assert "user twin nhwc_twin.keras (NHWC" in r.report.settings.model
    # A function that declares no input shape is tried in the file's layout: this one takes
    # NHWC, and fails in one line saying what the file takes.
    with pytest.raises(NfiError) as error:
        nfi_tf.evaluate_classifier(path, x, y, twin=lambda z: model(z), **kw)
    message = str(error.value)
    assert "\n" not in message
    assert "the twin function in memory failed on NCHW images (N, 1, 28, 28)" in message
    assert "cnn.onnx takes NCHW images (N, 1, 28, 28): give a twin that takes NCHW images (N, 1, 28, 28) " \
           "or NHWC images (N, 28, 28, 1)" in message
    # Square alone, when asked for.
    only_square = nfi_tf.evaluate_classifier(path, x, y, twin="none", **{**kw, "attacks": None})
    assert list(only_square.report.autoattack_cumulative["logits"]) == ["square"]
    assert any("gradient attacks skipped" in n for n in only_square.report.notes)
    assert "no twin (twin=none)" in only_square.report.settings.model


def test_an_nchw_twin_of_an_nhwc_file_and_a_twin_of_other_images_are_refused_in_one_line(helper_cnn,
                                                                                      mnist_test_arrays,
                                                                                      tmp_path):
    _, model, _ = helper_cnn
    x, y = mnist_test_arrays[0][:8], mnist_test_arrays[1][:8]
    nhwc_path = str(tmp_path / "nhwc.onnx")
    onnx.save(_onnx_of(model, nhwc_input=True), nhwc_path)
    assert "user twin Functional in memory (NHWC, the file's layout)" in nfi_tf.evaluate_classifier(
        nhwc_path, x, y, twin=model, epsilon=0.1, attacks=("clean",), **FAST).report.settings.model
    nchw_twin = _nchw_keras_cnn()
    with pytest.raises(NfiError) as error:
        nfi_tf.evaluate_classifier(nhwc_path, x, y, twin=nchw_twin, epsilon=0.1, **FAST)
    assert str(error.value) == ("the twin Functional in memory takes NCHW images but nhwc.onnx takes NHWC: "
                                "give a twin that takes NHWC images (N, 28, 28, 1). Received: twin input "
                                "shape=(None, 1, 28, 28)")
    cifar_sized = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    with pytest.raises(NfiError, match=r"takes neither layout of these images; nhwc.onnx takes NHWC images "
                                       r"\(N, 28, 28, 1\).*Received: twin input shape=\(None, 32, 32, 3\)$"):
        nfi_tf.evaluate_classifier(nhwc_path, x, y, twin=cifar_sized, epsilon=0.1, **FAST)
    with pytest.raises(NfiError, match="no Keras twin at"):
        nfi_tf.evaluate_classifier(nhwc_path, x, y, twin=str(tmp_path / "missing.keras"), epsilon=0.1, **FAST)


# === The standard suite: the automatic twin against an exact hand-written one ===

def _nchw_keras_cnn():
    keras.utils.set_random_seed(2)
    inp = keras.Input((1, 28, 28))  # channels first, as a model exported from another framework
    z = keras.layers.Permute((2, 3, 1))(inp)
    z = keras.layers.Conv2D(8, 3, activation="relu")(z)
    z = keras.layers.MaxPooling2D()(z)
    z = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(z)
    z = keras.layers.Flatten()(z)
    return keras.Model(inp, keras.layers.Dense(10)(z))


def _train(model, x, y, epsilon=0.1, steps=3, epochs=3, batch=32):
    """Madry et al.'s training, briefly: each batch replaced by its PGD-`steps` adversarial
    images (steps=0: plain training). A loop of our own: Keras' fit compiles for longer."""
    optimizer = keras.optimizers.Adam(2e-3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    variables = model.trainable_variables

    @tf.function
    def step(xb, yb, start):
        adv = tf.clip_by_value(xb + start, 0.0, 1.0)
        for _ in range(steps):
            with tf.GradientTape() as tape:
                tape.watch(adv)
                loss = loss_fn(yb, model(adv, training=True))
            adv = adv + (2.5 * epsilon / steps) * tf.sign(tape.gradient(loss, adv))
            adv = tf.clip_by_value(tf.clip_by_value(adv, xb - epsilon, xb + epsilon), 0.0, 1.0)
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(adv, training=True))
        optimizer.apply(tape.gradient(loss, variables), variables)

    rng = np.random.default_rng(0)
    for _ in range(epochs):
        for i in range(0, len(x) - batch + 1, batch):
            start = rng.uniform(-epsilon, epsilon, x[i:i + batch].shape).astype(np.float32) * (steps > 0)
            step(tf.constant(x[i:i + batch]), tf.constant(y[i:i + batch]), tf.constant(start))


def test_the_standard_suite_through_the_automatic_twin_agrees_with_an_exact_hand_written_twin(
        mnist_train, mnist_test_arrays, tmp_path):
    import tf2onnx

    model = _nchw_keras_cnn()
    train_x, train_y = mnist_train
    _train(model, np.transpose(train_x, (0, 3, 1, 2)), train_y)
    path = str(tmp_path / "pgd_trained.onnx")
    tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((None, 1, 28, 28), tf.float32),),
                               opset=13, output_path=path)
    x, y = mnist_test_arrays[0][:48], mnist_test_arrays[1][:48]
    kw = dict(epsilon=0.1, seed=4, **FAST)
    auto = nfi_tf.evaluate_classifier(path, x, y, **kw)
    by_hand = nfi_tf.evaluate_classifier(path, x, y, twin=model, **kw)
    assert "automatic twin" in auto.report.settings.model
    assert "user twin Functional in memory (NCHW, the file's layout)" in by_hand.report.settings.model
    a, b = auto.report.autoattack_cumulative["logits"], by_hand.report.autoattack_cumulative["logits"]
    assert list(a) == list(b) == SUITE
    assert auto.report.table["logits"]["clean"] == by_hand.report.table["logits"]["clean"] > 0.5
    assert auto.report.table["logits"]["autoattack"] > 0  # the PGD training left something to attack
    for attack in SUITE:  # the robust accuracy after each attack of the suite, within one image
        assert abs(a[attack] - b[attack]) * len(x) <= 1 + 1e-6, (attack, a, b)
    for row in ("autoattack", "worst_case"):
        gap = abs(auto.report.table["logits"][row] - by_hand.report.table["logits"][row])
        assert gap * len(x) <= 1 + 1e-6, (row, gap)


# === The command line: one line, exit 2 ===

def _one_error_line(out) -> str:
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-3000:]
    lines = [ln for ln in out.stderr.splitlines() if "error" in ln.lower()]
    assert len(lines) == 1, out.stderr[-3000:]
    return lines[0]


def test_the_command_line_refuses_an_unsupported_operator_in_one_line_and_takes_an_nhwc_twin(
        helper_cnn, tmp_path):
    rng = np.random.default_rng(0)
    unsupported = _model(
        [node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), node("ThresholdedRelu", ["c"], ["t"], alpha=0.1),
         node("GlobalAveragePool", ["t"], ["g"]), node("Flatten", ["g"], ["f"]),
         node("Gemm", ["f", "fc"], ["logits"], transB=1)],
        {"w": rng.normal(size=(4, 1, 3, 3)), "fc": rng.normal(size=(10, 4))})
    bad_path = str(tmp_path / "thresholded.onnx")
    onnx.save(unsupported, bad_path)
    out = run_cli("nfi_tf.evaluate", f"--onnx={bad_path}", "--eval_examples=8", *CLI_BUDGET)
    line = _one_error_line(out)
    assert "does not support ONNX operator ThresholdedRelu" in line and "--twin=PATH" in line
    assert "--twin=none" in line
    # --twin=none: Square alone runs on the same file.
    reports = tmp_path / "square_only"
    out = run_cli("nfi_tf.evaluate", f"--onnx={bad_path}", "--twin=none", f"--model_dir={reports}",
                  "--eval_examples=8", *CLI_BUDGET)
    assert out.returncode == 0, out.stderr[-3000:]
    assert list(EvalReport.load(str(reports / "eval.json")).autoattack_cumulative["logits"]) == ["square"]
    # The natural Keras twin (NHWC) of an NCHW file is given NHWC images.
    path, _, keras_path = helper_cnn
    reports = tmp_path / "nhwc_twin"
    out = run_cli("nfi_tf.evaluate", f"--onnx={path}", f"--twin={keras_path}", f"--model_dir={reports}",
                  "--eval_examples=16", *CLI_BUDGET)
    assert out.returncode == 0, out.stderr[-3000:]
    report = EvalReport.load(str(reports / "eval.json"))
    described = report.settings.model
    assert "user twin nhwc_twin.keras (NHWC, the file's NCHW images transposed for it)" in described
    assert list(report.autoattack_cumulative["logits"]) == SUITE


def test_the_command_line_refuses_an_nchw_twin_of_an_nhwc_file_in_one_line(helper_cnn, tmp_path):
    _, model, _ = helper_cnn
    nhwc_path, twin_path = str(tmp_path / "nhwc.onnx"), str(tmp_path / "nchw_twin.keras")
    onnx.save(_onnx_of(model, nhwc_input=True), nhwc_path)
    _nchw_keras_cnn().save(twin_path)
    out = run_cli("nfi_tf.evaluate", f"--onnx={nhwc_path}", f"--twin={twin_path}", "--eval_examples=8",
                  *CLI_BUDGET)
    line = _one_error_line(out)
    assert "the twin nchw_twin.keras takes NCHW images but nhwc.onnx takes NHWC: give a twin that takes " \
           "NHWC images (N, 28, 28, 1)" in line
