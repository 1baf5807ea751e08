"""What a served model says about itself: ONNX `metadata_props` (and the same dict beside the
SavedModel), so a client needs nothing but the model file to validate and label requests."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import onnx

import nfi_tf
from nfi_tf import outputs as output_names

if TYPE_CHECKING:  # serving must not import Keras/TensorFlow: it only needs onnxruntime
    from nfi_tf.model_io import TrainedModel

INPUT_RANGE = (0.0, 1.0)
# The fallback for models without metadata (the routing layer uses the same names).
ROUTE_NAMES = output_names.ROUTE_NAMES


def build_metadata(trained: TrainedModel, outputs: tuple[str, ...], opset: int) -> dict[str, str]:
    """String key/values (ONNX metadata_props only holds strings; lists are JSON)."""
    c, info = trained.config, trained.info
    return {
        "dataset": info.name,
        "class_names": json.dumps(list(info.class_names)),
        "num_classes": str(info.num_classes),
        "input_name": "image",
        "input_shape": json.dumps([None, *info.image_shape]),  # NHWC, dynamic batch
        "input_layout": "NHWC",
        "input_dtype": "float32",
        "input_range": json.dumps(list(INPUT_RANGE)),
        "method": c.model.method,
        "backbone": c.model.backbone,
        "robust_dims": str(c.model.robust_dims),
        "train_epsilon": repr(c.attack.epsilon),
        "eval_epsilon": repr(c.eval_attack.epsilon),
        "outputs": json.dumps(list(outputs)),
        "route_names": json.dumps(list(ROUTE_NAMES)),
        "opset": str(opset),
        "nfi_tf_version": nfi_tf.__version__,
    }


def attach(model: onnx.ModelProto, metadata: dict[str, str]) -> None:
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, metadata)


@dataclasses.dataclass(frozen=True)
class ServingMetadata:
    """The parsed metadata a predictor needs."""

    image_shape: tuple[int, int, int]
    class_names: tuple[str, ...]
    route_names: tuple[str, ...]
    input_range: tuple[float, float]
    dataset: str
    method: str
    raw: dict[str, str]

    @classmethod
    def parse(cls, props: dict[str, str], input_shape: list) -> ServingMetadata:
        """From metadata_props; a model without them (not ours) falls back to its input shape."""
        shape = json.loads(props["input_shape"])[1:] if "input_shape" in props else input_shape[1:]
        if len(shape) != 3 or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ValueError(f"the model input must be NHWC with fixed H, W, C. "
                             f"Received: input shape {input_shape}")
        names = tuple(json.loads(props["class_names"])) if "class_names" in props else ()
        return cls(
            image_shape=tuple(int(d) for d in shape),  # type: ignore[arg-type]
            class_names=names,
            route_names=tuple(json.loads(props.get("route_names", json.dumps(ROUTE_NAMES)))),
            input_range=tuple(json.loads(props.get("input_range", json.dumps(INPUT_RANGE)))),  # type: ignore[arg-type]
            dataset=props.get("dataset", "unknown"),
            method=props.get("method", "unknown"),
            raw=dict(props),
        )

    def class_name(self, index: int) -> str:
        return self.class_names[index] if index < len(self.class_names) else str(index)
