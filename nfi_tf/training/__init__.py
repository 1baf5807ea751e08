"""Training: the adversarial step, the loop that runs it and the hooks around the loop.

    step.py        AdversarialTrainer (one PGD generation, all losses, one update), step_function
    controller.py  Controller: epochs of steps, hooks called at each event, one LoopState
    hooks.py       NaN guard, early stop, checkpoint policy, epoch means, per-epoch evaluation,
                   TensorBoard, history, progress: one concern each
    epoch_eval.py  the per-epoch clean and PGD check on a test subset
    state.py       what a run builds and checkpoints (model, optimizer, RNG, running means)
    estimate.py    the run's cost (FLOPs) and the estimate line it prints at start
    dry_run.py     `python -m nfi_tf.train --dry_run`: the estimate without training
    run.py         train_and_evaluate(config, model_dir): the composition of the above
"""

from nfi_tf.training.run import configure_runtime, train_and_evaluate
from nfi_tf.training.state import make_optimizer
from nfi_tf.training.step import AdversarialTrainer, step_function

__all__ = ["AdversarialTrainer", "configure_runtime", "make_optimizer", "step_function",
           "train_and_evaluate"]
