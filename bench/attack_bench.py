"""Cost of the evaluation's attacks: seconds per image and achieved GFLOP/s vs the fp32 peak.

    python -m bench --suite=attack --model_dir=runs/mnist_quickstart [--examples=200]
        [--batch_size=200] [--baseline=GIT_REF] [--max_busy=0.25] [--out=FILE]
    (also python -m bench.attack_bench ...; flags: bench.config.AttackBenchConfig)

Runs AutoAttack's standard suite (APGD-CE, APGD-T, FAB-T with 9 targets and 100 iterations each,
Square with 5,000 queries) against the routed model, each attack on all the images (not only
the ones still robust, so each row is that attack's own cost), plus the route-aware attacks.
`--examples` images in `--batch_size` batches (default: the evaluation's own batch, 200).

Every image the model sees is counted at its input: a forward pass costs F FLOPs (nfi_tf.flops,
analytic multiply-adds), a backward pass to the input about F more, so an attack's FLOPs are
F x (images forwarded + images back-propagated) and its achieved GFLOP/s is that over its wall
time. The machine's peak is bench.peak's best float32 matmul.

Each attack runs in a fresh process (bench/attack_child.py; compile outside the clock). With
`--baseline=REF` (e.g. the last release, or HEAD before a change) a git worktree of REF is made
and every attack is measured on it and on the current tree in turn, A B A B..., so both columns
see the same machine state. Before every measurement the cores must be quiet (bench.quiet).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from nfi_tf.errors import NfiError

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CHILD = os.path.join(_REPO, "bench", "attack_child.py")
CEILING = "ceiling"  # bench/attack_child.py's key for the model's own rate
_REPORTED = ("apgd_steps", "apgd_targets", "fab_steps", "fab_targets", "square_queries", "route_steps")


def planned_keys() -> list[str]:
    """The attacks measured: AutoAttack's suite on the routed output (hard switch), then the
    route-aware attacks onto all heads and onto the benign route."""
    from nfi_tf import outputs
    from nfi_tf.evaluation import suite
    from nfi_tf.evaluation.keys import ROUTE_FAMILY, AttackKey
    from nfi_tf.evaluation.vocab import RouteVariant, Switch

    routed = outputs.ROUTED
    keys = [AttackKey(f, routed, Switch.HARD if suite.get(f).routed_variants else None)
            for f in suite.autoattack()]
    keys += [AttackKey(ROUTE_FAMILY, routed, RouteVariant.all_heads()),
             AttackKey(ROUTE_FAMILY, routed, RouteVariant.steer(outputs.BENIGN), aux=1)]
    return [str(k) for k in keys]


def baseline_tree(ref: str) -> tuple[str, str]:
    """(path, commit) of a git worktree of `ref` (made once per commit under the temp dir)."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{ref}^{{commit}}"], cwd=_REPO,
                            capture_output=True, text=True)
    if commit.returncode != 0:
        raise NfiError(f"--baseline is not a commit of this repository. Received: baseline={ref}")
    sha = commit.stdout.strip()
    path = os.path.join(tempfile.gettempdir(), f"nfi_attack_baseline_{sha[:12]}")
    if not os.path.isdir(path):
        subprocess.run(["git", "worktree", "add", "--detach", path, sha], cwd=_REPO, check=True,
                       capture_output=True)
    return path, sha


def measure(tree: str, model_dir: str, examples: int, key: str, batch_size: int) -> dict:
    """One attack on the code of `tree`, in its own process."""
    from nfi_tf import cpu_kernels

    # Each tree picks its own CPU kernels, as a user's process would (not this one's choice).
    env = dict(cpu_kernels.user_environment(), PYTHONPATH=tree)
    proc = subprocess.run([sys.executable, _CHILD, os.path.abspath(model_dir), str(examples), key,
                           str(batch_size)], cwd=tree, env=env, capture_output=True, text=True)
    rows = [line for line in proc.stdout.splitlines() if line.startswith("ATTACK_ROW ")]
    if proc.returncode != 0 or not rows:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise SystemExit(f"attack_bench: {key} failed on {tree}: {tail}")
    return json.loads(rows[-1][len("ATTACK_ROW "):])


def _rate(row: dict, forward_flops: float, peak: float) -> dict:
    flop = forward_flops * (row["images_forwarded"] + row["images_backpropagated"])
    return {**row, "gflop": flop / 1e9, "gflop_per_s": flop / row["seconds"] / 1e9,
            "fraction_of_peak": flop / row["seconds"] / 1e9 / peak}


def _ceiling(name: str, tree: str, job: dict, log) -> dict:
    """The model's own forward and forward + backward rate on `tree`, against the peak."""
    from bench.quiet import wait_for_quiet

    wait_for_quiet(max_busy=job["max_busy"], log=log)
    c = measure(tree, job["model_dir"], job["examples"], CEILING, job["batch_size"])
    for kind in ("forward", "forward_backward"):
        c[f"{kind}_gflop_per_s"] = job["forward_flops"] * c[f"{kind}_images"] / c[f"{kind}_seconds"] / 1e9
        c[f"{kind}_fraction_of_peak"] = c[f"{kind}_gflop_per_s"] / job["peak"]
    log(f"{name:8s} the model alone (batch {c['batch']}, oneDNN {c['onednn_setting']}): forward "
        f"{c['forward_gflop_per_s']:.1f} GFLOP/s ({100 * c['forward_fraction_of_peak']:.0f}% of peak), "
        f"forward+backward {c['forward_backward_gflop_per_s']:.1f} GFLOP/s "
        f"({100 * c['forward_backward_fraction_of_peak']:.0f}%)")
    return c


def _attack(name: str, tree: str, key: str, ceiling: dict, job: dict, log) -> dict:
    """One attack on `tree`, after quiet cores: its rate against the peak and the model's own."""
    from bench.quiet import wait_for_quiet

    before = wait_for_quiet(max_busy=job["max_busy"], log=log)
    row = _rate(measure(tree, job["model_dir"], job["examples"], key, job["batch_size"]),
                job["forward_flops"], job["peak"])
    kind = "forward_backward" if row["images_backpropagated"] else "forward"
    row["fraction_of_model_rate"] = row["gflop_per_s"] / ceiling[f"{kind}_gflop_per_s"]
    row["others_busy_share_before"] = before["busy_share"]
    log(f"{name:8s} {key:28s} {row['seconds_per_image']:7.3f} s/image  "
        f"{row['gflop_per_s']:6.1f} GFLOP/s ({100 * row['fraction_of_peak']:3.0f}% of peak)  "
        f"routed acc {row['routed_accuracy']:.3f}  load {row['load_before']:.2f}->"
        f"{row['load_after']:.2f}")
    return row


def _budgets(trained, model_dir: str, batch_size: int) -> dict:
    """The attack budgets measured (the evaluation's standard ones), as reported."""
    from nfi_tf.config import make_config
    from nfi_tf.evaluation.config import EvalConfig
    from nfi_tf.evaluation.suite.budgets import Budgets

    preset = make_config(trained.config.data.dataset).eval_attack
    budgets = Budgets.of(EvalConfig(model_dir=model_dir, batch_size=batch_size), preset,
                         trained.info.num_classes)
    return {k: v for k, v in budgets.values.items() if k in _REPORTED}


def run(model_dir: str, examples: int, batch_size: int, baseline: str | None = None,
        max_busy: float = 0.25, log=print) -> dict:
    from bench.machine import cpu_model
    from bench.peak import measure_peak
    from bench.quiet import wait_for_quiet
    from nfi_tf import flops, model_io
    from nfi_tf.vocab import Method

    trained = model_io.load_trained(model_dir)
    if trained.config.model.method != Method.NFI:
        raise NfiError(f"the attack bench needs a routed ({Method.NFI}) model. Received: "
                       f"method={trained.config.model.method}")
    trees = [("current", _REPO, None)]
    if baseline:
        path, sha = baseline_tree(baseline)
        trees = [("baseline", path, sha)] + trees
    quiet = wait_for_quiet(max_busy=max_busy, log=log)
    peak = measure_peak()
    job = {"model_dir": model_dir, "examples": examples, "batch_size": batch_size,
            "max_busy": max_busy, "forward_flops": flops.forward_flops(trained.classifier),
            "peak": peak["gflop_per_s_best"]}
    ceilings = {name: _ceiling(name, tree, job, log) for name, tree, _ in trees}
    rows = {name: [] for name, _, _ in trees}
    for key in planned_keys():
        for name, tree, _ in trees:
            rows[name].append(_attack(name, tree, key, ceilings[name], job, log))
    suite_keys = planned_keys()[:4]
    result = {"model_dir": os.path.abspath(model_dir), "examples": examples, "batch_size": batch_size,
              "forward_flops_per_image": job["forward_flops"], "peak": peak, "cpu": cpu_model(),
              "quiet_at_start": quiet, "budgets": _budgets(trained, model_dir, batch_size)}
    for name, _, sha in trees:
        result[name] = {"commit": sha or _head(), "attacks": rows[name], "model_alone": ceilings[name],
                        "standard_suite_seconds_per_image_all_points": sum(
                            r["seconds_per_image"] for r in rows[name] if r["attack"] in suite_keys)}
    result["attacks"] = rows["current"]  # the file's former layout, kept for existing readers
    return result


def _head() -> str:
    out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=_REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=_REPO,
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + ("+uncommitted changes" if dirty else "")


def run_suite(config, log=print) -> dict:
    """--suite=attack: an AttackBenchConfig's model measured, written to `config.out`."""
    from bench.tables import attack_table
    from nfi_tf import io_utils

    result = run(config.model_dir, config.examples, config.batch, config.baseline, config.max_busy,
                 log)
    io_utils.atomic_write_json(config.out, result)
    log(attack_table(result))
    log(f"written to {config.out}")
    return result


if __name__ == "__main__":
    from bench.cli import alias

    alias("attack")
