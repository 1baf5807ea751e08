"""Export a trained model to SavedModel and ONNX: python -m export.to_onnx --model_dir=DIR

Flags -> ExportConfig -> `export_model` (parity-checked before anything is written in place).
"""

from absl import flags as absl_flags

from flags import export as export_flags
from nfi_tf.commands.entry import run_command

FLAGS = absl_flags.FLAGS


def main(argv):
    config = export_flags.export_config_from_flags(FLAGS)
    from export.exporter import export_model

    result = export_model(config, download=FLAGS.download, log=lambda m: print(m, flush=True))
    print("export done:")
    for line in result.lines():
        print(f"  {line}")


def run():
    run_command("export.to_onnx", main, define_flags=export_flags.define_export_flags)


if __name__ == "__main__":
    run()
