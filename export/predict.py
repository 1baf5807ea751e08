"""Classify image files with the exported model: python -m export.predict --model=model.onnx IMAGE...

Prints the class, the route and the top probabilities of each image (ONNX Runtime).
"""

import sys

from absl import flags as absl_flags

from flags import export as export_flags
from nfi_tf.commands.entry import run_command

FLAGS = absl_flags.FLAGS


def main(argv):
    config = export_flags.predict_config_from_flags(FLAGS, argv[1:])
    from export.image_files import predict_files

    predictor, lines = predict_files(config)
    print(f"model: {predictor.describe()}", file=sys.stderr)
    for line in lines:
        print(line)


def run():
    run_command("export.predict", main, define_flags=export_flags.define_predict_flags,
                takes_arguments=True)


if __name__ == "__main__":
    run()
