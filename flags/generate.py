"""Flags of `python -m nfi_tf.generate`, and the SynthesisConfig they build."""

from absl import flags

from flags import common
from nfi_tf.synthesis import SynthesisConfig, validate

_D = SynthesisConfig.__dataclass_fields__


def define_generate_flags() -> None:
    common.define_model_dir(help_text="A model dir written by python -m nfi_tf.train.")
    common.define_data_dir()
    common.define_seed()
    flags.DEFINE_list("classes", None, "Comma-separated class names or indices to synthesize "
                      "(e.g. dog,cat or 3,5).")
    flags.mark_flag_as_required("classes")
    flags.DEFINE_string("out", None, "Output directory: a PNG grid and a JSON report per class, "
                        "overview.png and summary.json.")
    flags.mark_flag_as_required("out")
    flags.DEFINE_integer("per_class", _D["per_class"].default, "Images per class.")
    flags.DEFINE_float("radius", None, "L2 radius around the seed, in [0, 1] pixel units "
                       "(default: 0.25 * sqrt(pixels): 7.0 on MNIST, 13.9 on CIFAR-10).")
    flags.DEFINE_integer("steps", _D["steps"].default, "Gradient steps per stage.")
    flags.DEFINE_float("step_size", None, "L2 length of one step (default: 2.5 * radius / steps).")
    flags.DEFINE_integer("components", _D["components"].default,
                         "Principal components of the class-conditional seed Gaussian.")
    flags.DEFINE_integer("fit_examples", _D["fit_examples"].default,
                         "Fit the seed Gaussians on the first N training images.")


def generate_config_from_flags(values: flags.FlagValues, default_seed: int = 0) -> SynthesisConfig:
    """The one place where generate flags become a SynthesisConfig (seed None -> default_seed)."""
    seed = values["seed"].value
    return validate(SynthesisConfig(
        classes=tuple(c.strip() for c in values["classes"].value if c.strip()),
        per_class=values["per_class"].value,
        radius=values["radius"].value,
        steps=values["steps"].value,
        step_size=values["step_size"].value,
        seed=default_seed if seed is None else seed,
        components=values["components"].value,
        fit_examples=values["fit_examples"].value,
    ))
