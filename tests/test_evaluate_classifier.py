"""`nfi_tf.evaluate_classifier`: the attack registry on models nfi-tf did not train (a plain Keras
CNN fitted with `model.fit` on real CIFAR-10, an ONNX file with an NCHW input, an nfi model
given as a path), with the typed report it returns."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

import nfi_tf
from nfi_tf import data
from nfi_tf.config import make_config
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.config import EvalConfig
from nfi_tf.evaluation.report import EvalReport
from nfi_tf.evaluation.runner import evaluate_model

FAST = dict(apgd_steps=10, fab_steps=10, square_queries=100)  # on top of the "cpu" budget


@pytest.fixture(scope="module")
def cifar():
    cfg = make_config("cifar10").data
    train_x, train_y = data.load_arrays(cfg, "train", 2048)
    test_x, test_y = data.load_arrays(cfg, "test", 128)
    return data.uint8_to_float(train_x), train_y, data.uint8_to_float(test_x), test_y


@pytest.fixture(scope="module")
def plain_cifar_model(cifar):
    """A plain (not adversarially trained) CNN, trained the Keras way."""
    keras.utils.set_random_seed(0)
    x, y, _, _ = cifar
    model = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(16, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Conv2D(32, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=5, batch_size=64, verbose=0)
    return model


def test_a_plain_cifar_classifier_is_not_robust_and_its_clean_accuracy_is_kept(plain_cifar_model, cifar,
                                                                                tmp_path):
    _, _, x, y = cifar
    r = nfi_tf.evaluate_classifier(plain_cifar_model, x, y, epsilon=8 / 255, budget="cpu",
                                   out_dir=str(tmp_path), **FAST)
    clean = float(np.mean(np.argmax(plain_cifar_model.predict(x, verbose=0), 1) == y))
    table = r.report.table["logits"]
    assert clean > 0.2  # it did learn something (10 classes: chance is 0.1)
    assert table["clean"] == pytest.approx(clean)  # the evaluation sees the model as it is
    # Near 0%: a briefly trained CNN keeps a handful of low-margin images (6 of 128 here, which
    # CleverHans' PGD-200 does not break either; checked below on every image).
    assert table["autoattack"] <= 0.2 * clean and table["worst_case"] <= table["autoattack"]
    from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent

    independent = projected_gradient_descent(plain_cifar_model, tf.constant(x), 8 / 255, 1 / 255, 100, np.inf,
                                             y=tf.constant(y), rand_init=True, sanity_checks=False)
    independent_acc = float(np.mean(np.argmax(plain_cifar_model(independent).numpy(), 1) == y))
    assert table["worst_case"] <= independent_acc  # no independent attack beats the reported number
    assert r.report.columns == ["clean", "autoattack", "worst_case"]
    assert [c for c in r.report.autoattack_cumulative["logits"]] == ["apgd_ce", "apgd_t", "fab_t", "square"]
    # AutoAttack's way: an image APGD-CE broke is not attacked again (its later input is x itself).
    corr = r.correct["logits"]
    broken = ~(corr["clean"] & corr["apgd_ce@logits"])
    np.testing.assert_array_equal(corr["square@logits"][broken], corr["clean"][broken])
    assert EvalReport.load(os.path.join(str(tmp_path), "eval.json")).table == r.report.table
    assert "Below AutoAttack's standard budget" in open(os.path.join(str(tmp_path), "eval.md")).read()


def test_per_attack_columns_run_every_attack_on_every_image(plain_cifar_model, cifar):
    _, _, x, y = cifar
    r = nfi_tf.evaluate_classifier(plain_cifar_model, x[:32], y[:32], epsilon=8 / 255, budget="cpu",
                                   attacks=("clean", "apgd_ce", "square"), **FAST)
    assert r.report.columns == ["clean", "apgd_ce", "square", "worst_case"]
    assert not r.report.suite_keys
    assert r.report.table["logits"]["apgd_ce"] < r.report.table["logits"]["clean"]


def test_an_input_transform_wraps_a_model_that_expects_other_pixels(plain_cifar_model, cifar):
    _, _, x, y = cifar
    # The same network behind a layer that takes [0, 255] pixels: wrapped with input_scale=255 it
    # is the same function of x in [0, 1], so the same seed gives the same numbers.
    inp = keras.Input((32, 32, 3))
    on_255 = keras.Model(inp, plain_cifar_model(keras.layers.Rescaling(1 / 255)(inp)))
    kw = dict(epsilon=8 / 255, budget="cpu", attacks=("clean", "apgd_ce"), seed=1, **FAST)
    a = nfi_tf.evaluate_classifier(plain_cifar_model, x[:32], y[:32], **kw)
    b = nfi_tf.evaluate_classifier(on_255, x[:32], y[:32], input_scale=255, **kw)
    assert b.report.table["logits"] == pytest.approx(a.report.table["logits"])
    assert "x * 255 + 0" in b.report.settings.model


def test_bad_inputs_are_one_line_errors(plain_cifar_model, cifar):
    _, _, x, y = cifar
    cases = [(x * 255, y, "must be in \\[0, 1\\]"), (x[0], y, "must be \\[N, height"),
             (x, y[:3], "labels must be \\[N\\]"), (x, y + 10, "labels must be in \\[0, 9\\]"),
             (np.where(x > 0.5, np.nan, x), y, "NaN")]
    for images, labels, message in cases:
        with pytest.raises(NfiError, match=message):
            nfi_tf.evaluate_classifier(plain_cifar_model, images, labels, epsilon=8 / 255)
    with pytest.raises(NfiError, match="Received: norm=l1"):
        nfi_tf.evaluate_classifier(plain_cifar_model, x, y, epsilon=8 / 255, norm="l1")
    with pytest.raises(NfiError, match="model must be"):
        nfi_tf.evaluate_classifier("/nonexistent/model.bin", x, y, epsilon=8 / 255)


def test_l2_runs_the_whole_autoattack_suite(plain_cifar_model, cifar, tmp_path):
    _, _, x, y = cifar
    r = nfi_tf.evaluate_classifier(plain_cifar_model, x[:32], y[:32], epsilon=0.5, norm="l2",
                                   budget="cpu", out_dir=str(tmp_path), save_adversarial=True, **FAST)
    # All four of AutoAttack's attacks have an L2 version: nothing is skipped.
    assert [c for c in r.report.autoattack_cumulative["logits"]] == ["apgd_ce", "apgd_t", "fab_t", "square"]
    assert not any("skipped" in n for n in r.report.notes), r.report.notes
    assert r.report.settings.norm == "l2"
    assert r.report.settings.entry("fab_t")["norm"] == r.report.settings.entry("square")["norm"] == "l2"
    assert max(r.max_linf.values()) <= 0.5 + 1e-6  # |delta|_inf <= |delta|_2 <= eps
    worst = np.load(os.path.join(str(tmp_path), "eval.npz"))["adversarial|logits"]
    l2 = np.linalg.norm((worst - x[:32]).reshape(32, -1).astype(np.float64), axis=1)
    assert l2.max() <= 0.5 + 1e-5  # every example's worst input is in the L2 ball
    assert r.report.table["logits"]["autoattack"] < r.report.table["logits"]["clean"]
    md = open(os.path.join(str(tmp_path), "eval.md")).read()
    assert "L2 eps = 0.5" in md and "(L2 projections)" in md and "L2 pseudo-gaussian windows" in md


def _nchw_mnist_cnn():
    keras.utils.set_random_seed(1)
    inp = keras.Input((1, 28, 28))  # channels first, as a PyTorch model exported to ONNX takes
    z = keras.layers.Permute((2, 3, 1))(inp)
    z = keras.layers.Conv2D(8, 3, activation="relu")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    return keras.Model(inp, keras.layers.Dense(10)(z))


def test_an_onnx_file_is_scored_by_onnx_runtime_and_its_twin_checked(tmp_path, mnist_test_arrays):
    import tf2onnx

    model = _nchw_mnist_cnn()
    path = str(tmp_path / "plain.onnx")
    spec = (tf.TensorSpec((None, 1, 28, 28), tf.float32, name="input"),)
    tf2onnx.convert.from_keras(model, input_signature=spec, output_path=path)
    x, y = mnist_test_arrays[0][:48], mnist_test_arrays[1][:48]
    kw = dict(epsilon=0.3, budget="cpu", seed=2, **FAST)
    r = nfi_tf.evaluate_classifier(path, x, y, twin=model, **kw)
    described = r.report.settings.model
    assert "NCHW input" in described and "twin checked against ONNX Runtime on 48 images" in described
    assert [c for c in r.report.autoattack_cumulative["logits"]] == ["apgd_ce", "apgd_t", "fab_t", "square"]
    keras_clean = np.mean(np.argmax(model(np.transpose(x, (0, 3, 1, 2))).numpy(), 1) == y)
    assert r.report.table["logits"]["clean"] == pytest.approx(keras_clean)
    # twin="none" (the default builds the automatic twin): only the gradient-free attack, through
    # ONNX Runtime, and the report says why.
    only_square = nfi_tf.evaluate_classifier(path, x, y, twin="none", **kw)
    assert list(only_square.report.autoattack_cumulative["logits"]) == ["square"]
    assert any("gradient attacks skipped" in n for n in only_square.report.notes)
    # A twin that is another function is refused, never trusted.
    with pytest.raises(NfiError, match="twin disagrees with ONNX Runtime"):
        nfi_tf.evaluate_classifier(path, x, y, twin=_nchw_mnist_cnn_other(), **kw)


def _nchw_mnist_cnn_other():
    keras.utils.set_random_seed(7)
    inp = keras.Input((1, 28, 28))
    z = keras.layers.Permute((2, 3, 1))(inp)
    z = keras.layers.Conv2D(8, 3, activation="relu")(z)
    z = keras.layers.GlobalAveragePooling2D()(z)
    return keras.Model(inp, keras.layers.Dense(10)(z))


def test_an_nfi_model_keeps_its_route_aware_attacks_and_agrees_with_the_cli_runner(trained_mnist_dir,
                                                                                  tmp_path):
    model_dir = str(tmp_path / "nfi")
    shutil.copytree(trained_mnist_dir, model_dir)
    small = dict(step_size=0.1, pgd_steps=5, apgd_steps=5, apgd_targets=2, fab_steps=5, fab_targets=2,
                 square_queries=40, route_steps=5, route_targets=1, route_temperatures=(1.0,),
                 batch_size=64)
    attacks = ("clean", "pgd", "autoattack", "route_aware")
    a = evaluate_model(EvalConfig(model_dir=model_dir, eval_examples=64, attacks=attacks, seed=3,
                                  verbose=0, **small), log=lambda m: None)
    trained = nfi_tf.load_trained(model_dir)
    images, labels = data.load_arrays(trained.config.data, "test", 64)
    b = nfi_tf.evaluate_classifier(model_dir, images, labels, epsilon=0.3, attacks=attacks, seed=3,
                                   **small)
    assert b.report.method == "nfi" and b.report.rows == a.report.rows
    assert b.report.table == a.report.table  # same images, budget and seed: the same numbers
    assert b.report.routed_adaptive is not None
    default = nfi_tf.evaluate_classifier(trained.classifier, images[:16], labels[:16], epsilon=0.3,
                                         budget="cpu", **{**small, "batch_size": 16})
    assert "route_aware" in default.report.columns  # a routed model keeps its route-aware attacks


def test_the_command_line_evaluates_a_keras_file_and_an_onnx_file(tmp_path, mnist_test_arrays):
    import tf2onnx
    from helpers import run_cli

    model = _nchw_mnist_cnn()
    keras_path, onnx_path = str(tmp_path / "nchw.keras"), str(tmp_path / "nchw.onnx")
    model.save(keras_path)
    tf2onnx.convert.from_keras(model, input_signature=(tf.TensorSpec((None, 1, 28, 28), tf.float32),),
                               output_path=onnx_path)
    budget = ["--dataset=mnist", "--eval_examples=32", "--budget=cpu", "--apgd_steps=5", "--fab_steps=5",
              "--square_queries=50"]
    # The Keras file takes NCHW too: only the ONNX file's layout is detected, so a Keras model
    # must take NHWC. Here the ONNX file with the Keras file as its twin.
    out = run_cli("nfi_tf.evaluate", f"--onnx={onnx_path}", f"--twin={keras_path}",
                  f"--model_dir={tmp_path / 'reports'}", *budget)
    assert out.returncode == 0, out.stderr[-2000:]
    report = EvalReport.load(str(tmp_path / "reports" / "eval.json"))
    assert report.method == "classifier" and report.settings.entry("apgd")["steps"] == 5  # flag over budget
    assert report.settings.entry("square")["queries"] == 50 and report.settings.entry("fab_t")["steps"] == 5
    assert report.settings.entry("apgd")["targets"] == 3  # the cpu budget where no flag is given
    assert "twin checked against ONNX Runtime on 32 images" in report.settings.model
    assert "Model: ONNX file nchw.onnx (NCHW input" in open(tmp_path / "reports" / "eval.md").read()
    missing = run_cli("nfi_tf.evaluate", "--eval_examples=8")
    lines = [ln for ln in missing.stderr.splitlines() if "error" in ln.lower()]
    assert missing.returncode == 2 and len(lines) == 1 and "give --model_dir" in lines[0], missing.stderr
    no_data = run_cli("nfi_tf.evaluate", f"--onnx={onnx_path}")
    assert no_data.returncode == 2 and "--dataset is required" in no_data.stderr


@pytest.mark.parametrize("doc", ["README.md", os.path.join("docs", "own_model.md")])
def test_the_docs_example_runs(doc, tmp_path, monkeypatch):
    """The "Evaluate any classifier" example of the README and docs/own_model.md, as written."""
    from helpers import REPO

    readme = open(os.path.join(REPO, doc)).read()
    block = readme.split("<!-- evaluate-classifier -->", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(str(tmp_path / "my_classifier.keras"))
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace('budget="cpu"', 'budget="cpu", apgd_steps=5, square_queries=20'),
                 doc, "exec"), {})
    report = EvalReport.load(str(tmp_path / "my_eval" / "eval.json"))
    assert report.examples == 200 and report.method == "classifier"
    assert report.table["logits"]["worst_case"] <= report.table["logits"]["clean"]
