"""`python -m nfi_tf.train`: the command is nfi_tf.commands.train (flags -> config -> library)."""

from nfi_tf.commands.train import run

if __name__ == "__main__":
    run()
