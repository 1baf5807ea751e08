"""`python -m nfi_tf.evaluate`: the command is nfi_tf.commands.evaluate (flags -> config -> library)."""

from nfi_tf.commands.evaluate import run

if __name__ == "__main__":
    run()
