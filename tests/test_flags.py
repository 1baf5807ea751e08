"""Flags made from the config dataclasses (flags/dataclass_flags.py): every command keeps the
flag names, types and defaults it had when they were written by hand; every flag's help says
its default, taken from the dataclass or the dataset presets; the flags read back into the
configs the library takes."""

import dataclasses
import enum
import os
import re
import tempfile

import pytest
from absl import flags
from helpers import run_cli

from bench.config import BenchConfig, MultiWorkerConfig, ServeModelConfig, TimeToRobustnessConfig
from bench.time_to_robustness import VARIANTS
from export.config import ExportConfig, PredictConfig, SessionConfig
from flags import bench as bench_flags
from flags import dataclass_flags as dcf
from flags import evaluate as evaluate_flags
from flags import export as export_flags
from flags import generate as generate_flags
from flags import theory as theory_flags
from flags import train as train_flags
from nfi_tf.config import PRESETS, make_config
from nfi_tf.errors import NfiError
from nfi_tf.evaluation.config import EvalConfig
from nfi_tf.synthesis import SynthesisConfig
from nfi_tf.theory import TheoryConfig

LIST = "comma separated list of strings"
_PROVIDERS = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]

# Each command's flags as they were written by hand (name: (type, default)), listed from the
# flag modules before the flags were generated. Users' command lines must keep working.
BEFORE = {
    "train": {
        "adversarial_loss": ("string", None), "adversarial_weight": ("float", None),
        "attack_steps": ("int", None), "augment": ("bool", None), "backbone": ("string", None),
        "batch_size": ("int", None), "benign_weight": ("float", None), "beta": ("float", None),
        "checkpoint_every_steps": ("int", None), "counterfactual_ema_decay": ("float", None),
        "counterfactual_floor": ("float", None), "counterfactual_loss": ("string", None),
        "counterfactual_warmup_steps": ("int", None), "counterfactual_weight": ("float", None),
        "cpu_devices": ("int", 0), "data_dir": ("string", None), "dataset": ("string", "mnist"),
        "depth": ("int", None), "detach_aux_heads": ("bool", None), "deterministic": ("bool", None),
        "download": ("bool", True), "dropout": ("float", None), "epochs": ("int", None),
        "epsilon": ("float", None), "eval_attack_steps": ("int", None),
        "eval_batch_size": ("int", None), "eval_epsilon": ("float", None),
        "eval_examples": ("int", None), "eval_step_size": ("float", None),
        "jit_compile": ("bool", None), "learning_rate": ("float", None),
        "lr_decay_epochs": ("string", None), "lr_decay_factor": ("float", None),
        "lr_peak_fraction": ("float", None), "lr_schedule": ("string", None),
        "method": ("string", None), "mixed_precision": ("string", None), "model_dir": ("string", None),
        "momentum": ("float", None), "robust_dims": ("int", None),
        "route_guard_weight": ("float", None), "seed": ("int", None), "step_size": ("float", None),
        "strategy": ("string", None), "tradeoff_weight": ("float", None),
        "train_examples": ("int", None), "validation_examples": ("int", None),
        "weight_decay": ("float", None), "width": ("int", None),
    },
    "evaluate": {
        "apgd_restarts": ("int", 1), "apgd_steps": ("int", 100), "apgd_targets": ("int", 9),
        "attack_outputs": (LIST, None),
        "attacks": ("string", "clean,pgd,cw,autoattack,route_aware"), "batch_size": ("int", 200),
        "cw_steps": ("int", None), "data_dir": ("string", None), "download": ("bool", True),
        # eval_examples: a number as before, or now "all" (so its absl type is a string)
        "epsilon": ("float", None), "eval_examples": ("string", None), "fab_steps": ("int", 100),
        "fab_targets": ("int", 9), "merge": (LIST, None),
        "model_dir": ("string", None), "onnx": ("string", None), "overlap_top_k": ("int", 10),
        "pgd_steps": ("int", None), "route_steps": ("int", 100), "route_targets": ("int", 3),
        "route_temperatures": (LIST, ["0.1", "1", "10"]),
        "save_adversarial": ("bool", False), "seed": ("int", None), "square_queries": ("int", 5000),
        "step_size": ("float", None), "verbose": ("int", 1),
    },
    "export": {
        "as_trained_atol": ("float", 0.05), "atol": ("float", 0.0001),
        "calibration_examples": ("int", 512), "data_dir": ("string", None), "download": ("bool", True),
        "fp16_atol": ("float", 0.01), "fp16_io": ("bool", False), "model_dir": ("string", None),
        "opset": ("int", 17), "output": ("string", None), "parity_examples": ("int", 256),
        "precision": ("string", "fp32"), "quantization_eval_examples": ("int", 1000),
        "quantize": ("bool", False),
    },
    "predict": {
        "execution_mode": ("string", "sequential"), "graph_optimization": ("string", "all"),
        "inter_op_threads": ("int", 0), "intra_op_threads": ("int", 0), "max_batch": ("int", 0),
        "model": ("string", None), "providers": (LIST, _PROVIDERS),
        "resize": ("bool", False), "top_k": ("int", 3),
    },
    "bench": {
        "max_busy": ("float", 0.25), "out": ("string", os.path.join("bench", "results.json")),
        "plot": ("string", None), "quiet_timeout": ("float", 600.0),
        "serve_model_dir": ("string", None), "suite": ("string", "all"), "tiny": ("bool", False),
        "work_dir": ("string", os.path.join(tempfile.gettempdir(), "nfi_tf_bench")),
    },
    "generate": {
        "classes": (LIST, None), "components": ("int", 32), "data_dir": ("string", None),
        "download": ("bool", True), "fit_examples": ("int", 10000), "model_dir": ("string", None),
        "out": ("string", None), "per_class": ("int", 8), "radius": ("float", None),
        "seed": ("int", None), "step_size": ("float", None), "steps": ("int", 60),
    },
    "theory": {
        "epsilon": ("float", None), "p": ("float", 0.9),
        "table_p": (LIST, ["0.6", "0.7", "0.8", "0.9", "0.95"]),
        "table_sizes": (LIST, ["1000", "10000", "100000"]), "test_size": ("int", 10000),
    },
    # The bench tools that had absl flags of their own (python -m bench.serve_bench & co), now
    # python -m bench --suite=NAME.
    "serve_model": {
        "export_dir": ("string", None), "model_dir": ("string", None), "output": ("string", None),
        "repeats": ("int", 200), "throughput_batch": ("int", 256), "throughput_repeats": ("int", 10),
        "warmup": ("int", 20),
    },
    "multi_worker": {
        "attack_steps": ("int", 10), "batch": ("int", 128), "intra_op_threads": ("int", 0),
        "out": ("string", None), "steps": ("int", 20), "warmup": ("int", 3),
        "worker_spec": ("string", None), "workers": (LIST, ["1", "2"]),
    },
    "time_to_robustness": {
        "again": ("bool", False), "variants": (LIST, list(VARIANTS)),
        "out_dir": ("string", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                           "runs", "time_to_robustness")),
    },
}
TOOLS = ("serve_model", "multi_worker", "time_to_robustness")
# Flags added since: a field that gains help metadata becomes a flag (evaluate: cw_confidence,
# from the attack registry's budget; norm; the classifier mode's ClassifierSource fields).
ADDED = {"evaluate": {"cw_confidence", "norm", "keras_model", "saved_model", "dataset", "twin", "budget"},
         "train": {"dry_run", "estimate"}, **{tool: {"suite"} for tool in TOOLS}}
# A second name of a generated flag (absl's DEFINE_alias): the same flag, not a hand-made one.
# alias -> (the flag it sets, a value given to the alias, the value the flag then holds)
ALIASES = {"train": {"estimate": ("dry_run", "", True)},
           "evaluate": {"examples": ("eval_examples", "=all", "all")}}
# evaluate: --model_dir is no longer required, a classifier comes with --keras_model & co instead
# (the command then says in one line what it needs; tests/test_evaluate_classifier.py).
REQUIRED = {"train": {"model_dir"}, "evaluate": set(), "export": {"model_dir"},
            "predict": {"model"}, "bench": set(), "generate": {"model_dir", "classes", "out"},
            "theory": set(), "serve_model": {"model_dir"}, "multi_worker": set(),
            "time_to_robustness": set()}

DEFINE = {"train": train_flags.define_train_flags, "evaluate": evaluate_flags.define_evaluate_flags,
          "export": export_flags.define_export_flags, "predict": export_flags.define_predict_flags,
          "bench": bench_flags.define_flags, "generate": generate_flags.define_generate_flags,
          "theory": theory_flags.define_theory_flags,
          **{tool: lambda flag_values, tool=tool: bench_flags.define_flags(flag_values, suite=tool)
             for tool in TOOLS}}
CONFIG = {"serve_model": ServeModelConfig, "multi_worker": MultiWorkerConfig,
          "time_to_robustness": TimeToRobustnessConfig}


GENERATED = {
    "train": lambda: [s for specs in train_flags.group_specs().values() for s in specs]
    + train_flags.command_specs(),
    "evaluate": lambda: evaluate_flags.specs() + evaluate_flags.source_specs(),
    "export": export_flags.export_specs,
    "predict": lambda: export_flags.predict_specs() + export_flags.session_specs(),
    "bench": bench_flags.specs,
    "generate": lambda: generate_flags.specs() + generate_flags.output_specs(),
    "theory": theory_flags.specs,
    **{tool: lambda tool=tool: [bench_flags.suite_spec(), *bench_flags.specs(CONFIG[tool])]
       for tool in TOOLS},
}


def _flag_values(command: str) -> flags.FlagValues:
    values = flags.FlagValues()
    DEFINE[command](flag_values=values)
    return values


def _parsed(command: str, *argv: str) -> flags.FlagValues:
    values = _flag_values(command)
    values(["prog", *argv])
    return values


@pytest.mark.parametrize("command", sorted(BEFORE))
def test_every_command_keeps_its_flag_names_types_and_defaults(command):
    values = _flag_values(command)
    names = set(values)
    assert set(BEFORE[command]) | ADDED.get(command, set()) <= names
    # Any other new flag was made from a config field, never defined by hand.
    aliases = ALIASES.get(command, {})
    generated = {s.flag for s in GENERATED[command]()}
    assert names - set(BEFORE[command]) - set(aliases) <= generated
    for alias, (target, given, value) in aliases.items():  # an alias sets its generated flag
        assert target in generated
        parsed = _parsed(command, *[f"--{n}=x" for n in REQUIRED[command]], f"--{alias}{given}")
        assert parsed[target].value == value and parsed[target].present
    for name, (kind, default) in BEFORE[command].items():
        assert (values[name].flag_type(), values[name].default) == (kind, default), name
    for name in REQUIRED[command]:  # still required: parsing without it (the others given) fails
        others = [f"--{o}=x" for o in REQUIRED[command] if o != name]
        with pytest.raises(flags.IllegalFlagValueError, match=f"--{name} must have a value"):
            _flag_values(command)(["prog", *others])


@pytest.mark.parametrize("command", sorted(BEFORE))
def test_every_flag_has_help_and_a_generated_one_states_its_default(command):
    values = _flag_values(command)
    assert all(values[name].help.strip() for name in values)
    generated = GENERATED[command]()
    assert len(generated) >= len(values) // 2
    for spec in generated:
        flag = values[spec.flag]
        # absl prints a default that is not None itself ("(default: '200')" under the help,
        # the field's default); a None default is written into the help.
        if flag.default is None and spec.flag not in REQUIRED[command]:
            assert re.search(r"\(default: [^)]", flag.help), (spec.flag, flag.help)
        else:
            assert flag.default_as_str or spec.flag in REQUIRED[command], spec.flag


def test_train_help_shows_each_presets_value_from_presets():
    values = _flag_values("train")
    configs = {name: make_config(name) for name in PRESETS}
    for group, specs in train_flags.group_specs().items():
        for spec in specs:
            help_ = values[spec.flag].help
            assert values[spec.flag].default is None, spec.flag  # unset: the preset decides
            if spec.default is None:  # e.g. robust_dims: the help says what None gives
                assert f"(default: {spec.none})" in help_, spec.flag
                continue
            given = {n: getattr(getattr(c, group), spec.field) for n, c in configs.items()}
            if len(set(given.values())) > 1:
                listed = ", ".join(f"{n} {dcf.format_value(v)}" for n, v in given.items())
                assert f"(default: the dataset preset ({listed}))" in help_, spec.flag
            else:
                assert f"(default: {dcf.format_value(given['mnist'])})" in help_, spec.flag
    assert "(default: the dataset preset (mnist 40, cifar10 10))" in values["attack_steps"].help
    assert "(default: the dataset preset (mnist 40, cifar10 20))" in values["eval_attack_steps"].help
    assert "(mnist 55,75,90, cifar10 75,90,100)" in values["lr_decay_epochs"].help
    assert values["batch_size"].help.endswith("(default: 128)")


def test_evaluate_export_and_bench_defaults_are_the_dataclass_fields():
    for command, cls, required in (("evaluate", EvalConfig, {"model_dir": "m"}),
                                   ("export", ExportConfig, {"model_dir": "m"}),
                                   ("bench", BenchConfig, {}), ("generate", SynthesisConfig, {}),
                                   ("theory", TheoryConfig, {}),
                                   *((tool, CONFIG[tool], {}) for tool in TOOLS)):
        values = _flag_values(command)
        for f in dataclasses.fields(cls):
            name = f.metadata.get("flag", f.name)
            if name not in values or f.name in required:
                continue
            flag, default = values[name], f.default
            if default is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            if "flag_default" in f.metadata or f.metadata.get("required") or default is dataclasses.MISSING:
                continue  # its flag's default is its own, or a required flag has none
            if isinstance(default, tuple):
                default = [dcf.format_value(v) for v in default] if flag.flag_type() == LIST \
                    else dcf.format_value(default)
            assert flag.default == default, (command, name)
    values = _flag_values("evaluate")
    assert "mnist 0.3, cifar10 0.031" in values["epsilon"].help
    assert "mnist 40, cifar10 20" in values["pgd_steps"].help


def test_unset_train_flags_give_the_preset_and_set_ones_override_it():
    assert train_flags.train_config_from_flags(_parsed("train", "--model_dir=m")) == make_config("mnist")
    c = train_flags.train_config_from_flags(_parsed(
        "train", "--model_dir=m", "--dataset=cifar10", "--attack_steps=5", "--eval_epsilon=0.1",
        "--lr_decay_epochs=", "--noaugment", "--robust_dims=64", "--data_dir=/d"))
    assert c == make_config("cifar10", {"attack": {"num_steps": 5}, "eval_attack": {"epsilon": 0.1},
                                        "train": {"lr_decay_epochs": ()}, "data": {"augment": False,
                                                                                   "data_dir": "/d"},
                                        "model": {"robust_dims": 64}})
    c = train_flags.train_config_from_flags(_parsed("train", "--model_dir=m", "--lr_decay_epochs=3, 5"))
    assert c.train.lr_decay_epochs == (3, 5)


def test_evaluate_export_predict_and_bench_flags_build_the_default_configs():
    assert evaluate_flags.eval_config_from_flags(_parsed("evaluate", "--model_dir=m")) == \
        EvalConfig(model_dir="m")
    c = evaluate_flags.eval_config_from_flags(_parsed(
        "evaluate", "--model_dir=m", "--attacks=adaptive,pgd", "--route_temperatures=0.5,2",
        "--attack_outputs=routed", "--cw_confidence=10"))
    assert (c.attacks, c.route_temperatures, c.attack_outputs, c.cw_confidence) == (
        ("pgd", "route_aware"), (0.5, 2.0), ("routed",), 10.0)
    empty = evaluate_flags.eval_config_from_flags(_parsed("evaluate", "--model_dir=m", "--attack_outputs="))
    assert empty.attack_outputs is None  # as before: an empty list means every output
    assert export_flags.export_config_from_flags(_parsed("export", "--model_dir=m")) == \
        ExportConfig(model_dir="m")
    assert export_flags.export_config_from_flags(
        _parsed("export", "--model_dir=m", "--output=/o")).export_dir == "/o"
    assert export_flags.predict_config_from_flags(_parsed("predict", "--model=a.onnx"), ["x.png"]) == \
        PredictConfig(model="a.onnx", images=("x.png",), session=SessionConfig())
    assert bench_flags.bench_config_from_flags(_parsed("bench")) == BenchConfig()
    assert theory_flags.theory_config_from_flags(_parsed("theory")) == TheoryConfig()
    assert theory_flags.theory_config_from_flags(_parsed(
        "theory", "--table_sizes=1e3,2000", "--table_p=0.75", "--epsilon=0.01")) == TheoryConfig(
        table_sizes=(1000, 2000), table_accuracies=(0.75,), epsilon=0.01)
    given = ["--model_dir=m", "--out=o", "--classes=dog, 3,,"]
    assert generate_flags.generate_config_from_flags(_parsed("generate", *given), default_seed=7) == \
        SynthesisConfig(classes=("dog", "3"), seed=7)
    assert generate_flags.generate_config_from_flags(_parsed("generate", *given, "--seed=0")).seed == 0
    assert generate_flags.output_from_flags(_parsed("generate", *given)).out == "o"


@pytest.mark.parametrize("command, argv, message", [
    ("train", ["--lr_decay_epochs=a,b"], "expected a comma-separated list of integers"),
    ("train", ["--epsilon=-0.1"], "epsilon must be > 0. Received: epsilon=-0.1"),
    ("evaluate", ["--route_temperatures=0.1,hot"], "Received: route_temperatures='0.1,hot'"),
    ("evaluate", ["--attacks=pgd,nope"], "attacks must be a comma-separated subset"),
    ("evaluate", ["--cw_confidence=0"], "cw_confidence must be > 0"),
    ("export", ["--precision=fp8"], "precision must be one of"),
    ("bench", ["--suite=fastest"], "Received: suite='fastest'"),
    ("bench", ["--max_busy=0"], "Received: max_busy=0"),
    ("generate", ["--per_class=0"], "per_class must be >= 1. Received: per_class=0"),
    ("theory", ["--table_sizes=1000,many"], "Received: table_sizes='1000,many'"),
    ("theory", ["--table_p=0.6,x"], "Received: table_p='0.6,x'"),
])
def test_bad_values_are_one_line_errors(command, argv, message):
    build = {"train": train_flags.train_config_from_flags,
             "evaluate": evaluate_flags.eval_config_from_flags,
             "export": export_flags.export_config_from_flags,
             "bench": bench_flags.bench_config_from_flags,
             "generate": generate_flags.generate_config_from_flags,
             "theory": theory_flags.theory_config_from_flags}[command]
    model_dir = {"bench": [], "theory": [], "generate": ["--model_dir=m", "--out=o", "--classes=3"]}.get(
        command, ["--model_dir=m"])
    with pytest.raises(NfiError, match=re.escape(message)) as e:
        build(_parsed(command, *model_dir, *argv))
    assert "\n" not in str(e.value)


# === The generic helper on a toy config ===

class Color(enum.Enum):
    RED = 1
    BLUE = 2


@dataclasses.dataclass(frozen=True)
class _Toy:
    name: str = dataclasses.field(metadata={"help": "A required name"})
    on: bool = dataclasses.field(default=True, metadata={"help": "A switch"})
    count: int = dataclasses.field(default=3, metadata={"help": "A count", "flag": "n"})
    rate: float | None = dataclasses.field(default=None, metadata={"help": "A rate", "none": "auto"})
    color: Color = dataclasses.field(default=Color.RED, metadata={"help": "A color"})
    sizes: tuple[int, ...] = dataclasses.field(default=(1, 2), metadata={"help": "Sizes"})
    tags: tuple[str, ...] | None = dataclasses.field(default=None, metadata={"help": "Tags", "none": "none"})
    hidden: int = 0


def test_the_helper_makes_typed_flags_and_reads_the_fields_back():
    specs = dcf.flag_specs(_Toy, exclude=("hidden",))
    values = flags.FlagValues()
    dcf.define(specs, flag_values=values)
    assert [values[s.flag].flag_type() for s in specs] == [
        "string", "bool", "int", "float", "enum class", LIST, LIST]
    assert values["rate"].help == "A rate (default: auto)" and values["n"].default == 3
    assert values["sizes"].default == ["1", "2"]
    values(["prog", "--name=x", "--n=5", "--rate=0.5", "--color=blue", "--sizes=4,8", "--tags=a,b"])
    assert _Toy(**dcf.values_from_flags(values, specs)) == _Toy(
        name="x", count=5, rate=0.5, color=Color.BLUE, sizes=(4, 8), tags=("a", "b"))
    unset = flags.FlagValues()
    dcf.define(specs, unset=True, flag_values=unset)
    unset(["prog", "--name=y"])
    assert dcf.values_from_flags(unset, specs, skip_none=True) == {"name": "y"}
    assert "(default: 3)" in unset["n"].help and "(default: 1,2)" in unset["sizes"].help


def test_a_field_without_help_must_be_excluded_by_name():
    with pytest.raises(TypeError, match="_Toy.hidden has no help"):
        dcf.flag_specs(_Toy)
    with pytest.raises(TypeError, match="no fields \\['hiden'\\]"):
        dcf.flag_specs(_Toy, exclude=("hiden",))


@pytest.mark.large  # a subprocess that imports TensorFlow
def test_train_help_on_the_command_line_shows_the_presets():
    proc = run_cli("nfi_tf.train", "--help", timeout=120)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    text = " ".join(proc.stdout.split())  # absl wraps the help lines
    assert "--attack_steps: Training PGD iterations (default: the dataset preset (mnist 40, " \
           "cifar10 10))" in text
    assert "--seed: Random seed (default: 0)" in text
