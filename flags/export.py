"""Flags of `python -m export.to_onnx` and `python -m export.predict`, and the configs they
build. (The serving benchmark's are made from bench.config.ServeModelConfig: flags/bench.py.)"""

from absl import flags

from export import providers as providers_lib
from export.config import (
    ExportConfig,
    PredictConfig,
    SessionConfig,
    validate_export,
    validate_predict,
)
from flags import common
from flags import dataclass_flags as dcf

FLAGS = flags.FLAGS


def export_specs() -> list[dcf.FlagSpec]:
    # model_dir is every command's shared flag; batch_size has never been a flag.
    return dcf.flag_specs(ExportConfig, exclude=("model_dir", "batch_size"))


def session_specs() -> list[dcf.FlagSpec]:
    # Settings tuned in code, not from the command line (export/config.py says why).
    return dcf.flag_specs(SessionConfig, exclude=("allow_spinning", "log_severity",
                                                  "io_binding_batch1", "device_io_binding"))


def predict_specs() -> list[dcf.FlagSpec]:
    # The images are the command's arguments; the session has its own flags.
    return dcf.flag_specs(PredictConfig, exclude=("images", "session"))


def define_export_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train.",
                            flag_values=flag_values)
    dcf.define(export_specs(), flag_values=flag_values)
    common.define_download(flag_values)


def export_config_from_flags(values: flags.FlagValues) -> ExportConfig:
    return validate_export(ExportConfig(model_dir=values["model_dir"].value,
                                        **dcf.values_from_flags(values, export_specs())))


def define_session_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    dcf.define(session_specs(), flag_values=flag_values)


def session_config_from_flags(values: flags.FlagValues) -> SessionConfig:
    return SessionConfig(**dcf.values_from_flags(
        values, session_specs(), converters={"providers": providers_lib.group_flag_tokens}))


def define_predict_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    dcf.define(predict_specs(), flag_values=flag_values)
    define_session_flags(flag_values)


def predict_config_from_flags(values: flags.FlagValues, images: list[str]) -> PredictConfig:
    return validate_predict(PredictConfig(images=tuple(images),
                                          session=session_config_from_flags(values),
                                          **dcf.values_from_flags(values, predict_specs())))
