"""The package as a Python user meets it: import registers the layers, the README's Python
example runs, argument errors are ValueErrors, every command's --help shows its own flags."""

import os
import re
import shutil
import subprocess
import sys

import pytest
from helpers import REPO, run_cli

from nfi_tf import NfiError
from nfi_tf.theory import min_heads


def _readme_python_example() -> str:
    text = open(os.path.join(REPO, "README.md")).read()
    match = re.search(r"<!-- python-api -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md lost its Python example"
    return match.group(1)


@pytest.mark.large
def test_readme_python_example_runs_in_a_fresh_interpreter(trained_mnist_dir, tmp_path):
    model_dir = tmp_path / "quick"
    model_dir.mkdir()
    for name in ("config.json", "model.keras"):
        shutil.copy(os.path.join(trained_mnist_dir, name), model_dir / name)
    code = _readme_python_example().replace("runs/mnist_quickstart", str(model_dir))
    # Plain keras.models.load_model after `import nfi_tf` (the custom layers are registered).
    keras_path = str(model_dir / "model.keras")
    code += (f"\nimport keras\nm = keras.models.load_model({keras_path!r})\n"
             "print('plain keras load ok', len(m.outputs))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert any(line.startswith("(8, 10)") for line in lines), proc.stdout
    still = [float(line.split()[-1]) for line in lines if line.startswith("still correct:")]
    assert len(still) == 1 and 0.0 <= still[0] < 1.0  # the attack did something
    assert os.path.exists(model_dir / "export" / "model.onnx")
    assert "plain keras load ok" in proc.stdout


def test_user_errors_are_value_errors():
    assert issubclass(NfiError, ValueError)
    with pytest.raises(ValueError, match="p must satisfy"):
        min_heads(10_000, 0.4)


def test_export_output_that_names_an_onnx_file_is_a_one_line_error(tmp_path):
    from export.config import ExportConfig, validate_export

    with pytest.raises(NfiError, match=r"--output is the export directory.*Received: output=.*model\.onnx"):
        validate_export(ExportConfig(model_dir="m", output_dir=str(tmp_path / "model.onnx")))
    assert not os.path.exists(tmp_path / "model.onnx")


@pytest.mark.parametrize("module, own, foreign", [
    ("nfi_tf.train", ("--dataset", "--method", "--epsilon", "--robust_dims", "--model_dir"), "--test_size"),
    ("nfi_tf.evaluate", ("--attacks", "--square_queries", "--onnx", "--merge", "--keras_model", "--dataset"),
     "--epochs"),
    ("export.to_onnx", ("--model_dir", "--quantize", "--output"), "--attacks"),
])
@pytest.mark.large
def test_help_lists_the_commands_own_flags_and_nothing_else(module, own, foreign):
    proc = run_cli(module, "--help", timeout=120)
    out = proc.stdout  # absl exits 1 after printing the help
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    listed = set(re.findall(r"^\s+--(?:\[no\])?(\w+):", out, re.M))
    for flag in own:
        assert flag[2:] in listed, (module, flag)
    assert foreign[2:] not in listed
    assert "--alsologtostderr" not in out and "--xla_" not in out  # absl's and TF's own stay out


@pytest.mark.large
def test_quantized_export_from_the_command_line(trained_mnist_dir, tmp_path):
    out = str(tmp_path / "export")
    proc = run_cli("export.to_onnx", f"--model_dir={trained_mnist_dir}", f"--output={out}", "--quantize",
                   "--parity_examples=32", "--calibration_examples=64",
                   "--quantization_eval_examples=100", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.getsize(os.path.join(out, "model.int8.onnx")) < os.path.getsize(
        os.path.join(out, "model.onnx"))
