"""Two-stage class-conditional image synthesis with a trained classifier (section 3.3, eq. 16).

For a target class y:

1. Seed. x0 ~ G_y, a Gaussian fitted on class y's real training images. The covariance is
   low-rank plus isotropic (probabilistic PCA): the top `components` principal directions keep
   their own variances and every other direction gets the mean of the discarded eigenvalues.
   A full D x D covariance needs far more images per class than D (3072 on CIFAR) to be
   estimated; PPCA is its maximum-likelihood estimate under a rank-k constraint. The draw is
   clipped to [0, 1].
2. Stage one. Descend CE(y) of the robust part alone (the trade-off head on m * f(x),
   output `robust_part`), starting from x0.
3. Stage two. Descend CE(y) of the non-robust part alone ((1 - m) * f(x), `nonrobust_part`),
   starting from the stage-one image.

Both stages stay inside the same L2 ball around the seed, ||x - x0||_2 <= radius (eq. 16 is
an argmin over that ball), and inside [0, 1]. Each step moves `step_size` along the
L2-normalized negative gradient, then projects (MadryLab/robustness' L2 step): the attack
core's PGD (nfi_tf/attacks/pgd_core.py) ascending -CE with the L2 threat model of the ball.

Everything is a pure function of (model, data, config): seeds come from a numpy generator
keyed by (seed, class index), so a class gets the same images whichever other classes are
requested alongside it.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from nfi_tf import io_utils, outputs
from nfi_tf.attacks.pgd_core import PGD
from nfi_tf.attacks.threat import ThreatModel
from nfi_tf.errors import NfiError
from nfi_tf.vocab import Norm

STAGES = ("seed", "stage_one", "stage_two")
STAGE_OUTPUTS = {"stage_one": outputs.ROBUST_PART, "stage_two": outputs.NONROBUST_PART}
REPORTED_OUTPUTS = (outputs.ROUTED, outputs.ROBUST_PART, outputs.NONROBUST_PART)
DEFAULT_RADIUS_PER_PIXEL = 0.25


# === Config ===


@dataclasses.dataclass(frozen=True)
class SynthesisConfig:
    """Settings of one synthesis run. Each field's help is its `python -m nfi_tf.generate` flag's
    (flags/generate.py makes the flags from these fields).

    Attributes:
        classes: class names or indices (as strings or ints), resolved against the dataset.
        per_class: images generated per class.
        radius: L2 radius around the seed in [0, 1] pixel units; None: 0.25 * sqrt(H*W*C)
            (an RMS change of 0.25 per pixel value: 7.0 on MNIST, 13.9 on CIFAR-10).
        steps: gradient steps per stage.
        step_size: L2 length of one step; None: 2.5 * radius / steps (Madry et al.'s rule,
            enough to cross the ball and come back).
        seed: random seed of the Gaussian draws.
        components: principal components of the seed Gaussian (k of the PPCA covariance).
        fit_examples: the first N training images are read to fit the class Gaussians.
    """

    # Empty in code until set; the command line must name at least one class.
    classes: tuple[str, ...] = dataclasses.field(default=(), metadata={
        "help": "Comma-separated class names or indices to synthesize (e.g. dog,cat or 3,5).",
        "required": True})
    per_class: int = dataclasses.field(default=8, metadata={"help": "Images per class."})
    radius: float | None = dataclasses.field(default=None, metadata={
        "help": "L2 radius around the seed, in [0, 1] pixel units",
        "none": "0.25 * sqrt(pixels): 7.0 on MNIST, 13.9 on CIFAR-10"})
    steps: int = dataclasses.field(default=60, metadata={"help": "Gradient steps per stage."})
    step_size: float | None = dataclasses.field(default=None, metadata={
        "help": "L2 length of one step", "none": "2.5 * radius / steps"})
    # The command's default is the model's training seed (flags/generate.py says so in --help).
    seed: int = dataclasses.field(default=0, metadata={"help": "Random seed", "flag_default": None})
    components: int = dataclasses.field(default=32, metadata={
        "help": "Principal components of the class-conditional seed Gaussian."})
    fit_examples: int = dataclasses.field(default=10000, metadata={
        "help": "Fit the seed Gaussians on the first N training images."})

    def resolved_radius(self, image_shape: Sequence[int]) -> float:
        if self.radius is not None:
            return float(self.radius)
        return DEFAULT_RADIUS_PER_PIXEL * math.sqrt(float(np.prod(image_shape)))

    def resolved_step_size(self, image_shape: Sequence[int]) -> float:
        if self.step_size is not None:
            return float(self.step_size)
        return 2.5 * self.resolved_radius(image_shape) / max(self.steps, 1)


def validate(config: SynthesisConfig) -> SynthesisConfig:
    if not config.classes:
        raise NfiError(f"give at least one class. Received: classes={config.classes!r}")
    checks = {
        "per_class": (config.per_class, config.per_class >= 1, ">= 1"),
        "steps": (config.steps, config.steps >= 0, ">= 0"),
        "components": (config.components, config.components >= 1, ">= 1"),
        "fit_examples": (config.fit_examples, config.fit_examples >= 2, ">= 2"),
    }
    if config.radius is not None:
        checks["radius"] = (config.radius, math.isfinite(config.radius) and config.radius > 0, "> 0")
    if config.step_size is not None:
        checks["step_size"] = (config.step_size,
                               math.isfinite(config.step_size) and config.step_size > 0, "> 0")
    for name, (value, ok, rule) in checks.items():
        if not ok:
            raise NfiError(f"{name} must be {rule}. Received: {name}={value!r}")
    return config


def resolve_classes(classes: Sequence, class_names: Sequence[str]) -> list[int]:
    """Class names (case-insensitive) or indices -> indices, in the order given, deduplicated."""
    lookup = {name.lower(): i for i, name in enumerate(class_names)}
    indices: list[int] = []
    for raw in classes:
        token = str(raw).strip()
        index = lookup.get(token.lower())
        if index is None and re.fullmatch(r"\d+", token) and int(token) < len(class_names):
            index = int(token)
        if index is None:
            shown = ", ".join(class_names[:12]) + (", ..." if len(class_names) > 12 else "")
            raise NfiError(f"unknown class {token!r}: use a class name ({shown}) or an index "
                           f"0..{len(class_names) - 1}. Received: classes={token!r}")
        if index not in indices:
            indices.append(index)
    return indices


# === Seeds: a low-rank-plus-isotropic Gaussian per class ===


@dataclasses.dataclass(frozen=True)
class ClassGaussian:
    """x = mean + (z * scales) @ basis + noise_std * e, with z, e standard normal."""

    mean: np.ndarray  # [D]
    basis: np.ndarray  # [k, D], orthonormal rows (principal directions)
    scales: np.ndarray  # [k], standard deviation along each direction
    noise_std: float  # isotropic standard deviation of the remaining D - k directions
    image_shape: tuple[int, ...]

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        d = self.mean.size
        z = rng.standard_normal((n, self.scales.size))
        e = rng.standard_normal((n, d))
        x = self.mean + (z * self.scales) @ self.basis + self.noise_std * e
        return np.clip(x, 0.0, 1.0).reshape((n, *self.image_shape)).astype(np.float32)


def fit_gaussian(images: np.ndarray, components: int) -> ClassGaussian:
    """PPCA fit (Tipping & Bishop): top-k eigenpairs + the mean of the other eigenvalues.

    `images`: [n, H, W, C] in [0, 1], n >= 2.
    """
    n = images.shape[0]
    if n < 2:
        raise NfiError(f"need at least 2 images to fit a class Gaussian. Received: {n} images")
    x = images.reshape(n, -1).astype(np.float64)
    d = x.shape[1]
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    eig = s**2 / (n - 1)
    k = min(components, eig.size, d - 1)
    residual = float(eig[k:].sum() / (d - k)) if d > k else 0.0
    return ClassGaussian(mean=mean, basis=vt[:k], scales=np.sqrt(np.maximum(eig[:k] - residual, 0.0)),
                         noise_std=math.sqrt(residual), image_shape=tuple(images.shape[1:]))


def draw_seeds(gaussian: ClassGaussian, n: int, seed: int, class_index: int) -> np.ndarray:
    return gaussian.sample(n, np.random.default_rng([int(seed), int(class_index)]))


# === Descent inside the L2 ball: the attack core's projected ascent ===


def make_descent(classifier, output: str, radius: float, steps: int, step_size: float):
    """Descend CE(target) of `classifier(x)[output]` inside the L2 ball of `radius` around the
    seed x0 and [0, 1]: the attack core's PGD (nfi_tf.attacks.pgd_core, normalized L2 steps of
    constant length, projected onto the ball and clipped, the last iterate) ascending -CE, from
    `x_start` (the seed itself for stage one, the stage-one image for stage two)."""
    core = PGD(ThreatModel(Norm.L2, radius, step_size), steps, "constant", random_start="none",
               keep="last")
    seed = tf.zeros([2], tf.int64)  # the descent draws nothing: no random start

    @tf.function(reduce_retracing=True)
    def descend(x_start, x0, target):
        def objective(z):
            logits = tf.cast(classifier(z, training=False)[output], tf.float32)
            return -tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)

        return core(objective, x0, seed, start=x_start, unroll=False)[0]

    return lambda x_start, x0, target: descend(tf.constant(x_start, tf.float32), tf.constant(x0, tf.float32),
                                               tf.constant(target, tf.int32)).numpy()


# === The two stages ===


@dataclasses.dataclass
class ClassSynthesis:
    class_index: int
    class_name: str
    images: dict  # stage name (STAGES) -> [per_class, H, W, C] float32 in [0, 1]
    predictions: dict  # stage name -> output name -> {"class", "confidence", "target_prob"}


def predict(classifier, x: np.ndarray, target: int) -> dict:
    out = classifier(tf.constant(x, tf.float32), training=False)
    result = {}
    for name in REPORTED_OUTPUTS:
        probs = tf.nn.softmax(tf.cast(out[name], tf.float32)).numpy()
        result[name] = {
            "class": probs.argmax(axis=1).astype(int).tolist(),
            "confidence": probs.max(axis=1).astype(float).tolist(),
            "target_prob": probs[:, target].astype(float).tolist(),
        }
    return result


def synthesize(classifier, train_images: np.ndarray, train_labels: np.ndarray,
               class_names: Sequence[str], config: SynthesisConfig) -> list[ClassSynthesis]:
    """Seeds, stage-one and stage-two images for every requested class.

    `train_images`: float [N, H, W, C] in [0, 1] (the pool the class Gaussians are fitted on).
    """
    config = validate(config)
    indices = resolve_classes(config.classes, class_names)
    image_shape = tuple(train_images.shape[1:])
    radius = config.resolved_radius(image_shape)
    step_size = config.resolved_step_size(image_shape)
    descents = {stage: make_descent(classifier, output, radius, config.steps, step_size)
                for stage, output in STAGE_OUTPUTS.items()}
    results = []
    for c in indices:
        pool = train_images[train_labels == c]
        if len(pool) < 2:
            raise NfiError(f"class {class_names[c]!r} has {len(pool)} image(s) among the first "
                           f"training images; raise --fit_examples. Received: "
                           f"fit_examples={config.fit_examples}")
        x0 = draw_seeds(fit_gaussian(pool, config.components), config.per_class, config.seed, c)
        target = np.full([config.per_class], c, np.int32)
        images = {"seed": x0}
        images["stage_one"] = descents["stage_one"](x0, x0, target)
        images["stage_two"] = descents["stage_two"](images["stage_one"], x0, target)
        predictions = {stage: predict(classifier, images[stage], c) for stage in STAGES}
        results.append(ClassSynthesis(c, class_names[c], images, predictions))
    return results


def target_share(results: Sequence[ClassSynthesis], stage: str, output: str = outputs.ROUTED) -> float:
    """The fraction of images of `stage` that `output` classifies as their target class."""
    hits = [p == r.class_index for r in results for p in r.predictions[stage][output]["class"]]
    return float(np.mean(hits)) if hits else float("nan")


def mean_target_prob(results: Sequence[ClassSynthesis], stage: str, output: str = outputs.ROUTED) -> float:
    """The mean softmax probability `output` gives the target class on images of `stage`."""
    probs = [q for r in results for q in r.predictions[stage][output]["target_prob"]]
    return float(np.mean(probs)) if probs else float("nan")


# === Pictures and reports ===


def _to_uint8(x: np.ndarray) -> np.ndarray:
    img = np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)
    return img[..., 0] if img.shape[-1] == 1 else img


def grid(rows: Sequence[np.ndarray], scale: int = 1, pad: int = 2) -> np.ndarray:
    """Rows of images [n, H, W, C] in [0, 1] -> one uint8 picture on a white background."""
    n = max(len(r) for r in rows)
    h, w, c = rows[0].shape[1:]
    hs, ws = h * scale, w * scale
    canvas = np.full((pad + len(rows) * (hs + pad), pad + n * (ws + pad), 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            tile = np.repeat(np.repeat(_to_uint8(img), scale, 0), scale, 1)
            if tile.ndim == 2:
                tile = np.repeat(tile[..., None], 3, axis=-1)
            y, x = pad + i * (hs + pad), pad + j * (ws + pad)
            canvas[y:y + hs, x:x + ws] = tile
    return canvas


def _scale_for(image_shape: Sequence[int]) -> int:
    return max(1, 64 // int(image_shape[0]))


def overview(results: Sequence[ClassSynthesis], per_line: int = 5) -> np.ndarray:
    """All classes in one picture: a 3-row block per class (seed / stage one / stage two)."""
    from PIL import Image, ImageDraw

    scale = _scale_for(results[0].images["seed"].shape[1:])
    blocks = [grid([r.images[s] for s in STAGES], scale) for r in results]
    bh, bw = max(b.shape[0] for b in blocks), max(b.shape[1] for b in blocks)
    label_h, gap, margin = 14, 12, 110
    lines = math.ceil(len(blocks) / per_line)
    cols = min(per_line, len(blocks))
    canvas = Image.new("RGB", (margin + cols * (bw + gap), lines * (bh + label_h + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    tile_h = (bh - 2) / 3
    for i, (r, block) in enumerate(zip(results, blocks)):
        line, col = divmod(i, per_line)
        x, y = margin + col * (bw + gap), line * (bh + label_h + gap)
        caption = f"class {r.class_index}" + ("" if r.class_name == str(r.class_index) else
                                              f": {r.class_name}")
        draw.text((x + 2, y), caption, fill="black")
        canvas.paste(Image.fromarray(block), (x, y + label_h))
        if col == 0:
            for k, text in enumerate(("seed x0 ~ G_y", "stage 1: robust", "stage 2: non-robust")):
                draw.text((4, y + label_h + 2 + k * tile_h + tile_h / 2 - 6), text, fill="black")
    return np.asarray(canvas)


def save_png(path: str, picture: np.ndarray) -> None:
    from PIL import Image

    with io_utils.atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def _file_stem(result: ClassSynthesis) -> str:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", result.class_name)
    return f"class{result.class_index}" if safe == str(result.class_index) else \
        f"class{result.class_index}_{safe}"


def class_report(result: ClassSynthesis, class_names: Sequence[str]) -> dict:
    images = []
    for i in range(len(result.images["seed"])):
        entry = {}
        for stage in STAGES:
            entry[stage] = {
                output: {
                    "class": class_names[p["class"][i]],
                    "class_index": p["class"][i],
                    "confidence": round(p["confidence"][i], 6),
                    "target_prob": round(p["target_prob"][i], 6),
                }
                for output, p in result.predictions[stage].items()
            }
        x0 = result.images["seed"][i]
        entry["l2_from_seed"] = {s: round(float(np.linalg.norm(result.images[s][i] - x0)), 6)
                                 for s in STAGES[1:]}
        images.append(entry)
    share = {s: {o: target_share([result], s, o) for o in REPORTED_OUTPUTS} for s in STAGES}
    prob = {s: {o: mean_target_prob([result], s, o) for o in REPORTED_OUTPUTS} for s in STAGES}
    return {"class": result.class_name, "class_index": result.class_index,
            "target_share": share, "mean_target_prob": prob, "images": images}


def write_outputs(results: Sequence[ClassSynthesis], out_dir: str, class_names: Sequence[str],
                  settings: dict) -> dict:
    """Per class `<stem>.png` (rows: seed, stage one, stage two) and `<stem>.json`; all classes
    in `overview.png`; settings and target-class shares in `summary.json`. Returns the summary."""
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for r in results:
        stem = _file_stem(r)
        scale = _scale_for(r.images["seed"].shape[1:])
        save_png(os.path.join(out_dir, f"{stem}.png"), grid([r.images[s] for s in STAGES], scale))
        io_utils.atomic_write_json(os.path.join(out_dir, f"{stem}.json"), class_report(r, class_names))
        files.append(stem)
    save_png(os.path.join(out_dir, "overview.png"), overview(results))
    summary = {
        "settings": settings,
        "classes": [r.class_name for r in results],
        "files": files,
        "target_share": {s: {o: target_share(results, s, o) for o in REPORTED_OUTPUTS} for s in STAGES},
        "mean_target_prob": {s: {o: mean_target_prob(results, s, o) for o in REPORTED_OUTPUTS}
                             for s in STAGES},
    }
    io_utils.atomic_write_json(os.path.join(out_dir, "summary.json"), summary)
    return summary


def generate(model_dir: str, config: SynthesisConfig, out_dir: str, data_dir: str | None = None,
             download: bool = True) -> dict:
    """Load a trained model dir, synthesize, write the pictures and reports into `out_dir`."""
    from nfi_tf import data, model_io

    config = validate(config)
    trained = model_io.load_trained(model_dir, download=download)
    resolve_classes(config.classes, trained.info.class_names)  # fail before reading the data
    data_cfg = trained.config.data
    if data_dir:
        data_cfg = dataclasses.replace(data_cfg, data_dir=data_dir)
    images, labels = data.load_arrays(data_cfg, "train", config.fit_examples, download)
    results = synthesize(trained.classifier, data.uint8_to_float(images), labels,
                         trained.info.class_names, config)
    shape = trained.info.image_shape
    settings = dataclasses.asdict(config) | {
        "model_dir": os.path.abspath(model_dir),
        "dataset": trained.info.name,
        "method": trained.config.model.method,
        "radius": config.resolved_radius(shape),
        "step_size": config.resolved_step_size(shape),
        "classes": [r.class_name for r in results],
        "seed_distribution": f"PPCA Gaussian per class: {config.components} principal components "
                             "+ isotropic residual, fitted on that class's training images "
                             f"among the first {config.fit_examples}, clipped to [0, 1]",
    }
    return write_outputs(results, out_dir, trained.info.class_names, settings)
