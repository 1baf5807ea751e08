"""Export and serving: SavedModel + ONNX from one tf.function (float32 whatever the training
precision), parity checks, optional int8 and fp16 models, an ONNX Runtime predictor with
provider options and a GPU-fallback report. Entry points: `python -m export.to_onnx` and
`python -m export.predict`; docs/serving.md for GPUs."""

import importlib

# nfi_tf before anything here imports TensorFlow: the package's choice of CPU kernels
# (nfi_tf/cpu_kernels.py) then holds for these commands too.
importlib.import_module("nfi_tf")
