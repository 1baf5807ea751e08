"""Train an nfi (or TRADES) model: python -m nfi_tf.train --dataset=mnist --model_dir=DIR

Flags -> config -> `training.train_and_evaluate`; presets are TRADES' settings per dataset.
"""

from nfi_tf import cli  # noqa: I001  (sets TF's log level before TensorFlow loads)

from absl import app
from absl import flags as absl_flags

from flags import train as train_flags
from nfi_tf import outputs

train_flags.define_train_flags()
FLAGS = absl_flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = train_flags.train_config_from_flags(FLAGS)
    cli.split_cpu_if_asked(FLAGS.cpu_devices)
    from nfi_tf.training import train_and_evaluate

    summary = train_and_evaluate(config, FLAGS.model_dir, download=FLAGS.download)
    test = summary["final_test"]
    print(f"done: {summary['steps']} steps; model and summary in {FLAGS.model_dir}")
    if test:
        for name in (outputs.ROUTED, outputs.TRADEOFF):
            if f"clean_{name}" in test:
                print(f"  {name:9s} clean accuracy {100 * test[f'clean_{name}']:.2f}%   "
                      f"PGD-{config.eval_attack.num_steps} (on the trade-off head) accuracy "
                      f"{100 * test[f'pgd_{name}']:.2f}%   [{test['examples']} test images]")


def run():
    cli.run_command("nfi_tf.train", main)


if __name__ == "__main__":
    run()
