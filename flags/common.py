"""Flags shared by several commands."""

from absl import flags


def define_model_dir(required: bool = True, help_text: str = "The model directory.") -> None:
    flags.DEFINE_string("model_dir", None, help_text)
    if required:
        flags.mark_flag_as_required("model_dir")


def define_data_dir() -> None:
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data dir; default: tfds' own "
                        "(~/tensorflow_datasets, or $TFDS_DATA_DIR when set).")
    flags.DEFINE_bool("download", True, "Download the dataset when it is not in the data dir.")


def define_seed() -> None:
    flags.DEFINE_integer("seed", None, "Random seed (default: the training seed, or 0).")


def define_cpu_devices() -> None:
    flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices "
                         "(to run --strategy=mirrored without accelerators). 0: do not split.")


def parse_int_list(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    text = text.strip()
    if not text:
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError as e:
        from nfi_tf.errors import NfiError

        raise NfiError(f"expected a comma-separated list of integers. Received: {text!r}") from e
