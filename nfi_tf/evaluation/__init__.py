"""Evaluation of a trained model: the paper's tables under attacks a sceptical reviewer accepts.

`python -m nfi_tf.evaluate` is the command line; `runner.evaluate_model(EvalConfig)` the library
entry point for a model dir (plan -> run -> report), `classifier.evaluate_classifier` the one for
any other classifier. One module per concept:

    config.py          EvalConfig: what to run (attacks, budgets, examples, seed)
    suite/             the attack registry: one module per attack (name, suite place, budgets)
    keys.py            AttackKey: which attack ran against which output, in which variant
    plan.py            which attack runs against which output, in which variant
    subject.py         the model under evaluation, whoever made it
    classifier.py      evaluate_classifier: the registry on any classifier (Keras, SavedModel, ONNX)
    route_aware.py     objectives that see through the routing switch
    attacks_pgd.py     PGD-CE and CW-Linf on one output (CleverHans' PGD, TRADES' evaluation)
    onnx_target.py     the exported model through ONNX Runtime, as a query function
    worst_case.py      per-example worst case over every adversarial input generated
    records.py         per-example records (eval.npz) and merging several runs
    routes.py          route statistics on clean and worst-case adversarial inputs
    feature_overlap.py Figure 1 (right): top-k feature dims shared with each class
    eval_report.py     EvalReport: eval.json as a type, versioned
    report.py          eval.md and the printed table
    runner.py          plan -> run -> report
"""

from nfi_tf.evaluation.config import ATTACKS, EvalConfig

__all__ = ["ATTACKS", "EvalConfig"]
