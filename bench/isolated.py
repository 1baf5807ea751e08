"""Run one benchmark configuration in a fresh Python process (its own peak RSS, thread pools and
Keras dtype policy) and read back its result.

A benchmark module run as `python -m bench.<module> '<json spec>'` prints one line
`RESULT <json>`; anything else it prints is ignored. A crash or a timeout becomes a result with
an `error` field, so one failed configuration never stops a suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

RESULT = "RESULT "
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def print_result(result: dict) -> None:
    print(RESULT + json.dumps(result), flush=True)


def run_module(module: str, spec: dict, timeout: float, error_spec: dict | None = None) -> dict:
    """`python -m <module> <spec>` -> its RESULT; on failure {"spec": error_spec or spec, "error"}."""
    shown = spec if error_spec is None else error_spec
    try:
        proc = subprocess.run([sys.executable, "-m", module, json.dumps(spec)],
                              capture_output=True, text=True, timeout=timeout, cwd=_REPO)
    except subprocess.TimeoutExpired:
        return {"spec": shown, "error": f"timed out after {timeout:.0f} s"}
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT):
            return json.loads(line[len(RESULT):])
    tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
    return {"spec": shown, "error": f"exit {proc.returncode}: {tail}"}
