"""The command of `python -m nfi_tf.theory` (console script `nfi-theory`): flags -> TheoryConfig ->
the printed bound. The bound itself is the library module nfi_tf.theory, which imports no flags.
"""

from absl import app
from absl import flags as absl_flags

from flags import theory as theory_flags
from nfi_tf import cli
from nfi_tf.theory import report


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print(report(theory_flags.theory_config_from_flags(absl_flags.FLAGS)))


def run():
    theory_flags.define_theory_flags()
    cli.run_command("nfi_tf.theory", main)


if __name__ == "__main__":
    run()
