"""Each extension point is one module's worth of code and one registration line (issue 34).

Four toys live in this file only — an attack, a backbone, a data source and an export
precision — each registered with one line inside a fixture (and unregistered after it, so no
other test sees it). Each is then what the built-ins are: an `--attacks` value the evaluation
plans, runs, tabulates and describes; a `--backbone` value validated by its own rule and trained;
a `--dataset` value with a derived preset; a `--precision` value converted, checked, served and
reported. The last test runs them together: the toy backbone trained on the toy data, exported
in the toy precision, and evaluated with the toy attack. docs/conventions.md gives the recipes.
"""

import dataclasses
import json
import os
import shutil

import keras
import numpy as np
import onnx
import pytest
from absl import flags
from keras import layers
from onnx import numpy_helper

import nfi_tf
from export import precisions
from export.config import ExportConfig, SessionConfig
from export.exporter import ONNX_FILE, export_model
from export.precisions import Precision
from export.serve import Predictor
from flags import export as export_flags
from nfi_tf import backbones, data, outputs, serving_examples
from nfi_tf.config import Config, make_config
from nfi_tf.datasets import registry
from nfi_tf.datasets.array_source import ArraySource, Rows
from nfi_tf.errors import NfiError, check
from nfi_tf.evaluation import suite

# === An attack (what a new attack module holds) ===

ATTACK = "toy_fgsm"


class FGSM:
    """One signed-gradient step of eps on cross-entropy (Goodfellow et al.), judged by the served
    output: on the routed model it keeps x where the step does not fool the hard switch."""

    def __init__(self, budgets, threat):
        self.threat = threat

    def run(self, x, y, seed, target):
        import tensorflow as tf

        del seed  # it draws nothing
        z = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(z)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.constant(y), target.logits(z))
        step = self.threat.project(z + self.threat.epsilon * tf.sign(tape.gradient(loss, z)), z)
        fooled = np.argmax(np.asarray(target.judge_logits(step)), 1) != y
        return np.where(fooled[:, None, None, None], step.numpy(), x)


ATTACK_SPEC = suite.AttackSpec(
    name=ATTACK, title="FGSM", build=FGSM, settings=lambda budgets, threat: {"epsilon": threat.epsilon},
    note=lambda entry: f"FGSM: one step of eps {entry['epsilon']:g} on cross-entropy")


@pytest.fixture
def toy_attack():
    with suite.registered(ATTACK_SPEC):  # the one registration line
        yield ATTACK_SPEC
    assert ATTACK not in {s.name for s in suite.specs()}  # gone again for every other test


# --- the attack's proof ---

def test_a_registered_attack_is_an_attacks_value_and_runs_in_the_evaluation(toy_attack,
                                                                           trained_mnist_dir, tmp_path):
    from nfi_tf.evaluation.config import EvalConfig, parse_attacks
    from nfi_tf.evaluation.report import EvalReport
    from nfi_tf.evaluation.runner import evaluate_model

    assert parse_attacks(f"clean,{ATTACK},pgd") == ("clean", "pgd", ATTACK)  # registry order
    model_dir = str(tmp_path / "model")
    os.makedirs(model_dir)
    for f in ("config.json", "model.keras"):
        shutil.copy(os.path.join(trained_mnist_dir, f), os.path.join(model_dir, f))
    r = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", ATTACK), eval_examples=32,
                                  batch_size=32, verbose=0), log=lambda m: None)
    table = r.report.table
    assert r.report.columns == ["clean", ATTACK, "worst_case"]
    # On the routed model it runs through each switch, like every gradient attack.
    assert {str(k) for k in r.correct[outputs.ROUTED] if k.family == ATTACK} == {
        f"{ATTACK}@{row}" for row in outputs.SCORED_NFI if row != outputs.ROUTED} | {
        f"{ATTACK}@routed:{s}" for s in ("hard", "st", "soft")}
    assert table[outputs.TRADEOFF][ATTACK] < table[outputs.TRADEOFF]["clean"]  # one step bites
    assert max(r.max_linf.values()) <= 0.3 + 1e-6
    saved = EvalReport.load(os.path.join(model_dir, "eval.json"))
    assert saved.settings.entry(ATTACK) == {"epsilon": 0.3}
    assert "- FGSM: one step of eps 0.3 on cross-entropy" in open(os.path.join(model_dir, "eval.md")).read()


def test_an_unregistered_attack_is_unknown():
    from nfi_tf.evaluation.config import parse_attacks

    with pytest.raises(NfiError, match=f"Received: attacks={ATTACK}"):
        parse_attacks(ATTACK)


# === A backbone (what a new backbone module holds) ===

BACKBONE, FEATURE_DIMS = "toy_cnn", 32


@keras.saving.register_keras_serializable(package="nfi_tf_tests")
class ToyBackbone(keras.Model):
    """conv(width, 3x3, stride 2) - conv(2 width) - global average pooling - dense 32."""

    def __init__(self, input_shape=(28, 28, 1), width=4, **kwargs):
        image = keras.Input(shape=tuple(input_shape), name="image")
        x = layers.Conv2D(width, 3, strides=2, activation="relu", name="conv1")(image)
        x = layers.Conv2D(2 * width, 3, strides=2, activation="relu", name="conv2")(x)
        x = layers.GlobalAveragePooling2D(name="pool")(x)
        feature = layers.Dense(FEATURE_DIMS, activation="relu", name="feature")(x)
        super().__init__(inputs=image, outputs=feature, **kwargs)
        self.image_shape, self.width = tuple(input_shape), width

    def get_config(self):
        return {"input_shape": list(self.image_shape), "width": self.width, "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def check_toy(model) -> None:
    """The toy's own rule: --width is its first convolution's filters, kept small."""
    check(1 <= model.width <= 16,
          f"toy_cnn width (its filters) must be in [1, 16]. Received: width={model.width}")


TOY_BACKBONE = backbones.BackboneSpec(
    name=BACKBONE, build=lambda model, shape: ToyBackbone(shape, model.width, name="backbone"),
    feature_dims=lambda model: FEATURE_DIMS, validate=check_toy, preset={"width": 4})


@pytest.fixture
def toy_backbone():
    with backbones.registered(TOY_BACKBONE):  # the one registration line
        yield TOY_BACKBONE
    assert backbones.lookup(BACKBONE) is None  # gone again for every other test


# --- the backbone's proof ---

def test_a_registered_backbone_is_a_backbone_value(toy_backbone):
    config = make_config("mnist", {"model": {"backbone": BACKBONE, "robust_dims": 16}})
    m = config.model
    # Its own preset (width 4), its D for the robust_dims range; the config.json round trip.
    assert (m.backbone, m.width, m.robust_dims) == (BACKBONE, 4, 16)
    assert backbones.feature_dims(m) == FEATURE_DIMS
    assert make_config("mnist", {"model": {"backbone": BACKBONE}}).model.robust_dims == 16  # D // 2
    assert Config.from_dict(config.to_dict()) == config
    with pytest.raises(NfiError) as e:  # its own validation, one line
        make_config("mnist", {"model": {"backbone": BACKBONE, "width": 64}})
    assert str(e.value) == "toy_cnn width (its filters) must be in [1, 16]. Received: width=64"
    with pytest.raises(NfiError, match=r"robust_dims must be in \[1, 31\] for the toy_cnn feature"):
        make_config("mnist", {"model": {"backbone": BACKBONE, "robust_dims": 32}})
    with pytest.raises(NfiError, match="'toy_cnn'.*Received: backbone='toy_cn'"):
        make_config("mnist", {"model": {"backbone": "toy_cn"}})  # the choices name it
    with pytest.raises(NfiError, match="registered already"):
        backbones.register(TOY_BACKBONE)


def test_an_unregistered_backbone_is_unknown():
    with pytest.raises(NfiError, match="backbone must be one of"):
        make_config("mnist", {"model": {"backbone": BACKBONE}})


def test_it_trains_end_to_end_and_reloads(toy_backbone, tmp_path):
    from nfi_tf.training import train_and_evaluate

    config = make_config("mnist", {
        "data": {"train_examples": 256, "eval_examples": 64},
        "model": {"backbone": BACKBONE, "robust_dims": 16},
        "attack": {"num_steps": 1}, "eval_attack": {"num_steps": 1},
        "train": {"epochs": 1, "batch_size": 64, "lr_decay_epochs": ()}})
    model_dir = str(tmp_path / "toy")
    summary = train_and_evaluate(config, model_dir, verbose=0)
    assert summary["finished"] and summary["steps"] == 4 and summary["backbone"] == BACKBONE
    assert Config.load(os.path.join(model_dir, "config.json")) == config

    loaded = nfi_tf.load_model(model_dir)  # the toy's Keras class is registered above
    assert isinstance(loaded.get_layer("backbone"), ToyBackbone)
    assert loaded.get_layer(outputs.HEADS_LAYER).robust_dims == 16
    x, y = data.load_arrays(config.data, "test", 64)  # the per-epoch evaluation's images
    x = data.uint8_to_float(x)
    out = loaded(x, training=False)
    assert out[outputs.FEATURE].shape == (64, FEATURE_DIMS)
    # Same outputs as the trained model: its clean accuracies at the end of training, to the image.
    final = json.load(open(os.path.join(model_dir, "history.json")))[-1]["test"]
    for name in (outputs.ROUTED, outputs.TRADEOFF):
        accuracy = np.mean(np.argmax(np.asarray(out[name]), axis=-1) == y)
        assert accuracy == pytest.approx(final[f"clean_{name}"], abs=1e-6), name
    # And the spec rebuilds the same network from config.json: with the weights, the same numbers.
    rebuilt = nfi_tf.build_classifier(config.model, x.shape[1:], 10)
    rebuilt.set_weights(loaded.get_weights())
    again = rebuilt(x, training=False)
    for name in (outputs.ROUTED, outputs.FEATURE):
        np.testing.assert_allclose(np.asarray(again[name]), np.asarray(out[name]), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(again[outputs.ROUTE]), np.asarray(out[outputs.ROUTE]))


# === A data source (what a new source module holds) ===

SOURCE, SIDE, CLASSES = "toy_stripes", 16, 10
TRAIN, TEST = 320, 80


def stripes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n images (uint8, n x 16 x 16 x 1) of dim noise with a bright bar at row 3 + label."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, n)
    images = rng.integers(0, 64, (n, SIDE, SIDE, 1), dtype=np.uint8)
    images[np.arange(n), labels + 3] = 255
    return images, labels


def open_stripes(cfg, spec, download) -> ArraySource:
    return ArraySource(Rows.of(*stripes(TRAIN, seed=0)), Rows.of(*stripes(TEST, seed=1)),
                       class_names=tuple(f"bar{k}" for k in range(CLASSES)),
                       image_size=cfg.image_size)


STRIPES = registry.SourceSpec(
    name=SOURCE, form=SOURCE, claims=lambda dataset: dataset == SOURCE,
    image_shape=lambda spec, data_dir: (SIDE, SIDE, 1), open=open_stripes)


@pytest.fixture
def toy_source():
    with registry.registered(STRIPES):  # the one registration line
        yield STRIPES
    assert registry.parse(SOURCE).source.name == "tfds"  # gone again: an unknown tfds name now


# --- the data source's proof ---

def test_a_registered_source_is_a_dataset_with_a_derived_preset(toy_source):
    assert registry.parse(SOURCE).source is toy_source
    config = make_config(SOURCE, {"data": {"eval_examples": 40}})
    assert config.data.dataset == SOURCE
    # Grayscale and small: the MNIST-like preset (epsilon 0.3, small_cnn), from the shape only.
    assert (config.attack.epsilon, config.model.backbone) == (0.3, "small_cnn")
    info = data.load_info(config.data)
    assert (info.image_shape, info.num_classes, info.train_size, info.test_size) == \
        ((SIDE, SIDE, 1), CLASSES, TRAIN, TEST)
    assert info.class_names[7] == "bar7" and data.split_note(config.data) is None
    bigger = make_config(SOURCE, {"data": {"image_size": 24}})
    assert data.load_info(bigger.data).image_shape == (24, 24, 1)
    assert data.load_arrays(bigger.data, "test", 3)[0].shape == (3, 24, 24, 1)


def test_its_test_images_are_the_generators(toy_source):
    cfg = make_config(SOURCE).data
    images, labels = data.load_arrays(cfg, "test", 50)
    want_x, want_y = stripes(TEST, seed=1)
    assert images.dtype == np.uint8 and images.shape == (50, SIDE, SIDE, 1)
    assert labels.dtype == np.int32
    np.testing.assert_array_equal(images, want_x[:50])
    np.testing.assert_array_equal(labels, want_y[:50])
    # The bar is where the label says: the brightest row of each image is 3 + label.
    assert (images[..., 0].mean(axis=2).argmax(axis=1) == labels + 3).all()


def test_training_streams_every_training_image_once_per_epoch(toy_source):
    cfg = make_config(SOURCE, {"data": {"train_examples": 200, "augment": False}}).data
    stream = data.TrainStream(cfg, batch_size=64, seed=0)
    batches = list(stream.epoch(0))
    assert [len(y) for _, y in batches] == [64, 64, 64, 8]
    x = np.concatenate([np.round(b[0].numpy() * 255) for b in batches]).astype(np.uint8)
    y = np.concatenate([b[1].numpy() for b in batches])
    want_x, want_y = stripes(TRAIN, seed=0)
    order = np.random.default_rng([0, 0]).permutation(200)  # the epoch's seeded permutation
    np.testing.assert_array_equal(x, want_x[order])
    np.testing.assert_array_equal(y, want_y[order])


def test_it_trains_end_to_end(toy_source, tmp_path):
    from nfi_tf.training import train_and_evaluate

    config = make_config(SOURCE, {
        "data": {"train_examples": 128, "eval_examples": 40},
        "attack": {"num_steps": 1}, "eval_attack": {"num_steps": 2},
        "train": {"epochs": 1, "batch_size": 64, "lr_decay_epochs": ()}})
    model_dir = str(tmp_path / "model")
    summary = train_and_evaluate(config, model_dir, verbose=0)
    assert summary["finished"] and summary["steps"] == 2 and summary["dataset"] == SOURCE
    assert summary["train_examples"] == 128 and summary["test_examples"] == 40
    for name in ("model.keras", "history.json", "config.json", "summary.json"):
        assert os.path.exists(os.path.join(model_dir, name)), name
    final = json.load(open(os.path.join(model_dir, "history.json")))[-1]["test"]
    scores = {k: v for k, v in final.items() if k.startswith(("clean_", "pgd_"))}
    assert final["examples"] == 40 and "clean_routed" in scores and "pgd_routed" in scores
    for name, accuracy in scores.items():  # a share of the 40 test images
        assert 0.0 <= accuracy <= 1.0 and abs(accuracy * 40 - round(accuracy * 40)) < 1e-6, name
    kept = serving_examples.load(model_dir)  # the test images kept for export parity: all 80
    want_x, want_y = stripes(TEST, seed=1)
    np.testing.assert_array_equal(kept.images, want_x)
    np.testing.assert_array_equal(kept.labels, want_y)
    assert kept.info.name == SOURCE and kept.info.class_names[0] == "bar0"
    assert json.load(open(os.path.join(model_dir, "config.json")))["data"]["dataset"] == SOURCE


def test_a_name_is_registered_once(toy_source):
    from nfi_tf.errors import NfiError

    with pytest.raises(NfiError, match="registered already"):
        registry.register(STRIPES)
    with pytest.raises(NfiError, match="fallback source already"):
        registry.register(registry.SourceSpec(name="other", fallback=True, open=open_stripes,
                                              image_shape=lambda spec, data_dir: (8, 8, 1)))


# === An export precision (what a new precision module holds) ===

CPU_ONLY = SessionConfig(providers=("CPUExecutionProvider",))

PRECISION = "bf16_weights"
TOLERANCE = {"probabilities": 0.02}  # its check's bound (bfloat16 rounds at 2^-9 relative)


def round_to_bfloat16(values: np.ndarray) -> np.ndarray:
    """float32 values rounded to the nearest bfloat16-representable float32 (ties to even)."""
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32).reshape(values.shape)


def convert_precision(job, out_path):
    model = onnx.load(job.reference_path)  # the fp32 graph, metadata included
    for tensor in model.graph.initializer:
        if tensor.data_type == onnx.TensorProto.FLOAT:
            tensor.CopyFrom(numpy_helper.from_array(
                round_to_bfloat16(numpy_helper.to_array(tensor)), tensor.name))
    onnx.save_model(model, out_path)


@dataclasses.dataclass
class ToyReport:
    examples: int
    max_abs_diff: float  # of probabilities, against fp32
    same_class: float

    def lines(self):
        return [f"{PRECISION} on {self.examples} real test images: max abs diff of probabilities "
                f"{self.max_abs_diff:.2e}, same class {100 * self.same_class:.2f}%"]

    def to_dict(self):
        return dataclasses.asdict(self)


def check_precision(job, path):
    fp32, toy = job.reference_test_outputs(), job.test_outputs(path)
    p32, p = fp32[outputs.PROBABILITIES], toy[outputs.PROBABILITIES]
    report = ToyReport(examples=len(p), max_abs_diff=float(np.max(np.abs(p - p32))),
                       same_class=float(np.mean(np.argmax(p, -1) == np.argmax(p32, -1))))
    if report.max_abs_diff > TOLERANCE["probabilities"]:
        raise NfiError(f"{PRECISION} check failed: probabilities differ from fp32 beyond "
                       f"{TOLERANCE['probabilities']:g}. Received: {report.max_abs_diff:.2e}")
    return report


PRECISION_SPEC = precisions.PrecisionSpec(name=PRECISION, convert=convert_precision, check=check_precision,
                                summary="float32 weights rounded to bfloat16")


@pytest.fixture
def toy_precision():
    precisions.register(PRECISION_SPEC)  # the one line that adds a precision
    yield PRECISION_SPEC
    precisions.unregister(PRECISION)


# --- the export precision's proof ---

def test_the_toy_precision_is_exported_checked_served_and_reported(toy_precision, trained_mnist_dir,
                                                                  tmp_path, mnist_test_arrays):
    out = str(tmp_path)
    result = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out, precision=PRECISION,
                                       parity_examples=32, quantization_eval_examples=256))
    path = os.path.join(out, "model.bf16_weights.onnx")
    assert result.file(PRECISION) == path and os.path.exists(path)
    assert result.onnx == os.path.join(out, ONNX_FILE) and result.parity.ok
    assert result.fp16 is None and result.int8 is None
    # Really converted: every float weight is bfloat16-representable, and many moved.
    fp32_weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(result.onnx).graph.initializer
                    if t.data_type == onnx.TensorProto.FLOAT}
    toy_weights = {t.name: numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer
                   if t.data_type == onnx.TensorProto.FLOAT}
    assert toy_weights.keys() == fp32_weights.keys()
    assert all((w.view(np.uint32) & 0xFFFF == 0).all() for w in toy_weights.values())
    assert sum(not np.array_equal(toy_weights[k], fp32_weights[k]) for k in fp32_weights) >= 4

    # ONNX Runtime serves it, close to fp32 on real images it was not checked on.
    images, _ = mnist_test_arrays
    got, full = Predictor(path, CPU_ONLY).predict(images), Predictor(result.onnx, CPU_ONLY).predict(images)
    assert np.mean(got.classes == full.classes) >= 0.98
    np.testing.assert_allclose(got.probabilities, full.probabilities, atol=TOLERANCE["probabilities"])

    report = result.report_of(PRECISION)
    assert report.examples == 256 and 0 < report.max_abs_diff <= TOLERANCE["probabilities"]
    with open(result.report) as f:
        written = json.load(f)
    assert written["files"][PRECISION] == path and written[PRECISION] == report.to_dict()
    assert written["config"]["precision"] == PRECISION
    assert written["files"]["fp16"] is None and written["quantization"] is None  # built-ins kept
    assert written["parity"]["examples"] == 32
    lines = result.lines()
    assert f"bf16_weights ONNX: {path}" in lines and report.lines()[0] in lines

    # An export without it removes the now stale file, and says how to ask for it.
    again = export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out,
                                      parity_examples=16))
    assert again.file(PRECISION) is None and not os.path.exists(path)
    assert f"removed the stale model.bf16_weights.onnx of an earlier export (use --precision={PRECISION})" \
        in again.notes


def test_a_failing_check_is_a_one_line_error_and_writes_nothing(toy_precision, trained_mnist_dir, tmp_path,
                                                                monkeypatch):
    monkeypatch.setitem(TOLERANCE, "probabilities", 1e-9)
    out = str(tmp_path / "export")
    with pytest.raises(NfiError, match=rf"^{PRECISION} check failed: .* Received: \d") as info:
        export_model(ExportConfig(model_dir=trained_mnist_dir, output_dir=out, precision=PRECISION,
                                  parity_examples=16, quantization_eval_examples=64))
    assert "\n" not in str(info.value)
    assert not os.path.exists(os.path.join(out, "model.bf16_weights.onnx"))
    assert not os.path.exists(os.path.join(out, ONNX_FILE))  # nothing committed


def test_precision_flag_takes_the_registered_name_beside_the_built_ins(toy_precision):
    values = flags.FlagValues()
    export_flags.define_export_flags(flag_values=values)
    values(["prog", "--model_dir=m", f"--precision=fp16,{PRECISION}", "--quantize"])
    config = export_flags.export_config_from_flags(values)
    assert config.precisions == (Precision.FP32, Precision.INT8, Precision.FP16, PRECISION)
    precisions.unregister(PRECISION)
    with pytest.raises(NfiError, match=rf"precision must be one of fp32, int8, fp16, or several .* "
                                       rf"Received: precision='fp16,{PRECISION}'"):
        export_flags.export_config_from_flags(values)
    precisions.register(PRECISION_SPEC)  # for the fixture's teardown


@pytest.mark.parametrize("fields, message", [
    ({"name": PRECISION}, "precision 'bf16_weights' is already registered"),
    ({"file": "model.onnx"}, "file 'model.onnx' is taken by precision 'fp32'"),
    ({"report_key": "config"}, "report_key 'config' is export_report.json's own"),
    ({"reference": True}, r"there is already a reference precision \(fp32\)"),
    ({"name": "bf16,fp8"}, "a precision name is letters, digits and '_'"),
])
def test_registration_refuses_a_clash_in_one_line(toy_precision, fields, message):
    spec = precisions.PrecisionSpec(**{"name": "other", "convert": convert_precision,
                                       "check": check_precision, **fields})
    with pytest.raises(NfiError, match=message):
        precisions.register(spec)
    assert precisions.names() == (Precision.FP32, Precision.INT8, Precision.FP16, PRECISION)


# === All four together ===

def test_the_four_toys_train_export_and_evaluate_end_to_end(toy_attack, toy_backbone, toy_source,
                                                           toy_precision, tmp_path):
    from nfi_tf.evaluation.config import EvalConfig
    from nfi_tf.evaluation.runner import evaluate_model
    from nfi_tf.training import train_and_evaluate

    config = make_config(SOURCE, {
        "data": {"train_examples": 128, "eval_examples": 40},
        "model": {"backbone": BACKBONE, "robust_dims": 16},
        "attack": {"num_steps": 1}, "eval_attack": {"num_steps": 1},
        "train": {"epochs": 1, "batch_size": 64, "lr_decay_epochs": ()}})
    model_dir = str(tmp_path / "model")
    summary = train_and_evaluate(config, model_dir, verbose=0)
    assert summary["finished"] and summary["dataset"] == SOURCE and summary["backbone"] == BACKBONE
    out = str(tmp_path / "export")
    result = export_model(ExportConfig(model_dir=model_dir, output_dir=out, precision=PRECISION,
                                       parity_examples=16, quantization_eval_examples=40))
    assert os.path.exists(result.file(PRECISION)) and result.report_of(PRECISION).examples == 40
    r = evaluate_model(EvalConfig(model_dir=model_dir, attacks=("clean", ATTACK), eval_examples=40,
                                  batch_size=40, epsilon=0.3, verbose=0), log=lambda m: None)
    assert r.report.dataset == SOURCE and r.report.examples == 40
    assert r.report.columns == ["clean", ATTACK, "worst_case"]
    np.testing.assert_array_equal(r.labels, stripes(TEST, seed=1)[1][:40])  # the toy's test images
    for row in r.report.rows:
        assert r.report.cell(row, "worst_case") <= r.report.cell(row, ATTACK) <= 1.0
