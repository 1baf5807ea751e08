"""The backbone registry: every `--backbone` value is claimed by one `BackboneSpec`.

A spec says everything the rest of the library needs to know about one backbone: the
`--backbone` value it claims (a family, e.g. `keras.applications.`, claims every value that
starts with its name), how to build the Keras feature extractor for an image shape and a
ModelConfig, its feature size D (for the robust_dims range and default), its own config
checks, the input preprocessing it expects and the model settings it comes with.
Config validation, `build_classifier` and the trainer only ask the registry, so adding a
backbone is one module holding its spec (and its network) plus one `register` line:

    SPEC = registry.BackboneSpec(
        name="tiny_cnn", feature_dims=lambda model: 32,
        build=lambda model, image_shape: TinyCNN(image_shape, model.width, name="backbone"))
    registry.register(SPEC)

Specs take the ModelConfig duck-typed (`Any`): this module sits below nfi_tf.config, which
imports it, so it cannot import the config back.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from nfi_tf.backbones.preprocessing import NO_PREPROCESSING
from nfi_tf.errors import NfiError

DEFAULT_ROBUST_DIMS = 128


def _no_checks(model_config: Any) -> None:
    """A backbone whose settings need no checks beyond the generic ones."""


def _no_preprocessing(backbone: str) -> str:
    return NO_PREPROCESSING


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    name: str  # the --backbone value (a family: the prefix of its values, e.g. keras.applications.)
    # (ModelConfig, image shape (h, w, c)) -> a keras.Model mapping [0, 1]-pixel images (after
    # `preprocessing`) to a feature vector (B, D) or a map (B, H, W, D), globally average-pooled.
    build: Callable[[Any, tuple], Any]
    # ModelConfig -> D; None: D is known only once the model is built (a custom backbone).
    feature_dims: Callable[[Any], int] | None
    # ModelConfig -> None, raising a one-line NfiError on a setting this backbone cannot take.
    validate: Callable[[Any], None] = _no_checks
    family: bool = False  # `name` is a prefix: the spec claims every value starting with it
    usage: str = ""  # how errors name it among the choices (default: its name)
    listed: bool = True  # named among --backbone's choices (custom is given from Python only)
    weights: bool = False  # takes --backbone_weights (a local weights file)
    preprocessing: Callable[[str], str] = _no_preprocessing  # backbone value -> preprocessing mode
    # Model settings it comes with whenever it is chosen (config.make_config: the dataset
    # preset's settings for it and the user's overrides go over them), e.g. WRN-34-10's.
    preset: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def claims(self, backbone: str) -> bool:
        if not isinstance(backbone, str):
            return False
        return backbone.startswith(self.name) if self.family else backbone == self.name

    @property
    def title(self) -> str:
        return self.usage or self.name


_SPECS: dict[str, BackboneSpec] = {}


def register(spec: BackboneSpec) -> BackboneSpec:
    """Make `spec`'s values nameable by `--backbone` (and by ModelConfig). A value two specs
    claim would be ambiguous: a name or family overlapping a registered one is refused."""
    clash = next((s.name for s in _SPECS.values() if s.claims(spec.name) or spec.claims(s.name)), None)
    if clash is not None:
        raise NfiError(f"a backbone claiming {clash!r} is registered already: unregister it first or "
                       f"pick another name. Received: name={spec.name!r}")
    _SPECS[spec.name] = spec
    return spec


def unregister(name: str | BackboneSpec) -> None:
    """Forget a registered backbone (tests register toy backbones and remove them)."""
    key = name.name if isinstance(name, BackboneSpec) else name
    if key not in _SPECS:
        raise NfiError(f"no backbone named {key!r} is registered (registered: {sorted(_SPECS)}). "
                       f"Received: name={key!r}")
    del _SPECS[key]


@contextlib.contextmanager
def registered(spec: BackboneSpec) -> Iterator[BackboneSpec]:
    """`spec` registered for the duration of a `with` block."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec)


def specs() -> tuple[BackboneSpec, ...]:
    """Every registered backbone, in registration order."""
    return tuple(_SPECS.values())


def lookup(backbone: str) -> BackboneSpec | None:
    """The spec claiming a --backbone value (an exact name before a family), or None."""
    exact = _SPECS.get(backbone) if isinstance(backbone, str) else None
    return exact or next((s for s in _SPECS.values() if s.claims(backbone)), None)


def choices() -> str:
    """The --backbone values errors name: "('small_cnn', 'wide_resnet') or keras.applications.NAME
    (e.g. ...)"."""
    named = tuple(s.name for s in _SPECS.values() if s.listed and not s.family)
    families = [s.title for s in _SPECS.values() if s.listed and s.family]
    return " or ".join([str(named)] + families)


def get(backbone: str) -> BackboneSpec:
    """The spec claiming `backbone`, or a one-line NfiError naming the choices."""
    spec = lookup(backbone)
    if spec is None:
        raise NfiError(f"backbone must be one of {choices()}. Received: backbone={backbone!r}")
    return spec


def known_feature_dims(model_config: Any) -> int | None:
    """D of the backbone a ModelConfig names, or None when it is not known before building (a
    custom backbone, an unregistered name, or a value its spec's validation rejects)."""
    spec = lookup(model_config.backbone)
    if spec is None or spec.feature_dims is None:
        return None
    try:
        return spec.feature_dims(model_config)
    except ValueError:  # e.g. an unknown keras.applications name: validate() says so
        return None


def preset(backbone: str) -> dict[str, Any]:
    """The model settings a dataset preset gives `backbone`: {"backbone": ..., **its preset}."""
    return {"backbone": backbone, **get(backbone).preset}


def default_robust_dims(dims: int) -> int:
    """d when not given: 128 if 128 < D, else D // 2 (so every backbone has a valid default)."""
    return DEFAULT_ROBUST_DIMS if DEFAULT_ROBUST_DIMS < dims else dims // 2
