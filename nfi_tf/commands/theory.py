"""How many heads? python -m nfi_tf.theory [--test_size=N --p=P] (console script `nfi-theory`)

Flags -> TheoryConfig -> the printed bound; the bound itself is the library nfi_tf.theory.
"""

from absl import flags as absl_flags

from flags import theory as theory_flags
from nfi_tf.commands.entry import run_command
from nfi_tf.theory import report


def main(argv):
    print(report(theory_flags.theory_config_from_flags(absl_flags.FLAGS)))


def run():
    run_command("nfi_tf.theory", main, define_flags=theory_flags.define_theory_flags)
