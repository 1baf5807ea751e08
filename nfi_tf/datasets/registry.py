"""The data sources `--dataset` can name, registered once, and the one that claims a value.

A source is one module holding a `SourceSpec` (what `--dataset` values it claims, how it reads
its image shape cheaply, how it opens as a `DataSource`) and one line registering it: the
built-in three in `nfi_tf/datasets/__init__.py`,

    registry.register(npz.SPEC)

Everything else asks the registry: `parse` (which source a value names, made canonical),
`nfi_tf.datasets.probe.preset_shape` (the image shape a derived preset reads), `open_source`
(the source of a data config, behind every function of `nfi_tf.data`).

Claiming order: a value starting with a source's `prefix` (`folder:`, `npz:`) is that
source's; else the sources are asked, the latest registered first, whether they `claim` the
bare value (`PATH.npz`, an existing directory, a name), so a source you register is asked
before the built-in ones; else the `fallback` source takes it (tfds: any other value is a
tensorflow-datasets name, checked when it is read).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from nfi_tf.errors import NfiError

if TYPE_CHECKING:
    from nfi_tf.datasets.data_source import DataSource

# An nfi_tf.config.DataConfig (frozen, hashable). Not imported, even for typing: the config
# imports this module (through probe) when it derives a preset.
DataConfig = Any

# (height, width, channels); height and width None for a tfds set of variable-size images
ImageShape = tuple[int | None, int | None, int]


def _never(value: str) -> bool:
    return False


@dataclasses.dataclass(frozen=True)
class SourceSpec:
    """One kind of data source: the facts the rest of the library asks it."""

    name: str  # unique: "tfds", "folder", "npz", ...
    # (data config, parsed --dataset, download allowed) -> the source, checked (one-line errors)
    open: Callable[[DataConfig, DatasetSpec, bool], DataSource]
    # (parsed --dataset, data_dir) -> (height, width, channels), cheaply (one header), for presets
    image_shape: Callable[[DatasetSpec, str | None], ImageShape]
    form: str = ""  # how --dataset names it, in "dataset must be ..." errors
    prefix: str | None = None  # a value starting with it is this source's ("npz:")
    claims: Callable[[str], bool] = _never  # the bare values it takes ("x.npz", "toy_stripes")
    # A claimed value -> its canonical form (an absolute path, so config.json works from any
    # directory), raising a one-line NfiError when it names nothing; default: the value.
    canonical: Callable[[str], str] | None = None
    fallback: bool = False  # takes every value no other source claims (one source at most)
    # A cheap check that the value can exist, run before any other setting is checked.
    check_known: Callable[[DatasetSpec], None] | None = None
    # Where the source reads from, when that can change under one config (tfds: TFDS_DATA_DIR):
    # part of the opened source's cache key, so a source never outlives a change of it.
    location: Callable[[DataConfig], str] | None = None


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a `--dataset` value names: its source and its canonical value."""

    source: SourceSpec
    name: str  # the canonical --dataset value: a tfds name, folder:/abs/path, npz:/abs/file

    @property
    def kind(self) -> str:
        return self.source.name

    @property
    def path(self) -> str | None:
        """The value without its source's prefix (a path), None for a prefixless source."""
        prefix = self.source.prefix
        return self.name[len(prefix):] if prefix and self.name.startswith(prefix) else None


_SOURCES: dict[str, SourceSpec] = {}  # in registration order


def register(spec: SourceSpec) -> SourceSpec:
    """Make `spec`'s values nameable by `--dataset` (and by `make_config`)."""
    if spec.name in _SOURCES:
        raise NfiError(f"a data source named {spec.name!r} is registered already: unregister it "
                       f"first or pick another name. Received: name={spec.name!r}")
    for other in _SOURCES.values():
        if spec.fallback and other.fallback:
            raise NfiError(f"{other.name!r} is the fallback source already: one source at most "
                           f"takes the unclaimed values. Received: {spec.name!r} with fallback=True")
        if spec.prefix and other.prefix and (spec.prefix.startswith(other.prefix)
                                             or other.prefix.startswith(spec.prefix)):
            raise NfiError(f"prefix {spec.prefix!r} overlaps {other.name!r}'s {other.prefix!r}. "
                           f"Received: {spec.name!r} with prefix={spec.prefix!r}")
    _SOURCES[spec.name] = spec
    _open.cache_clear()
    return spec


def unregister(name: str | SourceSpec) -> None:
    """Forget a registered source (tests register toy sources and remove them)."""
    key = name.name if isinstance(name, SourceSpec) else name
    if key not in _SOURCES:
        raise NfiError(f"no data source named {key!r} is registered (registered: "
                       f"{sorted(_SOURCES)}). Received: name={key!r}")
    del _SOURCES[key]
    _open.cache_clear()


@contextlib.contextmanager
def registered(spec: SourceSpec) -> Iterator[SourceSpec]:
    """`spec` registered for the duration of a `with` block."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec)


def sources() -> tuple[SourceSpec, ...]:
    """The registered sources in the order they are asked: the latest first, the fallback last."""
    latest_first = reversed(_SOURCES.values())
    return tuple(sorted(latest_first, key=lambda s: s.fallback))  # a stable sort


def forms() -> str:
    """Every way `--dataset` can name data, for errors: 'a tensorflow-datasets name (...), ...'."""
    named = [s.form for s in sorted(_SOURCES.values(), key=lambda s: not s.fallback) if s.form]
    return ", ".join(named[:-1]) + f" or {named[-1]}" if len(named) > 1 else "".join(named)


def parse(dataset: str) -> DatasetSpec:
    """The source `dataset` names, with its canonical value (a one-line error when none does,
    or when the file or folder it names is missing)."""
    if not dataset:
        raise NfiError(f"dataset must be {forms()}. Received: dataset=''")
    ordered = sources()
    source = (next((s for s in ordered if s.prefix and dataset.startswith(s.prefix)), None)
              or next((s for s in ordered if not s.fallback and s.claims(dataset)), None)
              or next((s for s in ordered if s.fallback), None))
    if source is None:
        raise NfiError(f"dataset must be {forms()}. Received: dataset={dataset!r}")
    return DatasetSpec(source, source.canonical(dataset) if source.canonical else dataset)


def absolute(path: str) -> str:
    """`path` made absolute, `~` expanded (a path in config.json works from any directory)."""
    return os.path.abspath(os.path.expanduser(path))


def open_source(cfg: DataConfig, download: bool = True) -> DataSource:
    """The data config's source, opened once per config and per where its source reads from:
    a tfds source opened while the data was there must not outlive a change of TFDS_DATA_DIR."""
    spec = parse(cfg.dataset)
    where = spec.source.location(cfg) if spec.source.location else None
    return _open(cfg, download, where)


@functools.lru_cache(maxsize=16)
def _open(cfg: DataConfig, download: bool, where: str | None) -> DataSource:
    del where  # part of the cache key only
    spec = parse(cfg.dataset)
    return spec.source.open(cfg, spec, download)
