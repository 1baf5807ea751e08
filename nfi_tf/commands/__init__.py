"""The command layer: flags -> config -> one library call, for every `python -m` command.

    entry.py     run_command: the shared entry (--help, one-line errors, exit codes)
    train.py     python -m nfi_tf.train     -> nfi_tf.training.train_and_evaluate
    evaluate.py  python -m nfi_tf.evaluate  -> nfi_tf.evaluation.runner
    generate.py  python -m nfi_tf.generate  -> nfi_tf.synthesis.generate
    theory.py    python -m nfi_tf.theory    -> nfi_tf.theory.report

`nfi_tf/{train,evaluate,generate}.py` and `nfi_tf/theory/__main__.py` only call these `run`s;
`export/to_onnx.py` and `export/predict.py` are the export package's commands. These are the
only modules that import absl or `flags/`; the library never imports them (imports run one way:
commands -> flags -> library; tests/test_layers.py checks it).
"""
