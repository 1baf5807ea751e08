"""`python -m nfi_tf.train ... --dry_run`: what the run would be and how long it would take,
without training, downloading or writing anything.

It reads the data's sizes (a tfds set that is not on disk: the sizes tfds declares for it, or
`--train_examples`), builds the model to count its FLOPs, and returns the lines a run prints
at start (the notes, the summary, `nfi_tf.training.estimate`'s line) and the config it would
train. The estimate is for the whole run from its first step, whatever a model dir holds.
"""

from __future__ import annotations

import dataclasses

from nfi_tf import data, flops
from nfi_tf.config import Config, preset_note
from nfi_tf.datasets import registry
from nfi_tf.errors import DataUnavailableError, NfiError
from nfi_tf.estimate import Rate, cpu_cores, gpu_count
from nfi_tf.training import estimate


@dataclasses.dataclass(frozen=True)
class DataFacts:
    """What the estimate needs from the data."""

    image_shape: tuple[int, int, int]
    num_classes: int
    train_examples: int  # the images training reads (after --train_examples, --validation_examples)
    test_size: int
    split_note: str | None = None  # how the test split was made, for a set without one


def data_facts(config: Config) -> DataFacts:
    """The data's facts from disk (never downloaded); a tfds set not on disk: what tfds
    declares for it."""
    cfg = config.data
    try:
        info = data.load_info(cfg, download=False)
    except DataUnavailableError as e:
        return _declared(config, e)
    train = registry.open_source(cfg, False).size(data.training_split(cfg, False))
    return DataFacts(info.image_shape, info.num_classes, train, info.test_size,
                     data.split_note(cfg, False))


def _declared(config: Config, unavailable: DataUnavailableError) -> DataFacts:
    """A tfds set that is not on disk: its image shape and classes from its builder's features,
    its sizes from the split metadata tfds has (none offline: then --train_examples)."""
    from nfi_tf.datasets.tfds_source import tfds_builder, tfds_keys

    cfg = config.data
    info = tfds_builder(cfg.dataset, cfg.data_dir or None).info
    image_key, label_key = tfds_keys(cfg.dataset, info.features)
    h, w, c = info.features[image_key].shape
    declared = {name: int(split.num_examples) for name, split in info.splits.items()}
    train = cfg.train_examples or declared.get("train", 0) - cfg.validation_examples
    if train <= 0:
        raise NfiError(f"--dry_run needs the number of training images: {cfg.dataset} is not "
                       f"on disk and tfds declares no size for it offline; pass "
                       f"--train_examples=N. Received: dataset={cfg.dataset!r}") from unavailable
    test = declared.get("test", declared.get("validation", cfg.eval_examples))
    return DataFacts((cfg.image_size or h, cfg.image_size or w, int(c or 3)),
                     int(info.features[label_key].num_classes), train, test)


def dry_run(config: Config) -> list[str]:
    """The lines `--dry_run` prints: the start notes, the run's summary, its estimate and the
    config it would train (config.json's text)."""
    from nfi_tf.models import build_classifier
    from nfi_tf.training.run import banner

    facts = data_facts(config)
    classifier = build_classifier(config.model, facts.image_shape, facts.num_classes)
    cost = estimate.training_cost(config, flops.forward_flops(classifier), facts.train_examples,
                                  estimate.check_examples(config, facts.test_size))
    rate = Rate.assumed(gpu_count(), cpu_cores())
    notes = (preset_note(config.data.dataset, facts.image_shape,
                         estimate.preset_estimate(cost, rate)), facts.split_note)
    return [*(n for n in notes if n),
            banner(config, config.data.dataset, facts.train_examples, cost.steps_per_epoch),
            estimate.start_line(config, cost, rate),
            "dry run: nothing was trained, downloaded or written. The config it would train "
            "(config.json):", config.to_json()]
