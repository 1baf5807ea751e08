"""Attack a trained model and report: python -m nfi_tf.evaluate --model_dir=DIR

Flags -> EvalConfig -> `evaluate_model` (or, with --merge, several runs' eval.npz -> one
per-example worst case).
"""

import os

from absl import flags as absl_flags

from flags import evaluate as evaluate_flags
from nfi_tf.commands.entry import run_command
from nfi_tf.errors import NfiError

FLAGS = absl_flags.FLAGS


def main(argv):
    if FLAGS.merge:
        from nfi_tf.evaluation.merge import merge_evaluations

        merge_evaluations(list(FLAGS.merge), FLAGS.model_dir, log=lambda m: print(m, flush=True))
        print(f"report: {FLAGS.model_dir}/eval_merged.json, eval_merged.md")
        return
    if evaluate_flags.is_classifier_mode(FLAGS):
        from nfi_tf.evaluation.classifier import evaluate_source

        source, given = evaluate_flags.source_from_flags(FLAGS)
        out_dir = FLAGS.model_dir or os.path.dirname(os.path.abspath(source.model or FLAGS.onnx))
        evaluate_source(source, given, FLAGS.onnx, out_dir, FLAGS.data_dir, FLAGS.download,
                        log=lambda m: print(m, flush=True))
        print(f"report: {out_dir}/eval.json, eval.md, eval.npz")
        return
    if not FLAGS.model_dir:
        raise NfiError("give --model_dir (a model trained by nfi_tf.train), or --keras_model, "
                       "--saved_model or --onnx with --dataset. Received: none")
    config = evaluate_flags.eval_config_from_flags(FLAGS)
    from nfi_tf.evaluation.runner import evaluate_model, report_dir

    evaluate_model(config, log=lambda m: print(m, flush=True))
    print(f"report: {report_dir(config)}/eval.json, eval.md, eval.npz")


def run():
    run_command("nfi_tf.evaluate", main, define_flags=evaluate_flags.define_evaluate_flags)
