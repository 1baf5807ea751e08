"""`AttackKey`: which attack ran against which output, as a value, not a string.

An evaluation runs many attacks; each one is named by its family (a registry name such as
`apgd_ce`, or `route` for the route-aware attacks), the output it attacks, a variant (on the
routed model: the switch relaxation `hard`/`st`/`soft`, or the route-aware attack's name) and,
for the route-targeted attacks, which of the top wrong classes it steers to (`aux`, 1-based).
Records merged from several runs carry the run they came from (`run`, 0 for the first).

The text form `family@target[:variant][#aux][~runN]` is what eval.json and eval.npz store (the
format every earlier release wrote); it is produced by `str(key)` and read back by
`AttackKey.parse` at the file boundary only. Inside the library keys stay typed.
"""

from __future__ import annotations

import dataclasses
import re

from nfi_tf.errors import NfiError

CLEAN = "clean"  # the record of the clean inputs: not an attack, stored under this name
_PATTERN = re.compile(r"^(?P<family>[a-z0-9_]+)@(?P<target>[a-z0-9_]+)(?::(?P<variant>[A-Za-z0-9_.]+))?"
                      r"(?:#(?P<aux>\d+))?(?:~run(?P<run>\d+))?$")


@dataclasses.dataclass(frozen=True)
class AttackKey:
    family: str
    target: str
    variant: str = ""
    aux: int = 0
    run: int = 0

    def __str__(self) -> str:
        text = f"{self.family}@{self.target}"
        if self.variant:
            text += f":{self.variant}"
        if self.aux:
            text += f"#{self.aux}"
        if self.run:
            text += f"~run{self.run}"
        return text

    @property
    def text(self) -> str:
        return str(self)

    @classmethod
    def parse(cls, text: str) -> AttackKey:
        """The key a record stored as `text` (eval.json / eval.npz); a one-line error otherwise."""
        m = _PATTERN.match(text)
        if not m:
            raise NfiError(f"not an attack key (family@target[:variant][#aux]). Received: {text!r}")
        return cls(m["family"], m["target"], m["variant"] or "", int(m["aux"] or 0), int(m["run"] or 0))

    def in_run(self, run: int) -> AttackKey:
        return dataclasses.replace(self, run=run)


def parse_record_key(text: str) -> AttackKey | str:
    """A stored record name: `clean` stays a string, every other name is an AttackKey."""
    if text == CLEAN or text.startswith(CLEAN + "~run"):
        return text
    return AttackKey.parse(text)
