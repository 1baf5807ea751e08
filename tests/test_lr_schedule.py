"""The learning-rate schedules of --lr_schedule: TRADES' piecewise decay and one cycle."""

import keras
import numpy as np
import pytest

from nfi_tf.config import make_config
from nfi_tf.training import make_optimizer
from nfi_tf.training.lr_schedule import OneCycle, make_schedule


def _rates(schedule, steps):
    return np.array([float(schedule(s)) for s in range(steps)])


def test_one_cycle_by_hand():
    # 10 updates, 4 rising: peak/4, 2peak/4, 3peak/4, peak, then down by peak/6 to peak/6.
    rates = _rates(OneCycle(0.12, total_steps=10, rise_steps=4), 12)
    expected = [0.03, 0.06, 0.09, 0.12, 0.12, 0.10, 0.08, 0.06, 0.04, 0.02, 0.0, 0.0]
    np.testing.assert_allclose(rates, expected, atol=1e-7)


def test_one_cycle_never_wastes_an_update_and_peaks_once():
    rates = _rates(OneCycle(0.1, total_steps=387, rise_steps=155), 387)
    assert rates.min() > 0  # no update of the planned run at rate 0
    assert rates.max() == pytest.approx(0.1)
    assert int(np.argmax(rates)) == 154  # the last rising update
    assert np.all(np.diff(rates[:155]) > 0) and np.all(np.diff(rates[155:]) < 0)


def test_one_cycle_without_rise_starts_at_peak():
    np.testing.assert_allclose(_rates(OneCycle(1.0, 4, 0), 5), [1.0, 0.75, 0.5, 0.25, 0.0])


def test_one_cycle_rejects_a_rise_as_long_as_the_run():
    with pytest.raises(ValueError, match="rise_steps=10, total_steps=10"):
        OneCycle(0.1, 10, 10)


def test_make_schedule_sizes_the_cycle_from_epochs_and_steps():
    t = make_config("mnist", {"train": {"lr_schedule": "cyclic", "epochs": 3,
                                        "learning_rate": 0.1, "lr_peak_fraction": 0.4}}).train
    s = make_schedule(t, steps_per_epoch=129)
    assert (s.total_steps, s.rise_steps, s.peak) == (387, 155, 0.1)


def test_a_one_step_cyclic_run_still_takes_its_update():
    t = make_config("mnist", {"train": {"lr_schedule": "cyclic", "epochs": 1,
                                        "learning_rate": 0.1, "lr_peak_fraction": 0.9}}).train
    s = make_schedule(t, steps_per_epoch=1)
    assert (s.total_steps, s.rise_steps) == (1, 0) and float(s(0)) == pytest.approx(0.1)


def test_piecewise_schedule_decays_at_the_epochs():
    t = make_config("mnist", {"train": {"learning_rate": 0.05, "lr_decay_epochs": (2,)}}).train
    rates = _rates(make_schedule(t, steps_per_epoch=3), 9)
    # Keras' PiecewiseConstantDecay keeps the earlier rate while step <= boundary, so the first
    # update of epoch 3 (step 6) still takes 0.05: one update late, as every trained model so far
    # was (kept, so that their runs stay reproducible).
    np.testing.assert_allclose(rates, [0.05] * 7 + [0.005] * 2, rtol=1e-6)


def test_optimizer_follows_the_cyclic_schedule():
    config = make_config("mnist", {"train": {"lr_schedule": "cyclic", "epochs": 2,
                                             "learning_rate": 0.2, "lr_peak_fraction": 0.5}})
    optimizer = make_optimizer(config, steps_per_epoch=5)  # 10 updates, 5 rising
    optimizer.iterations.assign(2)
    assert float(optimizer.learning_rate) == pytest.approx(0.2 * 3 / 5)
    optimizer.iterations.assign(7)
    assert float(optimizer.learning_rate) == pytest.approx(0.2 * 3 / 5)


def test_one_cycle_round_trips_through_keras_serialization():
    s = OneCycle(0.1, 100, 40)
    back = keras.optimizers.schedules.deserialize(keras.optimizers.schedules.serialize(s))
    assert isinstance(back, OneCycle) and back.get_config() == s.get_config()
