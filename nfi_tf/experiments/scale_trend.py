"""The scale-trend plan: does nfi's CIFAR-10 gap to TRADES close with training length or width?

The main CIFAR-10 runs (reproduction.py) train WRN-10-1 for 5 epochs; the paper trains ~40x the
epochs on a 10x wider network. This plan moves one axis at a time away from the main budget, for
nfi and TRADES with the same seed, data, attack and evaluation as the main runs:

    <method>_e20        WRN-10-1, 20 epochs (4x the main budget), the learning-rate decay at the
                        same fraction of training as the main runs' (epoch 4 of 5 -> 16 of 20)
    <method>_wrn10_2    WRN-10-2 (a 128-d feature, --robust_dims=64: half of it, as the main
                        runs' 32 of 64), 5 epochs
    nfi_route_guard_e20 the route guard (not the paper's method) at the 20-epoch point

Nothing here was chosen on test images: the schedule is the main runs' scaled by the one rule
above, the learning rate and every other setting are the main runs'. Each run is evaluated
exactly as a main run (the `cpu` budget, PGD, CW, AutoAttack's suite and the route-aware
attacks on the same 500 test images) and checked by the independent attack.

    python -m nfi_tf.experiments reproduce --plan=scale_trend            # resumable
    python -m nfi_tf.experiments reproduce --plan=scale_trend --dry_run  # list the runs

(`python scripts/reproduce.py --plan=scale_trend ...` is the same command.)
"""

from __future__ import annotations

from nfi_tf.config import make_config
from nfi_tf.experiments.reproduction import FULL, GUARD_RUN, SEEDS, eval_spec, merge, run_name
from nfi_tf.experiments.runs import Kind, Run
from nfi_tf.vocab import Method

DATASET = "cifar10"
SEED = SEEDS[DATASET][0]
_MAIN = FULL[DATASET]
_MAIN_EPOCHS = _MAIN["common"]["train"]["epochs"]
_MAIN_DECAY = _MAIN["common"]["train"]["lr_decay_epochs"]


def scaled_schedule(epochs: int) -> dict:
    """The main runs' schedule stretched to `epochs`: each decay at the same fraction of the run."""
    return {"epochs": epochs,
            "lr_decay_epochs": tuple(round(e * epochs / _MAIN_EPOCHS) for e in _MAIN_DECAY)}


# (point, the changes from the main runs' common settings); methods from the main runs' overrides.
POINTS = {
    "e20": {"train": scaled_schedule(20)},
    "wrn10_2": {"model": {"width": 2, "robust_dims": 64}},
}
# (the main run it scales, the point): the run is named <main run>_<point>_seed0. In run order:
# the epochs point first (the point 1), the width point, the guard last.
RUN_SPECS = (
    (Method.TRADES, "e20"),
    (Method.NFI, "e20"),
    (Method.TRADES, "wrn10_2"),
    (Method.NFI, "wrn10_2"),
    (GUARD_RUN, "e20"),
)


def plan() -> list[Run]:
    """The plan's runs, in the order they run (all seed 0, as the issue asks: same seed)."""
    runs = []
    for main_run, point in RUN_SPECS:
        overrides = merge(_MAIN["common"], _MAIN["runs"][main_run], POINTS[point],
                          {"train": {"seed": SEED}})
        method = make_config(DATASET, overrides).model.method
        # Evaluated as the main run it scales (eval_spec keys on the main run's name).
        spec = eval_spec(DATASET, main_run, method, _MAIN["eval_examples"], quick=False)
        runs.append(Run(DATASET, run_name(f"{main_run}_{point}", SEED), overrides, spec,
                        kind=Kind.SCALE))
    return runs
