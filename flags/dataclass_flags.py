"""absl flags generated from config dataclasses: a setting is declared once, as a field.

A field's `metadata` carries what only the command line needs:

    help   the help text (required for every field that becomes a flag)
    flag   the flag's name when it is not the field's (`num_steps` -> `--attack_steps`)
    none   what a `None` default means ("the whole test split"), shown as the default
    kind   the absl kind when it is not the type's own: "string" for a tuple typed as one
           comma-separated string (`--lr_decay_epochs=55,75,90`, '' for none)
    flag_default  the flag's default when its command-line spelling differs from the field's
           (`--suite=all` for every suite)
    required  the flag must be given although the field has a default (`--classes`: a
           config built in code may start empty, a command line may not); a field without a
           default is a required flag anyway

The flag's type and default come from the field's type and default, so `--help` cannot drift
from the config: bool, int, float, str, an Enum class, a tuple of those (a comma-separated list)
and `X | None` of any of them. Commands whose flags mean "unset: someone else decides" (training:
the dataset preset) pass `unset=True`, so every flag defaults to None, and `default_text`, which
says what that someone else gives. Values are checked by the config's own `validate`; this
module only turns command-line text into field values, with a one-line NfiError on bad text.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from absl import flags

from nfi_tf.errors import NfiError

_SCALARS = {bool: "bool", int: "integer", float: "float", str: "string"}
_DEFINE = {"bool": flags.DEFINE_bool, "integer": flags.DEFINE_integer,
           "float": flags.DEFINE_float, "string": flags.DEFINE_string, "list": flags.DEFINE_list}
_ELEMENT_WORDS = {int: "integers", float: "numbers", str: "names"}


@dataclasses.dataclass(frozen=True)
class FlagSpec:
    """One flag made from one dataclass field."""

    flag: str
    field: str
    kind: str  # "bool", "integer", "float", "string", "list" or "enum"
    base: type  # the field's type without None (for a tuple: its element type)
    is_tuple: bool
    optional: bool
    default: Any  # the field's default (dataclasses.MISSING when it has none)
    help: str
    none: str | None  # what None means, from the metadata
    flag_default: Any  # metadata's flag_default, or MISSING
    required: bool = False  # the command line must give it


def _unwrap(hint) -> tuple[type, bool, bool]:
    """(base type, is a tuple, may be None) of a field type such as `tuple[int, ...] | None`."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"unsupported field type {hint!r}: one type or one type | None")
        hint, optional = args[0], True
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if len(args) != 2 or args[1] is not Ellipsis:
            raise TypeError(f"unsupported field type {hint!r}: tuples are tuple[X, ...]")
        return args[0], True, optional
    return hint, False, optional


def flag_specs(cls: type, *, prefix: str = "", exclude: Iterable[str] = (), help_prefix: str = "",
               metadata: Mapping[str, Mapping[str, Any]] | None = None) -> list[FlagSpec]:
    """The flags of `cls`'s fields (all but `exclude`): each field must carry help metadata, so
    a new setting cannot reach the config without reaching the command line (or being excluded
    at the call site, where the reason is written). `metadata`: {field: metadata} declared
    elsewhere (the attack registry's budgets); the field's own metadata takes precedence."""
    hints = typing.get_type_hints(cls)
    exclude = set(exclude)
    unknown = exclude - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise TypeError(f"{cls.__name__} has no fields {sorted(unknown)} to exclude")
    specs = []
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        meta = {**(metadata or {}).get(f.name, {}), **f.metadata}
        if not meta.get("help"):
            raise TypeError(f"{cls.__name__}.{f.name} has no help: give the field "
                            f"metadata={{'help': ...}} (it becomes a flag), or exclude it")
        base, is_tuple, optional = _unwrap(hints[f.name])
        if "kind" in meta:
            kind = meta["kind"]
        elif is_tuple:
            kind = "list"
        elif isinstance(base, type) and issubclass(base, enum.Enum):
            kind = "enum"
        elif base in _SCALARS:
            kind = _SCALARS[base]
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no flag type for {hints[f.name]!r}")
        default = f.default
        if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        specs.append(FlagSpec(
            flag=prefix + meta.get("flag", f.name), field=f.name, kind=kind, base=base,
            is_tuple=is_tuple, optional=optional, default=default,
            help=help_prefix + meta["help"], none=meta.get("none"),
            flag_default=meta.get("flag_default", dataclasses.MISSING),
            required=meta.get("required", default is dataclasses.MISSING)))
    return specs


def format_value(value: Any) -> str:
    """A value as it is written on the command line: 0.031, true, 55,75,90, ''."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return str(value.name).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (tuple, list)):
        return ",".join(format_value(v) for v in value) or "''"
    return str(value)


def _flag_default(spec: FlagSpec) -> Any:
    """The field's default in the flag's own form (a list flag takes a list of strings)."""
    if spec.flag_default is not dataclasses.MISSING:
        return spec.flag_default
    value = spec.default
    if value is None or value is dataclasses.MISSING:
        return None
    if spec.kind == "list":
        return [format_value(v) for v in value]
    if spec.kind == "string" and spec.is_tuple:
        return format_value(value)
    return value


def help_text(spec: FlagSpec, *, unset: bool = False,
              default_text: Callable[[FlagSpec], str | None] | None = None) -> str:
    """The flag's help. absl shows a default that is not None itself; for a flag defaulting to
    None the default is written into the help: `default_text(spec)` (e.g. the presets'
    values), else what the field's default is or what its None means."""
    if spec.required or (not unset and _flag_default(spec) is not None):
        return spec.help  # a required flag, or absl shows the default
    text = default_text(spec) if default_text else None
    if text is None:
        if spec.default is None:
            if spec.none is None:
                raise TypeError(f"field {spec.field} defaults to None: say what None means with "
                                f"metadata={{'none': ...}}")
            text = spec.none
        else:
            text = format_value(spec.default)
    return f"{spec.help} (default: {text})"


def define(specs: Iterable[FlagSpec], *, unset: bool = False,
           default_text: Callable[[FlagSpec], str | None] | None = None,
           flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Define one absl flag per spec. `unset`: every flag defaults to None ("not given"). A
    required flag (a field without a default, or metadata `required`) defaults to None."""
    for spec in specs:
        default = None if unset or spec.required else _flag_default(spec)
        help_ = help_text(spec, unset=unset, default_text=default_text)
        if spec.kind == "enum":
            flags.DEFINE_enum_class(spec.flag, default, spec.base, help_, flag_values=flag_values)
        else:
            _DEFINE[spec.kind](spec.flag, default, help_, flag_values=flag_values)
        if spec.required:
            flags.mark_flag_as_required(spec.flag, flag_values=flag_values)


def _split(spec: FlagSpec, raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = raw.strip()
        return [v.strip() for v in raw.split(",")] if raw else []
    return list(raw)


def convert(spec: FlagSpec, raw: Any) -> Any:
    """A flag's value as the field's value; a malformed list is a one-line NfiError."""
    if raw is None or not spec.is_tuple:
        return raw
    items = _split(spec, raw)
    if not items and spec.optional:
        return None  # an empty list means the field's "unset"
    try:
        return tuple(spec.base(v) for v in items)
    except ValueError as e:
        words = _ELEMENT_WORDS.get(spec.base, "values")
        text = raw if isinstance(raw, str) else ",".join(raw)
        raise NfiError(f"--{spec.flag}: expected a comma-separated list of {words}. "
                       f"Received: {spec.flag}={text!r}") from e


def values_from_flags(values: flags.FlagValues | Mapping, specs: Iterable[FlagSpec], *,
                      skip_none: bool = False,
                      converters: Mapping[str, Callable[[Any], Any]] | None = None) -> dict[str, Any]:
    """{field: value} read back from the flags. `skip_none`: leave out flags not given (value
    None), so whatever decides their defaults (the dataset preset) still does. `converters`:
    field -> a function of the raw flag value, for the few values with their own syntax."""
    out = {}
    for spec in specs:
        raw = values[spec.flag].value
        if raw is None and skip_none:
            continue
        if converters and spec.field in converters:
            out[spec.field] = converters[spec.field](raw)
        else:
            out[spec.field] = convert(spec, raw)
    return out
