"""Evaluation of a model under test: the paper's tables under attacks a sceptical reviewer accepts.

`python -m nfi_tf.evaluate` is the command line; `runner.evaluate_model(EvalConfig)` the library
entry point for a model dir, `classifier.evaluate_classifier` the one for any other classifier.
Both build a Subject and hand it to the one pipeline (plan -> outcomes -> report). One module
per concept:

    config.py          EvalConfig: what to run (attacks, budgets, images, seed, shard)
    vocab.py           the report's columns, switch relaxations, route-aware variants, modes
    keys.py            AttackKey: which attack ran against which output, in which variant
    subject.py         Subject: the model under test, whoever made it
    subjects.py        build a Subject from a model dir, a Keras model, a callable, a
                       SavedModel or an ONNX file (with its differentiable twin)
    adapters.py        models as images -> logits: input transforms, layouts
    twins.py           an ONNX file's differentiable twin: automatic (nfi_tf/onnx_twin) or the
                       user's, in either layout, checked against ONNX Runtime
    onnx_session.py    an ONNX file through ONNX Runtime, as a numpy function
    suite/             the attack registry: one module per attack (spec, binding, applicability)
    switch.py          the routing switch as an attacker sees it; each output's attack target
    plan.py            which attack runs against which output, built, with the report's notes
    outcomes.py        run the plan: per output and attack key, which images stayed correct
    worst_case.py      per-example worst case over every adversarial input generated
    report/            EvalReport (schema.py), its typed sections, build.py, render.py
    pipeline.py        plan -> outcomes -> report, written; shards and gathering
    shard.py           the arithmetic of shards (--shard=I/N)
    shard_records.py   a shard's outcomes on disk; gathering a full set
    records.py         per-example records (eval.npz)
    merge.py           --merge: several runs on one model as one worst case
    routes.py          route statistics on clean and worst-case adversarial inputs
    feature_overlap.py Figure 1 (right): top-k feature dims shared with each class
    paired.py          McNemar's paired test between two evaluated outputs
    runner.py          evaluate_model: a model dir's subject, images and PGD settings
    classifier.py      evaluate_classifier: any classifier's subject
"""

from nfi_tf.evaluation.config import ATTACKS, EvalConfig

__all__ = ["ATTACKS", "EvalConfig"]
