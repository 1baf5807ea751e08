"""The typed sections of an evaluation report (eval.json's nested objects).

Each section is a dataclass with `to_json()` (the layout every release wrote) and
`from_json(data)` (which also reads the files of earlier releases, where a field may be absent).
Attack keys are `AttackKey`s in memory and their text in the file.

    Settings       the threat model, each attack's settings entry (its registry spec's), what ran
    Checks         per attack: the largest |x' - x|_inf seen and the pixel range of x'
    OnnxSummary    the exported model scored and attacked through ONNX Runtime (--onnx)
    RoutedSummary  the routed model attack by attack, the naive-vs-worst gap, the trade-off head's
    RouteStats     how often each route fires (clean, worst-case adversarial, per attack)
    OverlapSummary Figure 1 (right): top-k feature dims shared, summary means
"""

from __future__ import annotations

import dataclasses
from typing import Any

from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.vocab import Column, WorstCaseMode
from nfi_tf.outputs import ROUTE_NAMES
from nfi_tf.vocab import Norm

_CLEAN = Column.CLEAN.value  # eval.json's name of the clean inputs' route shares
Cumulative = dict[str, dict[str, float]]  # output -> attack (in run order) -> robust accuracy


def _keyed(d: dict) -> dict[AttackKey, Any]:
    return {AttackKey.parse(k): v for k, v in d.items()}


def _texts(d: dict) -> dict[str, Any]:
    return {str(k): v for k, v in d.items()}


# The settings' fixed fields, in eval.json's names; every other object-valued entry is an
# attack's own (its spec's `entry`).
_SETTINGS_FIELDS = ("epsilon", "norm", "worst_case_mode", "autoattack_deviations", "attacks",
                    "attack_outputs", "batch_size", "onnx", "split", "model")


@dataclasses.dataclass
class Settings:
    epsilon: float
    norm: Norm = Norm.LINF
    entries: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)  # attack entries
    worst_case_mode: WorstCaseMode | None = None
    autoattack_deviations: list[str] = dataclasses.field(default_factory=list)
    attacks: list[str] = dataclasses.field(default_factory=list)  # what --attacks asked
    attack_outputs: list[str] | None = None
    batch_size: int | None = None
    onnx: str | None = None
    split: str = "test"
    model: str | None = None  # what was evaluated and how it was wrapped (any classifier)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # fields this release does not know

    def entry(self, name: str) -> dict[str, Any]:
        """An attack's settings entry (its registry spec's `entry` name)."""
        return self.entries[name]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"epsilon": self.epsilon, "norm": self.norm, **self.entries}
        for name in _SETTINGS_FIELDS[2:]:
            value = getattr(self, name)
            if name == "model" and value is None:
                continue  # only a classifier nfi-tf did not train has a description
            if name == "split" and value is None:
                continue
            out[name] = value
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Settings:
        known = {k: data[k] for k in _SETTINGS_FIELDS if k in data}
        if "norm" in known:
            known["norm"] = Norm(known["norm"])
        if known.get("worst_case_mode") is not None:
            known["worst_case_mode"] = WorstCaseMode(known["worst_case_mode"])
        rest = {k: v for k, v in data.items() if k not in _SETTINGS_FIELDS}
        entries = {k: v for k, v in rest.items() if isinstance(v, dict)}
        extra = {k: v for k, v in rest.items() if k not in entries}
        return cls(entries=entries, extra=extra, **known)


@dataclasses.dataclass
class Checks:
    max_linf: dict[AttackKey, float] = dataclasses.field(default_factory=dict)
    pixel_range: dict[AttackKey, tuple[float, float]] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"max_linf": _texts(self.max_linf),
                "pixel_range": {str(k): list(v) for k, v in self.pixel_range.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Checks:
        return cls(_keyed(data.get("max_linf", {})),
                   {AttackKey.parse(k): tuple(v) for k, v in data.get("pixel_range", {}).items()})


@dataclasses.dataclass
class OnnxSummary:
    clean: float
    square_onnx: float
    transfer_of_every_keras_attack: float
    worst_case: float
    keras_routed_worst_case: float | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OnnxSummary:
        return cls(**data)


@dataclasses.dataclass
class RoutedSummary:
    by_attack: dict[AttackKey, float]
    naive_hard_switch_pgd: float | None
    worst_case: float
    gap_naive_minus_worst_case: float | None
    tradeoff_pgd: float | None = None
    tradeoff_worst_case: float | None = None
    tradeoff_gap_pgd_minus_worst_case: float | None = None

    def to_json(self) -> dict[str, Any]:
        # Not dataclasses.asdict: it would recurse into the keys (AttackKey is a dataclass too).
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**fields, "by_attack": _texts(self.by_attack)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutedSummary:
        return cls(**{**data, "by_attack": _keyed(data.get("by_attack", {}))})


@dataclasses.dataclass
class RouteShare:
    count: int
    share: float
    accuracy: float | None  # None for a route that never fired


def _shares(data: dict[str, Any]) -> dict[str, RouteShare]:
    return {name: RouteShare(**v) for name, v in data.items()}


@dataclasses.dataclass
class RouteStats:
    clean: dict[str, RouteShare]  # route name (outputs.ROUTE_NAMES) -> share
    worst_case_adversarial: dict[str, RouteShare]
    share_by_attack: dict[AttackKey, dict[str, float]] = dataclasses.field(default_factory=dict)

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(r for r in ROUTE_NAMES if r in self.clean)

    def to_json(self) -> dict[str, Any]:
        return {_CLEAN: {k: dataclasses.asdict(v) for k, v in self.clean.items()},
                "worst_case_adversarial": {k: dataclasses.asdict(v)
                                           for k, v in self.worst_case_adversarial.items()},
                "share_by_attack": _texts(self.share_by_attack)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RouteStats:
        return cls(_shares(data[_CLEAN]), _shares(data["worst_case_adversarial"]),
                   _keyed(data.get("share_by_attack", {})))


@dataclasses.dataclass
class OverlapSummary:
    attack: AttackKey  # the attack whose inputs were read
    k: int
    summary: dict[str, float | None]  # feature_overlap.analyse's summary means
    json: str | None = None  # the matrices' file beside eval.json (none for an in-memory run)
    png: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {"attack": str(self.attack), "k": self.k, "summary": self.summary}
        if self.json is not None:
            out.update(json=self.json, png=self.png)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OverlapSummary:
        return cls(AttackKey.parse(data["attack"]), data["k"], data["summary"], data.get("json"),
                   data.get("png"))


SECTIONS = {"settings": Settings, "checks": Checks, "onnx": OnnxSummary,
            "routed_adaptive": RoutedSummary, "route_stats": RouteStats,
            "feature_overlap": OverlapSummary}
