"""Export and serving: SavedModel + ONNX from one tf.function, parity checks, an ONNX Runtime
predictor, optional int8 quantization. Entry points: `python -m export.to_onnx` and
`python -m export.predict`."""
