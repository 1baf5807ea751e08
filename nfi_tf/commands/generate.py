"""Two-stage class-conditional synthesis: python -m nfi_tf.generate --model_dir=DIR --out=OUT

Flags -> SynthesisConfig -> `synthesis.generate`.
"""

import os

from absl import flags as absl_flags

from flags import generate as generate_flags
from nfi_tf import outputs
from nfi_tf.commands.entry import run_command

FLAGS = absl_flags.FLAGS


def main(argv):
    from nfi_tf.config import Config
    from nfi_tf.errors import NfiError
    from nfi_tf.synthesis import generate

    config_path = os.path.join(FLAGS.model_dir, "config.json")
    if not os.path.isfile(config_path):
        raise NfiError(f"no config.json in {FLAGS.model_dir}: not a model dir written by "
                       f"python -m nfi_tf.train. Received: model_dir={FLAGS.model_dir!r}")
    config = generate_flags.generate_config_from_flags(
        FLAGS, default_seed=Config.load(config_path).train.seed)
    out = generate_flags.output_from_flags(FLAGS).out
    summary = generate(FLAGS.model_dir, config, out, FLAGS.data_dir, FLAGS.download)
    share, prob = summary["target_share"], summary["mean_target_prob"]
    print(f"done: {len(summary['classes'])} class(es) x {config.per_class} images in {out}")
    print("  classified as the target class (routed model): "
          + "  ".join(f"{stage} {100 * share[stage][outputs.ROUTED]:.1f}%" for stage in share))
    print("  mean target-class probability (routed model):  "
          + "  ".join(f"{stage} {prob[stage][outputs.ROUTED]:.3f}" for stage in prob))


def run():
    run_command("nfi_tf.generate", main, define_flags=generate_flags.define_generate_flags)
