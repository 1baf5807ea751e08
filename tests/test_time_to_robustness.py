"""bench/time_to_robustness.py: every variant is a valid training run on validation images, and
its table reads the measured entries."""

import pytest
from absl import flags

from bench import time_to_robustness as ttr
from flags import train as train_flags


def _config(argv):
    values = flags.FlagValues()
    train_flags.define_train_flags(flag_values=values)
    values(["prog", *argv])
    return train_flags.train_config_from_flags(values)


@pytest.mark.parametrize("name", sorted(ttr.VARIANTS))
def test_every_variant_trains_the_quickstart_on_validation_images(name):
    train, evaluate = ttr.QUICKSTART.commands("m", extra_train_flags=ttr._SPLIT + ttr.VARIANTS[name])
    c = _config(train[3:])  # after `python -m nfi_tf.train`
    # The quickstart's 17,435 images, 1,000 of them held out: validation, never test, images.
    assert (c.data.train_examples, c.data.validation_examples) == (16435, 1000)
    assert c.data.dataset == "mnist" and c.model.backbone == "small_cnn"
    # The variant's own flags come last, so they win over the quickstart's.
    for flag in ttr.VARIANTS[name]:
        key, value = flag[2:].split("=")
        got = {"attack_steps": c.attack.num_steps, "step_size": c.attack.step_size,
               "epochs": c.train.epochs, "lr_schedule": c.train.lr_schedule,
               "learning_rate": c.train.learning_rate, "batch_size": c.train.batch_size,
               "lr_decay_epochs": ",".join(map(str, c.train.lr_decay_epochs))}[key]
        assert str(got) == value, (key, got, value)
    assert "--attacks=clean,pgd,cw,apgd_ce,apgd_t,route_aware" in evaluate


def test_table_sorts_by_training_time_and_pairs_each_variant_with_the_quickstart():
    # 10 images: the baseline keeps images 0-5, the other variant 0-3 and 6-9: it alone keeps
    # 4, the baseline alone 2: +2 of 10 images, McNemar p = 2 * P(Bin(6, 1/2) <= 2) = 0.6875.
    entries = [
        {"variant": "b", "flags": ["--epochs=5"], "steps": 645, "train_seconds": 600.0,
         "clean": 0.981, "worst_case": 0.7, "robust": "1111001111"},
        {"variant": ttr.BASELINE, "flags": [], "steps": 387, "train_seconds": 213.0,
         "clean": 0.97, "worst_case": 0.6, "robust": "1111110000"},
    ]
    lines = ttr.table(entries).splitlines()
    assert lines[2] == f"| {ttr.BASELINE} | (none) | 387 | 3.5 | 97.0% | 60.0% | — |"
    assert lines[3] == "| b | --epochs=5 | 645 | 10.0 | 98.1% | 70.0% | +20.0 (p=0.69) |"
    entries[0]["robust"] = "1111111111"  # 4 images only b keeps, none only the baseline
    assert ttr.table(entries).splitlines()[3].endswith("| +40.0 (p=0.12) |")
