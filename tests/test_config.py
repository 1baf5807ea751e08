"""Presets equal TRADES' settings; bad values are rejected naming the value; JSON round trip."""

import json

import pytest

from nfi_tf import backbones
from nfi_tf.config import Config, make_config, validate
from nfi_tf.errors import NfiError
from nfi_tf.vocab import Method


def test_presets_are_trades_settings():
    m = make_config("mnist")
    assert (m.attack.epsilon, m.attack.step_size, m.attack.num_steps) == (0.3, 0.01, 40)
    assert (m.loss.beta, m.train.learning_rate, m.train.epochs, m.train.batch_size) == (1.0, 0.01, 100, 128)
    assert m.train.lr_decay_epochs == (55, 75, 90) and m.train.weight_decay == 0.0
    assert m.model.backbone == "small_cnn" and not m.data.augment
    c = make_config("cifar10")
    assert (c.attack.epsilon, c.attack.step_size, c.attack.num_steps) == (0.031, 0.007, 10)
    assert (c.eval_attack.step_size, c.eval_attack.num_steps) == (0.003, 20)
    assert (c.loss.beta, c.train.learning_rate, c.train.weight_decay) == (6.0, 0.1, 2e-4)
    assert c.train.lr_decay_epochs == (75, 90, 100) and c.train.epochs == 76
    assert (c.model.backbone, c.model.depth, c.model.width) == ("wide_resnet", 34, 10)
    assert c.data.augment and c.model.method == "nfi" and c.model.robust_dims == 128


def test_overrides_apply_and_round_trip_through_json(tmp_path):
    c = make_config("cifar10", {"model": {"depth": 16, "width": 4}, "train": {"epochs": 3}})
    assert (c.model.depth, c.model.width, c.train.epochs) == (16, 4, 3)
    path = str(tmp_path / "config.json")
    c.save(path)
    assert Config.load(path) == c


@pytest.mark.parametrize("overrides,message", [
    ({"attack": {"epsilon": -0.1}}, "epsilon must be > 0. Received: epsilon=-0.1"),
    ({"attack": {"step_size": 0.5}}, "step_size must be in \\(0, epsilon=0.3\\]"),
    ({"train": {"batch_size": 0}}, "batch_size must be >= 1. Received: batch_size=0"),
    ({"train": {"deterministic": True, "jit_compile": True}}, "deterministic and jit_compile cannot"),
    ({"model": {"robust_dims": 200}}, "robust_dims=200"),
    ({"model": {"method": "madry"}}, "method must be one of"),
    ({"model": {"backbone": "wide_resnet", "depth": 20}}, "depth=20"),
    ({"train": {"mixed_precision": "fp8"}}, "mixed_precision must be one of"),
    ({"train": {"lr_decay_epochs": (50, 10)}}, "lr_decay_epochs must be increasing"),
    ({"train": {"lr_schedule": "cosine"}}, "Received: lr_schedule='cosine'"),
    ({"train": {"lr_peak_fraction": 1.0}}, "Received: lr_peak_fraction=1.0"),
    ({"loss": {"adversarial_loss": "mse"}}, "adversarial_loss must be one of"),
    ({"train": {"strategy": "horovod"}}, "strategy must be one of"),
    ({"loss": {"counterfactual_loss": "ratio"}}, "Received: counterfactual_loss='ratio'"),
    ({"loss": {"counterfactual_ema_decay": 1.0}}, "Received: counterfactual_ema_decay=1.0"),
    ({"loss": {"counterfactual_warmup_steps": -1}}, "Received: counterfactual_warmup_steps=-1"),
    ({"loss": {"counterfactual_floor": -0.5}}, "Received: counterfactual_floor=-0.5"),
    ({"data": {"validation_examples": -5}}, "Received: validation_examples=-5"),
])
def test_bad_values_name_the_value(overrides, message):
    with pytest.raises(NfiError, match=message):
        make_config("mnist", overrides)


def test_old_relative_counterfactual_configs_load_as_floored(tmp_path):
    # Model dirs written before the forms were renamed say "relative".
    old = make_config("mnist").to_dict()
    old["loss"]["counterfactual_loss"] = "relative"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(old))
    assert Config.load(str(path)).loss.counterfactual_loss == "floored"


def test_method_is_a_member_and_config_json_keeps_its_string(tmp_path):
    c = make_config("mnist", {"model": {"method": "trades"}})
    assert c.model.method is Method.TRADES and c.model.method == "trades"
    path = tmp_path / "config.json"
    c.save(str(path))
    assert json.loads(path.read_text())["model"]["method"] == "trades"
    # A config.json written when the method was a plain string loads equal to a fresh config
    # (the reproduction reuses a run when `Config.load(path) == config`).
    old = make_config("mnist").to_dict()
    old["model"]["method"] = "nfi"
    path.write_text(json.dumps(old))
    loaded = Config.load(str(path))
    assert loaded == make_config("mnist") and loaded.model.method is Method.NFI
    assert hash(loaded) == hash(make_config("mnist"))
    with pytest.raises(NfiError, match="Received: method='classifier'"):
        make_config("mnist", {"model": {"method": Method.CLASSIFIER}})  # not a training method


def test_a_backbone_preset_applies_when_it_is_chosen():
    # A dataset preset's model settings are for its own backbone; another backbone gets its own.
    assert backbones.preset(backbones.WIDE_RESNET) == {"backbone": "wide_resnet", "depth": 34,
                                                       "width": 10}
    m = make_config("mnist", {"model": {"backbone": "wide_resnet", "depth": 16}}).model
    assert (m.depth, m.width, m.robust_dims) == (16, 10, 128)
    s = make_config("cifar10", {"model": {"backbone": "small_cnn"}}).model
    assert (s.backbone, s.depth, s.width, s.robust_dims) == ("small_cnn", 34, 10, 128)


@pytest.mark.parametrize("overrides,message", [
    ({"model": {"backbone": "resnet"}}, "backbone must be one of ('small_cnn', 'wide_resnet') or "
                                        "keras.applications.NAME (e.g. keras.applications.MobileNetV2). "
                                        "Received: backbone='resnet'"),
    ({"model": {"backbone": "wide_resnet", "width": 0}},
     "WideResNet width must be >= 1. Received: width=0"),
    ({"model": {"backbone_weights": "/w.h5"}}, "backbone_weights is for keras.applications "
                                               "backbones. Received: backbone_weights='/w.h5', "
                                               "backbone='small_cnn'"),
    ({"model": {"backbone": "custom", "robust_dims": None}},
     "robust_dims must be an integer >= 1. Received: robust_dims=None"),
    ({"model": {"method": "trades"}, "loss": {"route_guard_weight": 0.5}},
     "route_guard_weight guards the routing switch, which only method=nfi has. "
     "Received: route_guard_weight=0.5, method=trades"),
])
def test_model_messages_are_the_backbones_own(overrides, message):
    with pytest.raises(NfiError) as e:
        make_config("mnist", overrides)
    assert str(e.value) == message


def test_validate_is_one_function_per_group():
    import inspect

    from nfi_tf import config as config_module

    for name in ("validate", "_validate_data", "_validate_model", "_validate_attack",
                 "_validate_loss", "_validate_train"):
        assert len(inspect.getsource(getattr(config_module, name)).splitlines()) <= 60, name
    assert validate(make_config("mnist")) == make_config("mnist")


def test_corrupt_and_missing_config_files(tmp_path):
    with pytest.raises(NfiError, match="no config at"):
        Config.load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(NfiError, match="corrupt config"):
        Config.load(str(bad))
