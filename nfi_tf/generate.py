"""`python -m nfi_tf.generate`: the command is nfi_tf.commands.generate (flags -> config -> library)."""

from nfi_tf.commands.generate import run

if __name__ == "__main__":
    run()
