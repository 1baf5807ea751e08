"""`AttackKey`: which attack ran against which output, in which variant, as a value.

An evaluation runs many attacks; each one is named by its family (a registry name such as
`apgd_ce`, or `route` for the route-aware attacks), the output it attacks, a variant (on the
routed model: a `Switch` for a gradient attack, a `RouteVariant` for a route-aware one) and, for
the route-targeted attacks, which of the top wrong classes it steers to (`aux`, 1-based).
Records merged from several runs carry the run they came from (`run`, 0 for the first). The
clean inputs' record is a key too (`CLEAN`), so every stage keys its results one way.

The text form `family@target[:variant][#aux][~runN]` (`clean` for the clean record) is what
eval.json and eval.npz store and what seeds each attack's random draws; `str(key)` makes it and
`AttackKey.parse` reads it back, at the file boundary only. A key also *equals* its text (and
hashes like it), so a dict keyed by keys answers a lookup by the text a file stores, as the
dicts of earlier releases, keyed by text, did.
"""

from __future__ import annotations

import dataclasses
import re

from nfi_tf.errors import NfiError
from nfi_tf.evaluation.vocab import Column, RouteVariant, Switch

_PATTERN = re.compile(r"^(?P<family>[a-z0-9_]+)@(?P<target>[a-z0-9_]+)(?::(?P<variant>[A-Za-z0-9_.+-]+))?"
                      r"(?:#(?P<aux>\d+))?(?:~run(?P<run>\d+))?$")
_CLEAN_PATTERN = re.compile(rf"^{Column.CLEAN}(?:~run(?P<run>\d+))?$")
ROUTE_FAMILY = "route"  # the route-aware attacks' family: their variants are RouteVariants

Variant = Switch | RouteVariant | None


@dataclasses.dataclass(frozen=True, eq=False)
class AttackKey:
    family: str
    target: str
    variant: Variant = None
    aux: int = 0
    run: int = 0

    @property
    def is_clean(self) -> bool:
        return self.family == Column.CLEAN

    @property
    def text(self) -> str:
        return str(self)

    def __str__(self) -> str:
        text = str(self.family) if self.is_clean else f"{self.family}@{self.target}"
        if self.variant is not None:
            text += f":{self.variant}"
        if self.aux:
            text += f"#{self.aux}"
        if self.run:
            text += f"~run{self.run}"
        return text

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other) -> bool:
        if isinstance(other, AttackKey):
            return str(self) == str(other)
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented

    def __lt__(self, other: AttackKey) -> bool:  # sorted() orders keys as their texts
        return str(self) < str(other)

    @classmethod
    def parse(cls, text: str) -> AttackKey:
        """The key a record stored as `text` (eval.json / eval.npz); a one-line error otherwise."""
        clean = _CLEAN_PATTERN.match(text)
        if clean:
            return dataclasses.replace(CLEAN, run=int(clean["run"] or 0))
        m = _PATTERN.match(text)
        if not m:
            raise NfiError(f"not an attack key (family@target[:variant][#aux]). Received: {text!r}")
        try:
            variant = _variant(m["family"], m["variant"])
        except ValueError as e:
            raise NfiError(f"not an attack key ({e}). Received: {text!r}") from None
        return cls(m["family"], m["target"], variant, int(m["aux"] or 0), int(m["run"] or 0))

    def in_run(self, run: int) -> AttackKey:
        return dataclasses.replace(self, run=run)


def _variant(family: str, text: str | None) -> Variant:
    if not text:
        return None
    return RouteVariant.parse(text) if family == ROUTE_FAMILY else Switch(text)


CLEAN = AttackKey(Column.CLEAN, "")


def parse_record_key(text: str) -> AttackKey:
    """A stored record name as a key (`clean` is the CLEAN key)."""
    return AttackKey.parse(text)
