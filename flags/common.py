"""Flags shared by several commands."""

from absl import flags

FLAGS = flags.FLAGS


def define_model_dir(required: bool = True, help_text: str = "The model directory.",
                     flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string("model_dir", None, help_text, flag_values=flag_values)
    if required:
        flags.mark_flag_as_required("model_dir", flag_values=flag_values)


def define_data_dir(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_string("data_dir", None, "tensorflow-datasets data dir; default: tfds' own "
                        "(~/tensorflow_datasets, or $TFDS_DATA_DIR when set).",
                        flag_values=flag_values)
    define_download(flag_values)


def define_download(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_bool("download", True, "Download the dataset when it is not in the data dir.",
                      flag_values=flag_values)


def define_seed(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_integer("seed", None, "Random seed (default: the training seed, or 0).",
                         flag_values=flag_values)


def define_cpu_devices(flag_values: flags.FlagValues = FLAGS) -> None:
    flags.DEFINE_integer("cpu_devices", 0, "Split the CPU into this many logical devices "
                         "(to run --strategy=mirrored without accelerators). 0: do not split.",
                         flag_values=flag_values)

