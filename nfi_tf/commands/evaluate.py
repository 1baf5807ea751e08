"""Attack a trained model and report: python -m nfi_tf.evaluate --model_dir=DIR

Flags -> EvalConfig -> `evaluate_model` (or, with --merge, several runs' eval.npz -> one
per-example worst case).
"""

from absl import flags as absl_flags

from flags import evaluate as evaluate_flags
from nfi_tf.commands.entry import run_command

FLAGS = absl_flags.FLAGS


def main(argv):
    if FLAGS.merge:
        from nfi_tf.evaluation.runner import merge_evaluations

        merge_evaluations(list(FLAGS.merge), FLAGS.model_dir, log=lambda m: print(m, flush=True))
        print(f"report: {FLAGS.model_dir}/eval_merged.json, eval_merged.md")
        return
    config = evaluate_flags.eval_config_from_flags(FLAGS)
    from nfi_tf.evaluation.runner import evaluate_model

    evaluate_model(config, log=lambda m: print(m, flush=True))
    print(f"report: {config.model_dir}/eval.json, eval.md, eval.npz")


def run():
    run_command("nfi_tf.evaluate", main, define_flags=evaluate_flags.define_evaluate_flags)
