"""`python -m nfi_tf.theory`: the command is nfi_tf.commands.theory."""

from nfi_tf.commands.theory import run

run()
