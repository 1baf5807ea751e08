"""nfi_tf: "No Feature Is an Island" in Keras 3 / TensorFlow."""

__version__ = "0.1.0"
