"""Evaluation of a trained model: the paper's tables under attacks a sceptical reviewer accepts.

`python -m nfi_tf.evaluate` is the command line; `runner.evaluate_model(EvalConfig)` the one
library entry point. One module per concept:

    config.py           EvalConfig: what to run (attacks, budgets, examples, seed)
    switch.py           the routing switch, hard and relaxed (straight-through, temperature)
    attacks_pgd.py      PGD-CE and CW-Linf on any output, all through `nfi_tf.attacks.pgd`
    attacks_adaptive.py the attack plan: which attack runs against which output
    autoattack.py       APGD-CE and targeted APGD-DLR (adversarial-robustness-toolbox)
    worst_case.py       per-example worst case over every adversarial input generated
    routes.py           route statistics on clean and worst-case adversarial inputs
    feature_overlap.py  Figure 1 (right): top-k feature dims shared with each class
    report.py           eval.json and eval.md
    runner.py           the loop over batches tying the above together
"""

from nfi_tf.evaluation.config import ATTACKS, EvalConfig

__all__ = ["ATTACKS", "EvalConfig"]
