
import importlib

# nfi_tf before anything here imports TensorFlow: the package's choice of CPU kernels
# (nfi_tf/cpu_kernels.py) then holds for these commands too.
importlib.import_module("nfi_tf")
