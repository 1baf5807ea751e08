"""Flags of `python -m nfi_tf.theory`, and the TheoryConfig they build."""

from absl import flags

from nfi_tf.errors import NfiError
from nfi_tf.theory import TheoryConfig

_D = TheoryConfig.__dataclass_fields__


def define_theory_flags() -> None:
    flags.DEFINE_integer("test_size", _D["test_size"].default, "|S|: the number of test samples.")
    flags.DEFINE_float("p", _D["p"].default, "Robust accuracy of one head, 1/2 < p <= 1.")
    flags.DEFINE_float("epsilon", None, "Allowed attack success probability: use log(|S|/epsilon) "
                       "as the derivation gives, instead of eq. 21's printed log(|S|/2).")
    flags.DEFINE_list("table_sizes", [str(s) for s in _D["table_sizes"].default],
                      "Test-set sizes (rows of the table).")
    flags.DEFINE_list("table_p", [str(p) for p in _D["table_accuracies"].default],
                      "Head accuracies (columns of the table).")


def _numbers(name: str, values: list[str], kind):
    try:
        return tuple(kind(float(v)) if kind is int else kind(v) for v in values)
    except ValueError as e:
        raise NfiError(f"--{name} takes comma-separated numbers. Received: {name}={values!r}") from e


def theory_config_from_flags(values: flags.FlagValues) -> TheoryConfig:
    return TheoryConfig(
        test_size=values["test_size"].value,
        p=values["p"].value,
        epsilon=values["epsilon"].value,
        table_sizes=_numbers("table_sizes", values["table_sizes"].value, int),
        table_accuracies=_numbers("table_p", values["table_p"].value, float),
    )
