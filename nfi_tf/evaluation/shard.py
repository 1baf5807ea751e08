"""Exact sharded evaluation: N processes (or machines, or GPUs) each attack a slice of the images
and write its record; `gather` joins them into the report the unsharded run writes.

A shard is a contiguous run of whole *batches*: shard I of N gets batches
[floor(I B / N), floor((I + 1) B / N)) of the B batches of the evaluation. Every attack's random
draws are keyed by (seed, attack key, global batch index) and a batch holds the same images in
the same order however the images are sharded, so every adversarial image a shard makes is the
one the unsharded run makes: the gathered report equals the unsharded one image for image,
whatever N, per-attack or in cascade.

Each shard writes its record (shard_records.py: MODEL_DIR/shards/shard-I-of-N.npz); `gather`
joins them and refuses, in one line naming the file, a missing, duplicated or foreign shard.
This module is the shard's arithmetic (plain Python: EvalConfig validates --shard with it).

The shard index may come from the environment of the engine that runs the shards (`--shard=
env/N`): a Kubernetes Indexed Job's JOB_COMPLETION_INDEX, a Slurm job array's
SLURM_ARRAY_TASK_ID (less SLURM_ARRAY_TASK_MIN), or NFI_SHARD_INDEX (the local recipe).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re

from nfi_tf.errors import NfiError, check

DIR = "shards"
INDEX_VARIABLES = ("JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "NFI_SHARD_INDEX")
FROM_ENVIRONMENT = "env"
# EvalConfig fields that do not change a number (where files go, how much is printed, the shard).
_NOT_SETTINGS = ("model_dir", "data_dir", "download", "verbose", "shard", "gather")
_TEXT = re.compile(r"^\s*(\S+)\s*/\s*(\d+)\s*$")


@dataclasses.dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def file_name(self) -> str:
        return f"shard-{self.index}-of-{self.count}.npz"

    def batches(self, total: int) -> range:
        """This shard's global batch indices among `total` batches."""
        return range(self.index * total // self.count, (self.index + 1) * total // self.count)


def environment_index(environ=None) -> int:
    """The shard index an engine put in the environment (see the module docstring)."""
    environ = os.environ if environ is None else environ
    for name in INDEX_VARIABLES:
        if environ.get(name, "").strip():
            value = environ[name].strip()
            check(value.isdigit(), f"{name} must be a whole number. Received: {name}={value!r}")
            low = environ.get("SLURM_ARRAY_TASK_MIN", "0") if name == "SLURM_ARRAY_TASK_ID" else "0"
            return int(value) - int(low or 0)
    raise NfiError(f"--shard={FROM_ENVIRONMENT}/N reads the shard index from {', '.join(INDEX_VARIABLES)}; "
                   "none is set (give --shard=I/N)")


def parse(text, environ=None) -> Shard | None:
    """`I/N` (or `env/N`, or an (I, N) pair) as a Shard; None for no sharding."""
    if text is None or text == "":
        return None
    if isinstance(text, (tuple, list)):
        text = f"{text[0]}/{text[1]}"
    m = _TEXT.match(str(text))
    check(m is not None, f"shard must be I/N (0 <= I < N) or {FROM_ENVIRONMENT}/N. Received: shard={text}")
    count = int(m[2])
    index = environment_index(environ) if m[1] == FROM_ENVIRONMENT else m[1]
    check(str(index).lstrip("-").isdigit(),
          f"shard must be I/N with I a whole number. Received: shard={text}")
    index = int(index)
    check(count >= 1 and 0 <= index < count,
          f"shard must be I/N with 0 <= I < N. Received: shard={index}/{count}")
    return Shard(index, count)


def check_batches(shard: Shard, total: int, batch_size: int) -> None:
    check(shard.count <= total, f"--shard={shard}: the evaluation has {total} batch(es) of {batch_size} "
                                f"images; use at most {total} shards or a smaller --batch_size")


def settings_digest(cfg, seed: int, examples: int) -> str:
    """sha256 of every setting that changes a number (not where files go, nor the shard)."""
    values = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if f.name not in _NOT_SETTINGS}
    values.update(seed=int(seed), examples=int(examples))
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def path(out_dir: str, shard: Shard) -> str:
    return os.path.join(out_dir, DIR, shard.file_name)


