"""`EvalReport`: what eval.json holds, as a type, versioned to and from JSON.

The pipeline builds one (build.py); the markdown report and the printed table render one; `--merge`, the
paired tests and the reproduction tables read one. Attack keys are `AttackKey`s in memory and
their text in the file (nfi_tf/evaluation/keys.py). The JSON layout is the one every release
wrote, plus a `version` field: a file without one is version 1 (before this type existed) and
loads the same way; a file of an unknown version fails with a one-line message naming it.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from nfi_tf import io_utils
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.report import sections
from nfi_tf.evaluation.report.sections import (
    Checks,
    Cumulative,
    OnnxSummary,
    OverlapSummary,
    RoutedSummary,
    RouteStats,
    Settings,
)
from nfi_tf.vocab import Method

VERSION = 2
READS = (1, 2)  # versions this release reads
EVAL_JSON = "eval.json"
EVAL_MD = "eval.md"
EVAL_NPZ = "eval.npz"
MERGED_JSON = "eval_merged.json"
MERGED_MD = "eval_merged.md"


@dataclasses.dataclass
class EvalReport:
    model_dir: str
    dataset: str
    method: Method
    examples: int
    seed: int
    rows: list[str]
    columns: list[str]
    table: dict[str, dict[str, float | None]]  # row -> column -> accuracy (None: not measured)
    attacks_run: list[str]
    suite_keys: list[AttackKey]  # the attacks run in AutoAttack's way (only on points still robust)
    settings: Settings
    attack_keys: list[AttackKey]  # CLEAN first among them in sorted order, as stored
    accuracy_by_attack: dict[str, dict[AttackKey, float]]  # row -> key -> accuracy
    checks: Checks
    notes: list[str]
    records: str  # the eval.npz beside it
    seconds: float | None = None
    seconds_by_attack: dict[AttackKey, float] = dataclasses.field(default_factory=dict)  # wall s
    autoattack_cumulative: Cumulative | None = None
    cascade_cumulative: Cumulative | None = None  # --cascade: after each family
    onnx: OnnxSummary | None = None
    routed_adaptive: RoutedSummary | None = None
    route_stats: RouteStats | None = None
    feature_overlap: OverlapSummary | None = None
    version: int = VERSION

    def cell(self, row: str, column: str) -> float | None:
        return self.table.get(row, {}).get(column)

    def to_json(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if v is None and f.default is None:
                continue  # optional sections absent, as before
            out[f.name] = v.to_json() if hasattr(v, "to_json") else v
        out["suite_keys"] = [str(k) for k in self.suite_keys]
        out["attack_keys"] = [str(k) for k in self.attack_keys]
        out["accuracy_by_attack"] = {row: {str(k): v for k, v in by.items()}
                                     for row, by in self.accuracy_by_attack.items()}
        out["seconds_by_attack"] = {str(k): v for k, v in self.seconds_by_attack.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any], source: str = EVAL_JSON) -> EvalReport:
        version = data.get("version", 1)
        if version not in READS:
            raise NfiError(f"{source} is eval.json version {version!r}; this nfi-tf reads versions "
                           f"{', '.join(map(str, READS))} (upgrade nfi-tf, or re-run the evaluation)")
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls)
                    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise NfiError(f"{source} (eval.json version {version}) lacks {', '.join(missing)}: "
                           "not an evaluation report")
        fields = {k: v for k, v in data.items() if k in names}
        fields["version"] = VERSION
        fields["method"] = Method(data["method"])
        for name, kind in sections.SECTIONS.items():
            if fields.get(name) is not None:
                fields[name] = kind.from_json(fields[name])
        fields["suite_keys"] = [AttackKey.parse(k) for k in data["suite_keys"]]
        fields["attack_keys"] = [AttackKey.parse(k) for k in data["attack_keys"]]
        fields["accuracy_by_attack"] = {row: {AttackKey.parse(k): v for k, v in by.items()}
                                        for row, by in data["accuracy_by_attack"].items()}
        fields["seconds_by_attack"] = {AttackKey.parse(k): v
                                       for k, v in data.get("seconds_by_attack", {}).items()}
        return cls(**fields)

    @classmethod
    def load(cls, path: str) -> EvalReport:
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise NfiError(f"cannot read the evaluation report {path}: {type(e).__name__}: {e}") from e
        if not isinstance(data, dict):
            raise NfiError(f"{path} is not an evaluation report (a JSON object is expected)")
        return cls.from_json(data, path)

    def save(self, path: str) -> None:
        io_utils.atomic_write_json(path, self.to_json())


__all__ = ["EVAL_JSON", "EVAL_MD", "EVAL_NPZ", "MERGED_JSON", "MERGED_MD", "VERSION", "EvalReport"]

