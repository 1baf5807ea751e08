"""`export_model`: a trained model dir -> SavedModel + ONNX in each precision asked for,
committed only after every check on real test images holds.

The exported graph is float32 whatever precision training used (`export.training_precision`);
a model trained in mixed precision is also compared with itself as trained. The real images
come from the dataset or, without it, from the model dir (`export.image_source`). The export
precisions come from their registry (`export.precisions`): the reference (fp32) is converted
from the serving tf.function and checked against Keras and the SavedModel, every other one is
converted from it and checked against it; this module names none of them.

Every file is built under a temporary name beside its target (nfi_tf.io_utils) and swapped in
only when all checks pass, so a failed export (conversion error, parity mismatch, crash)
leaves the previous export untouched.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from collections.abc import Callable

import keras
import numpy as np

from export import image_source, parity, precisions, signature, training_precision
from export import metadata as metadata_lib
from export.config import ExportConfig, SessionConfig, validate_export
from export.export_result import ExportResult, Produced
from export.precisions.job import ExportJob
from export.saved_model import LoadedSavedModel, write_saved_model
from export.serve import CPU, Predictor
from nfi_tf import io_utils, model_io
from nfi_tf import outputs as output_names
from nfi_tf.config import Config
from nfi_tf.errors import NfiError

SAVED_MODEL_DIR = "saved_model"
ONNX_FILE = precisions.reference().file  # the served float32 model
REPORT_FILE = "export_report.json"
SAVED_MODEL_RUNTIME = "saved_model"  # its name in the parity report


@dataclasses.dataclass
class _Subject:
    """The trained model to export and its real images, loaded once."""

    trained: model_io.TrainedModel  # its classifier computes in float32
    as_trained: keras.Model | None  # under the training's mixed precision policy, if any
    trained_precision: str
    source: image_source.ImageSource


def _keras_runtime(classifier) -> parity.Runtime:
    def run(images: np.ndarray) -> dict[str, np.ndarray]:
        out = classifier(images, training=False)
        return {k: np.asarray(v) for k, v in out.items() if k != output_names.FEATURE}

    return run


def export_model(config: ExportConfig, *, download: bool = True,
                 log: Callable[[str], None] | None = None) -> ExportResult:
    """Export `config.model_dir`'s classifier; raise (changing nothing on disk) on any failure."""
    say = log or (lambda _: None)
    config = validate_export(config)
    start = time.time()
    wanted = [precisions.get(name) for name in config.precisions]
    subject = _load(config, wanted, download)
    job, notes = _job(config, subject, say)
    produced, as_trained = _write_and_check(job, subject, wanted)
    notes += _remove_stale(config.export_dir, wanted)
    report = _write_report(job, subject, produced, as_trained, time.time() - start)
    return ExportResult(saved_model=os.path.join(config.export_dir, SAVED_MODEL_DIR),
                        report=report, notes=notes, produced=produced, as_trained=as_trained,
                        trained_precision=subject.trained_precision)


def _load(config: ExportConfig, wanted: list[precisions.PrecisionSpec],
          download: bool) -> _Subject:
    if not os.path.isdir(config.model_dir):
        raise NfiError(f"model dir {config.model_dir} does not exist")
    trained_config = Config.load(os.path.join(config.model_dir, "config.json"))
    # Opened first, so that a missing dataset (int8 calibration needs the training split) is
    # reported before anything is converted, not after the parity check.
    needs = [s.training_images for s in wanted if s.training_images]
    source = image_source.open_source(config.model_dir, trained_config.data, config.data_dir,
                                      download, training_images_for=needs[0] if needs else None)
    trained_precision = trained_config.train.mixed_precision
    classifier, as_trained = training_precision.load_for_export(
        os.path.join(config.model_dir, "model.keras"), trained_precision)
    trained = model_io.TrainedModel(trained_config, classifier, source.info, config.model_dir)
    return _Subject(trained, as_trained, trained_precision, source)


def _job(config: ExportConfig, subject: _Subject,
         say: Callable[[str], None]) -> tuple[ExportJob, list[str]]:
    """What every precision's convert and check reads, and a note when the parity images are
    fewer than asked for."""
    trained, source = subject.trained, subject.source
    serve = signature.serving_function(trained.classifier, trained.info.image_shape)
    meta = metadata_lib.build_metadata(trained, signature.serving_outputs(trained.classifier),
                                       config.opset)
    images, _ = source.test_images(config.parity_examples)
    notes = []
    if len(images) < config.parity_examples:
        notes.append(f"parity on the {len(images)} images of {source.description} "
                     f"(fewer than --parity_examples={config.parity_examples})")
    cpu_only = SessionConfig(providers=(CPU,))
    keras_outputs = parity.in_batches(_keras_runtime(trained.classifier), images,
                                      config.batch_size)
    job = ExportJob(config=config, metadata=meta, source=source, serve=serve,
                    open_model=lambda path: Predictor(path, cpu_only), parity_images=images,
                    keras_outputs=keras_outputs, say=say)
    return job, notes


def _write_and_check(job: ExportJob, subject: _Subject, wanted: list[precisions.PrecisionSpec]
                     ) -> tuple[dict[str, Produced], parity.ParityReport | None]:
    """The SavedModel and each wanted precision, written aside and checked, in registry order;
    all committed (in reverse order, the SavedModel last) only once every check passed."""
    reference, *others = wanted
    classifier = subject.trained.classifier
    with contextlib.ExitStack() as stack:
        sm_tmp = stack.enter_context(io_utils.atomic_dir(
            os.path.join(job.config.export_dir, SAVED_MODEL_DIR)))
        job.say(f"writing the SavedModel ({', '.join(signature.serving_outputs(classifier))})")
        write_saved_model(classifier, job.serve, sm_tmp, job.metadata)
        job.other_runtimes[SAVED_MODEL_RUNTIME] = parity.in_batches(
            LoadedSavedModel(sm_tmp), job.parity_images, job.batch_size)
        produced = {reference.name: _produce(stack, job, reference)}
        as_trained = _check_as_trained(job, subject)
        produced.update({spec.name: _produce(stack, job, spec) for spec in others})
    return produced, as_trained


def _produce(stack: contextlib.ExitStack, job: ExportJob,
             spec: precisions.PrecisionSpec) -> Produced:
    """Convert `spec`'s file aside (committed when `stack` closes without an error) and check
    it; the reference's file becomes what the others are converted from."""
    path = os.path.join(job.config.export_dir, spec.file)
    tmp = stack.enter_context(io_utils.atomic_path(path, suffix=os.path.splitext(spec.file)[1]))
    spec.convert(job, tmp)
    if spec.reference:
        job.reference_path = tmp
    return Produced(spec=spec, path=path, report=spec.check(job, tmp))


def _check_as_trained(job: ExportJob, subject: _Subject) -> parity.ParityReport | None:
    """The float32 ONNX model vs the model as trained in mixed precision (None: trained in
    float32)."""
    if subject.as_trained is None:
        return None
    job.say(f"comparing with the model as trained ({subject.trained_precision})")
    as_trained = parity.in_batches(_keras_runtime(subject.as_trained), job.parity_images,
                                   job.batch_size)
    return parity.check_as_trained(as_trained, job.parity_outputs(job.reference_path),
                                   job.config.as_trained_atol)


def _remove_stale(out_dir: str, wanted: list[precisions.PrecisionSpec]) -> list[str]:
    """Remove every registered precision's file this export did not write: converted from an
    earlier fp32 export, it would no longer match this one."""
    notes, written = [], {spec.name for spec in wanted}
    for spec in precisions.specs():
        path = os.path.join(out_dir, spec.file)
        if spec.name not in written and os.path.exists(path):
            os.remove(path)
            notes.append(f"removed the stale {spec.file} of an earlier export "
                         f"(use --precision={spec.name})")
    return notes


def _write_report(job: ExportJob, subject: _Subject, produced: dict[str, Produced],
                  as_trained: parity.ParityReport | None, seconds: float) -> str:
    """export_report.json: every registered precision has its file entry and its section
    (None when this export did not write it)."""
    config, specs = job.config, precisions.specs()
    path = os.path.join(config.export_dir, REPORT_FILE)
    io_utils.atomic_write_json(path, {
        "model_dir": os.path.abspath(config.model_dir),
        "config": dataclasses.asdict(config),
        "metadata": job.metadata,
        "files": {"saved_model": os.path.join(config.export_dir, SAVED_MODEL_DIR),
                  **{s.files_key: produced[s.name].path if s.name in produced else None
                     for s in specs}},
        "images": subject.source.description,
        "trained_precision": subject.trained_precision,
        "as_trained_parity": as_trained.to_dict() if as_trained else None,
        **{s.report_key: produced[s.name].report.to_dict() if s.name in produced else None
           for s in specs},
        "versions": _versions(),
        "seconds": round(seconds, 1),
    })
    return path


def _versions() -> dict[str, str]:
    import keras
    import onnx
    import onnxruntime
    import tensorflow as tf
    import tf2onnx

    import nfi_tf

    return {"nfi_tf": nfi_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "tf2onnx": tf2onnx.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}
