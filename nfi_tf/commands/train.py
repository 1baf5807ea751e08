"""Train an nfi (or TRADES) model: python -m nfi_tf.train --dataset=mnist --model_dir=DIR

Flags -> config -> `training.train_and_evaluate`; presets are TRADES' settings per dataset.
`--dry_run` (or `--estimate`): `training.dry_run.dry_run`'s lines instead, nothing trained.
"""

from absl import flags as absl_flags

from flags import train as train_flags
from nfi_tf import outputs
from nfi_tf.commands.entry import run_command

FLAGS = absl_flags.FLAGS


def main(argv):
    config = train_flags.train_config_from_flags(FLAGS)
    if FLAGS.dry_run:  # the estimate alone: nothing trained, downloaded or written
        from nfi_tf.training.dry_run import dry_run

        print("\n".join(dry_run(config)))
        return
    if FLAGS.cpu_devices > 1:  # before TensorFlow initializes its devices
        from nfi_tf.distribute import split_cpu

        split_cpu(FLAGS.cpu_devices)
    from nfi_tf.training import train_and_evaluate

    summary = train_and_evaluate(config, FLAGS.model_dir, download=FLAGS.download)
    split = summary["eval_split"]  # "validation" with --validation_examples, else "test"
    final = summary[f"final_{split}"]
    print(f"done: {summary['steps']} steps; model and summary in {FLAGS.model_dir}")
    if final:
        for name in (outputs.ROUTED, outputs.TRADEOFF):
            if f"clean_{name}" in final:
                print(f"  {name:9s} clean accuracy {100 * final[f'clean_{name}']:.2f}%   "
                      f"PGD-{config.eval_attack.num_steps} (on the trade-off head) accuracy "
                      f"{100 * final[f'pgd_{name}']:.2f}%   [{final['examples']} {split} images]")


def run():
    run_command("nfi_tf.train", main, define_flags=train_flags.define_train_flags)
