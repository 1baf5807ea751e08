"""The evaluation's vocabularies as types: report columns, switch relaxations, route-aware
variants. Each member's text is written here only (tests/test_layers.py); files (eval.json,
eval.npz) and flags keep exactly these texts.

    Column        a column of the evaluation table, and what `--attacks` names: the clean
                  inputs, each registered attack's column, AutoAttack's suite, the worst case.
                  A registered attack outside the built-ins adds its own column name (a str).
    WorstCaseMode per-attack columns on every image, or the worst case in cascade.
    Switch        how a gradient attack on the routed model sees its switch: the selected
                  head's gradient (hard), straight-through, or the soft mixture.
    RouteVariant  one route-aware attack: all heads at once, steering onto a route, or the
                  switch relaxed at a temperature. A value with fields; its text form
                  (`benign_route`, `st_T0.1`) exists only in files and seeds.
"""

from __future__ import annotations

import dataclasses
import re

from nfi_tf import outputs
from nfi_tf.vocab import StrEnum


class Column(StrEnum):
    CLEAN = "clean"
    PGD = "pgd"
    CW = "cw"
    APGD_CE = "apgd_ce"
    APGD_T = "apgd_t"
    FAB_T = "fab_t"
    SQUARE = "square"
    AUTOATTACK = "autoattack"  # AutoAttack's suite, run its way (one cumulative column)
    ROUTE_AWARE = "route_aware"
    WORST_CASE = "worst_case"


class WorstCaseMode(StrEnum):
    COLUMNS = "columns"  # every attack on every image: per-attack columns
    CASCADE = "cascade"  # each attack only on what every earlier one left robust


class Switch(StrEnum):
    HARD = "hard"  # the selected head's own gradient
    STRAIGHT_THROUGH = "st"  # forward: the hard output; backward: plus the soft route weights'
    SOFT = "soft"  # the soft mixture of the heads

    @property
    def relaxation(self) -> str | None:
        """The relaxed_logits mode of a relaxed switch (None: the hard switch)."""
        return _RELAXATIONS.get(self)


_RELAXATIONS = {Switch.STRAIGHT_THROUGH: "straight_through", Switch.SOFT: "soft"}


class RouteKind(StrEnum):
    ALL_HEADS = "all_heads"  # every head wrong at once
    STEER = "steer"  # steer the switch onto a route whose head says a wrong class
    RELAXED = "relaxed"  # CE of the routed logits with the switch relaxed at a temperature


STEERED_ROUTES = (outputs.BENIGN, outputs.ADVERSARIAL)
_ROUTE_SUFFIX = "_route"
_TEMPERATURE_MARK = "_T"
_TEXT = re.compile(r"^(?:(?P<all>all_heads)|(?P<steered>[a-z]+)_route"
                   r"|(?P<switch>[a-z]+)_T(?P<t>[0-9.e+-]+))$")


@dataclasses.dataclass(frozen=True)
class RouteVariant:
    kind: RouteKind
    route: str | None = None  # RouteKind.STEER: the route steered onto (an outputs name)
    switch: Switch | None = None  # RouteKind.RELAXED: STRAIGHT_THROUGH or SOFT
    temperature: float | None = None  # RouteKind.RELAXED

    @classmethod
    def all_heads(cls) -> RouteVariant:
        return cls(RouteKind.ALL_HEADS)

    @classmethod
    def steer(cls, route: str) -> RouteVariant:
        if route not in STEERED_ROUTES:
            raise ValueError(f"route must be one of {STEERED_ROUTES}. Received: route={route!r}")
        return cls(RouteKind.STEER, route=route)

    @classmethod
    def relaxed(cls, switch: Switch, temperature: float) -> RouteVariant:
        if switch not in _RELAXATIONS:
            raise ValueError(f"a relaxed switch is st or soft. Received: switch={switch!r}")
        return cls(RouteKind.RELAXED, switch=Switch(switch), temperature=float(temperature))

    def __str__(self) -> str:
        if self.kind == RouteKind.ALL_HEADS:
            return RouteKind.ALL_HEADS.value
        if self.kind == RouteKind.STEER:
            return f"{self.route}{_ROUTE_SUFFIX}"
        return f"{self.switch}{_TEMPERATURE_MARK}{self.temperature:g}"

    @classmethod
    def parse(cls, text: str) -> RouteVariant:
        """The variant a file stored as `text` (eval.json / eval.npz keys); ValueError otherwise."""
        m = _TEXT.match(text)
        if m is None:
            raise ValueError(f"not a route-aware variant. Received: {text!r}")
        if m["all"]:
            return cls.all_heads()
        if m["steered"]:
            return cls.steer(m["steered"])
        return cls.relaxed(Switch(m["switch"]), float(m["t"]))


def route_variants(temperatures) -> list[RouteVariant]:
    """Every route-aware attack, in the order they run: all heads, each route, the
    straight-through switch at each temperature, then the soft one."""
    return ([RouteVariant.all_heads()] + [RouteVariant.steer(r) for r in STEERED_ROUTES]
            + [RouteVariant.relaxed(Switch.STRAIGHT_THROUGH, t) for t in temperatures]
            + [RouteVariant.relaxed(Switch.SOFT, t) for t in temperatures])
