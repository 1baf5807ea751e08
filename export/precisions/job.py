"""`ExportJob`: what an export hands each precision's `convert` and `check`.

The export builds one per run (`export.exporter`): the settings, the metadata every file carries,
the real images and what the models say on them, and a way to open a written file as it will be
served. Outputs are computed once per file and image set, so several precisions compared with
the reference on the same test images run the reference once.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from export import parity

if TYPE_CHECKING:
    from export.config import ExportConfig
    from export.image_source import ImageSource

Outputs = dict[str, np.ndarray]


@dataclasses.dataclass
class ExportJob:
    config: ExportConfig  # batch size, tolerances, each precision's own settings
    metadata: dict[str, str]  # attached to every ONNX file (a precision may add its own keys)
    source: ImageSource  # real test images (and training images, when the dataset is there)
    serve: Any  # the serving tf.function: what the reference converts
    # path -> a model as served (a CPU `export.serve.Predictor`): `.run(images) -> Outputs`
    open_model: Callable[[str], Any]
    parity_images: np.ndarray  # the real test images of the parity check
    keras_outputs: Outputs  # the Keras model on `parity_images`: what the reference reproduces
    # Other runtimes of the float32 graph on `parity_images`, judged with the reference ONNX
    # (the SavedModel's outputs)
    other_runtimes: dict[str, Outputs] = dataclasses.field(default_factory=dict)
    say: Callable[[str], None] = lambda _: None  # progress lines
    reference_path: str = ""  # the reference ONNX file (still aside), once converted
    _outputs: dict[tuple[str, str], Outputs] = dataclasses.field(default_factory=dict, repr=False)
    _training: dict[int, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    def run(self, path: str, images: np.ndarray) -> Outputs:
        """The model at `path` on `images`, in batches."""
        return parity.in_batches(self.open_model(path).run, images, self.batch_size)

    def parity_outputs(self, path: str) -> Outputs:
        """The model at `path` on the parity images (computed once)."""
        return self._cached(("parity", path), lambda: self.run(path, self.parity_images))

    @functools.cached_property
    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Real test images and labels on which each precision is compared with the reference
        (`quantization_eval_examples` of them)."""
        return self.source.test_images(self.config.quantization_eval_examples)

    def test_outputs(self, path: str) -> Outputs:
        """The model at `path` on `test_set`'s images (computed once)."""
        return self._cached(("test", path), lambda: self.run(path, self.test_set[0]))

    def reference_test_outputs(self) -> Outputs:
        return self.test_outputs(self.reference_path)

    def training_images(self, n: int, purpose: str) -> np.ndarray:
        """`n` real training images (loaded once); without the dataset, an NfiError saying
        that `purpose` needs them."""
        if n not in self._training:
            self._training[n] = self.source.training_images(n, purpose)
        return self._training[n]

    def _cached(self, key: tuple[str, str], compute: Callable[[], Outputs]) -> Outputs:
        if key not in self._outputs:
            self._outputs[key] = compute()
        return self._outputs[key]
