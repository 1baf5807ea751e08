"""Scaling of the compiled training step: ms/step against batch size and PGD steps, peak RSS
against batch size, as a table and a PNG plot (matplotlib, Agg backend: no display needed).

SmallCNN / MNIST / TRADES, one fresh process per point (so each peak RSS is its own):
batch 32..512 at K = 10 attack steps, and K = 1..40 at batch 128. The analytic cost is
linear in both (B * F * (2K + 7), `nfi_tf.flops`); the table shows how far the measured
times follow it.
"""

from __future__ import annotations

from nfi_tf.vocab import Method

BATCHES = (32, 64, 128, 256, 512)
BATCH_SWEEP_STEPS = 10
ATTACK_STEPS = (1, 2, 5, 10, 20, 40)
TINY_BATCHES = (8, 16)
TINY_ATTACK_STEPS = (1, 2)


def scaling_specs(tiny: bool) -> dict[str, list[dict]]:
    base = {"dataset": "mnist", "backbone": "small_cnn", "method": Method.TRADES,
            "warmup": 1, "steps": 1 if tiny else 3}
    batches, ks = (TINY_BATCHES, TINY_ATTACK_STEPS) if tiny else (BATCHES, ATTACK_STEPS)
    return {
        "batch": [{**base, "batch": b, "attack_steps": 1 if tiny else BATCH_SWEEP_STEPS}
                  for b in batches],
        "attack_steps": [{**base, "batch": 16 if tiny else 128, "attack_steps": k} for k in ks],
    }


def run_suite(config, results: dict, log=print) -> dict:
    """The scaling suite in `python -m bench` (bench/registry.py)."""
    return run_scaling(config.tiny, isolated=not config.tiny, plot_path=config.plot_path, log=log)


def run_scaling(tiny: bool, isolated: bool, plot_path: str | None, log=print) -> dict:
    from bench.train_bench import run_many

    out: dict = {}
    for sweep, specs in scaling_specs(tiny).items():
        log(f"scaling over {sweep}:")
        out[sweep] = [_point(r, sweep) for r in run_many(specs, isolated, log)]
    if plot_path:
        plot(out, plot_path)
        out["plot"] = plot_path
    return out


def _point(r: dict, sweep: str) -> dict:
    s = r["spec"]
    point = {"batch": s["batch"], "attack_steps": r.get("attack_steps", s["attack_steps"])}
    if "error" in r:
        return point | {"error": r["error"]}
    return point | {k: r[k] for k in ("ms_per_step_median", "images_per_s", "achieved_gflop_per_s",
                                      "peak_rss_mb", "step_gflop", "load_average")}


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ok = lambda pts: [p for p in pts if "error" not in p]
    b = ok(results["batch"])
    k = ok(results["attack_steps"])
    if b:
        axes[0].plot([p["batch"] for p in b], [p["ms_per_step_median"] for p in b], "o-")
        axes[0].set(yscale="log", ylabel="ms / step (median)",
                    title=f"ms/step vs batch (K={b[0]['attack_steps']})")
        axes[2].plot([p["batch"] for p in b], [p["peak_rss_mb"] for p in b], "o-")
        axes[2].set(ylabel="peak RSS (MB)", title="peak memory vs batch")
        for ax in (axes[0], axes[2]):
            ax.set_xscale("log", base=2)
            ax.set_xticks([p["batch"] for p in b], [str(p["batch"]) for p in b])
            ax.minorticks_off()
            ax.set_xlabel("batch size")
        axes[0].yaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axes[0].yaxis.set_major_formatter(ticker.ScalarFormatter())
    if k:
        axes[1].plot([p["attack_steps"] for p in k], [p["ms_per_step_median"] for p in k], "o-")
        axes[1].set(xlabel="PGD steps K", ylabel="ms / step (median)",
                    title=f"ms/step vs PGD steps (batch {k[0]['batch']})")
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.suptitle("nfi-tf compiled TRADES step, SmallCNN / MNIST, CPU")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
