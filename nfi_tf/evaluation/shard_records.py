"""Shard records: one shard's outcomes on disk, and gathering a full set back into the outcomes
of the whole evaluation (the arithmetic of shards: shard.py).

A record (MODEL_DIR/shards/shard-I-of-N.npz, or the report dir's) holds per output and attack
key the per-image correctness and margins, the routes, the features Figure 1 reads, and per
attack the largest perturbation, the pixel range and the seconds it took; and the evaluation it
belongs to (the model's sha256, a digest of every setting that changes a number, the seed, N and
I). Nothing is merged in silence: a missing, duplicated or foreign shard is a one-line error
naming it.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from nfi_tf import io_utils
from nfi_tf.errors import NfiError, check
from nfi_tf.evaluation.keys import AttackKey
from nfi_tf.evaluation.outcomes import Outcomes
from nfi_tf.evaluation.shard import DIR, Shard

SEP = "|"


# === Writing and reading one shard ===


def _arrays(o: Outcomes) -> dict[str, np.ndarray]:
    arrays = {"indices": np.asarray(o.indices, np.int64), "labels": np.asarray(o.labels, np.int32)}
    for row in o.rows:
        for key, v in o.correct[row].items():
            arrays[f"correct{SEP}{row}{SEP}{key}"] = np.asarray(v, bool)
            arrays[f"margin{SEP}{row}{SEP}{key}"] = np.asarray(o.margins[row][key], np.float64)
    for key, v in o.routes.items():
        arrays[f"routes{SEP}{key}"] = np.asarray(v)
    for name, parts in o.features.items():
        if parts:
            arrays[f"features{SEP}{name}"] = np.concatenate(parts)
    for key, v in o.inputs.items():
        arrays[f"input{SEP}{key}"] = np.asarray(v, np.float32)
    return arrays


def save(file: str, shard: Shard, identity: dict, o: Outcomes) -> None:
    """Write one shard's outcomes atomically; `identity`: model, settings digest, seed."""
    meta = {**identity, "index": shard.index, "count": shard.count, "rows": list(o.rows),
            "overlap_key": None if o.overlap_key is None else str(o.overlap_key),
            "max_linf": {str(k): v for k, v in o.max_linf.items()},
            "pixel_range": {str(k): list(v) for k, v in o.pixel_range.items()},
            "seconds": {str(k): v for k, v in o.seconds.items()}}
    os.makedirs(os.path.dirname(file), exist_ok=True)
    with io_utils.atomic_path(file, suffix=".npz") as tmp:
        np.savez_compressed(tmp, meta=np.array(json.dumps(meta)), **_arrays(o))


def _bucket(out: dict, name: str, value: np.ndarray) -> None:
    kind, *rest = name.split(SEP)  # a file's array names: the boundary where text becomes keys
    if kind in ("correct", "margin"):
        out[kind].setdefault(rest[0], {})[AttackKey.parse(rest[1])] = value
    elif kind == "routes":
        out["routes"][AttackKey.parse(rest[0])] = value
    elif kind == "features":
        out["features"][rest[0]] = [value]
    elif kind == "input":
        out["inputs"][AttackKey.parse(rest[0])] = value


def load(file: str) -> tuple[dict, Outcomes]:
    """(meta, outcomes) of one shard record; a one-line error for anything else."""
    try:
        with np.load(file, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            out = {"correct": {}, "margin": {}, "routes": {}, "features": {}, "inputs": {}}
            for name in z.files:
                _bucket(out, name, z[name])
            indices, labels = z["indices"], z["labels"]
    except (OSError, ValueError, KeyError) as e:
        raise NfiError(f"{file} is not a shard record: {type(e).__name__}") from e
    keyed = lambda d: {AttackKey.parse(k): v for k, v in d.items()}  # noqa: E731
    overlap = meta.get("overlap_key")
    o = Outcomes(tuple(meta["rows"]), labels, indices, out["correct"], out["margin"], out["routes"],
                 keyed(meta["max_linf"]), {k: tuple(v) for k, v in keyed(meta["pixel_range"]).items()},
                 keyed(meta["seconds"]), None if overlap is None else AttackKey.parse(overlap),
                 out["features"], out["inputs"])
    return meta, o


# === Gathering ===


def _check_set(files: list[str], metas: list[dict], identity: dict) -> None:
    check(bool(files), "no shard records to gather: run the shards first (--shard=I/N)")
    count = metas[0]["count"]
    for file, meta in zip(files, metas):
        for field, want in identity.items():
            check(meta.get(field) == want, f"{file} is a shard of another evaluation ({field} differs: "
                                           "other model, settings or seed); remove it or re-run it")
        check(meta["count"] == count, f"{file} is shard {meta['index']}/{meta['count']}, but {files[0]} "
                                      f"belongs to a set of {count}")
    seen: dict[int, str] = {}
    for file, meta in zip(files, metas):
        check(meta["index"] not in seen,
              f"{file} duplicates shard {meta['index']}/{count} ({seen.get(meta['index'])})")
        seen[meta["index"]] = file
    missing = sorted(set(range(count)) - set(seen))
    check(not missing, f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} missing from "
                       f"{os.path.dirname(files[0])}: run them (--shard=I/{count}), then gather")


def _join(parts: list[Outcomes]) -> Outcomes:
    first = parts[0]
    cat = lambda get: np.concatenate([get(p) for p in parts])  # noqa: E731
    correct = {row: {k: cat(lambda p, r=row, k=k: p.correct[r][k]) for k in first.correct[row]}
               for row in first.rows}
    margins = {row: {k: cat(lambda p, r=row, k=k: p.margins[r][k]) for k in first.margins[row]}
               for row in first.rows}
    max_linf, pixel_range, seconds = {}, {}, {}
    for p in parts:
        for k, v in p.max_linf.items():
            max_linf[k] = max(max_linf.get(k, 0.0), v)
        for k, (lo, hi) in p.pixel_range.items():
            old = pixel_range.get(k, (1.0, 0.0))
            pixel_range[k] = (min(old[0], lo), max(old[1], hi))
        for k, v in p.seconds.items():
            seconds[k] = seconds.get(k, 0.0) + v
    return Outcomes(first.rows, cat(lambda p: p.labels), cat(lambda p: p.indices), correct, margins,
                    {k: cat(lambda p, k=k: p.routes[k]) for k in first.routes}, max_linf, pixel_range,
                    seconds, first.overlap_key,
                    {n: [np.concatenate([p.features[n][0] for p in parts])] for n in first.features},
                    {k: cat(lambda p, k=k: p.inputs[k]) for k in first.inputs})


def gather(out_dir: str, identity: dict, examples: int) -> Outcomes:
    """The outcomes of every shard under out_dir/shards, checked and joined in image order."""
    files = sorted(glob.glob(os.path.join(out_dir, DIR, "*.npz")))
    loaded = [load(f) for f in files]
    metas = [m for m, _ in loaded]
    _check_set(files, metas, identity)
    parts = [o for _, o in sorted(loaded, key=lambda mo: mo[0]["index"])]
    for file, (_, o) in zip(files, loaded):
        check(set(o.correct) == set(parts[0].correct) and all(
            set(o.correct[r]) == set(parts[0].correct[r]) for r in o.correct),
            f"{file} ran other attacks than the other shards")
    joined = _join(parts)
    check(np.array_equal(joined.indices, np.arange(examples)),
          f"the shards under {os.path.join(out_dir, DIR)} cover images {joined.indices.min()}-"
          f"{joined.indices.max()} ({len(joined.indices)}), not the evaluation's {examples}")
    return joined
