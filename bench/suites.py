"""Run the chosen measuring suites in order, each on quiet cores, and write one JSON file.

The suites are registered in bench/registry.py (each one's measuring and aggregating lives in
its own module, its markdown tables in bench/tables.py); this module only sequences them and
records what the machine was doing.
"""

from __future__ import annotations

import datetime
import os
import sys

from bench import registry, tables
from bench.config import BenchConfig

SUITES = registry.measuring()


def suites_of(value: str) -> list[str]:
    """The measuring suites `--suite=value` names, in run order (a one-line NfiError otherwise)."""
    from nfi_tf.errors import NfiError

    chosen = registry.select(value)
    if not chosen[0].measuring:
        raise NfiError(f"--suite must name measuring suites here ({', '.join(SUITES)}, all). "
                       f"Received: suite={value!r}")
    return [s.name for s in chosen]


def chosen(config: BenchConfig) -> list[str]:
    """The measuring suites `config` names (None: every one), in run order."""
    return list(config.suites) if config.suites is not None else list(SUITES)


def _meta(config: BenchConfig) -> dict:
    from bench.machine import machine

    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": "python -m bench " + " ".join(sys.argv[1:]), "suites": chosen(config),
            "tiny": config.tiny, "machine": machine(), "load_average_start": os.getloadavg(),
            "note": "load averages are recorded because the cores may be shared: figures "
                    "are comparable within one run, not across machines or runs"}


def _to_run(names) -> list[registry.Suite]:
    """The suites named and the ones they need (the train suite reads the peak), in run order."""
    wanted = set(names)
    for name in names:
        wanted.update(registry.get(name).needs)
    return [s for s in registry.suites() if s.measuring and s.name in wanted]


def _settle(config: BenchConfig, log) -> dict:
    from bench import quiet

    if config.tiny:  # --tiny (CI) checks that the suite runs, not speed: record the load, never wait
        return quiet.sample()
    return quiet.wait_for_quiet(config.max_busy, config.quiet_timeout, log=log)


def run_suites(config: BenchConfig, log=print) -> dict:
    """Run `config.suites` in order, logging progress and tables with `log`; write and return
    the results."""
    from nfi_tf import io_utils

    os.makedirs(config.work_dir, exist_ok=True)
    results: dict = {"meta": _meta(config)}
    for suite in _to_run(chosen(config)):
        if suite.quiet:
            results["meta"].setdefault("quiet_checks", {})[suite.name] = _settle(config, log)
        results[suite.name] = suite.run(config, results, log)
        for line in suite.table(results[suite.name]) if suite.table else []:
            log(line)
    results["meta"]["load_average_end"] = os.getloadavg()
    for line in tables.targets_table(results):
        log(line)
    os.makedirs(os.path.dirname(os.path.abspath(config.out)), exist_ok=True)
    io_utils.atomic_write_json(config.out, results)
    log(f"written to {config.out}")
    return results
