"""nfi_tf/cpu_kernels.py: oneDNN's kernels are asked for only where it helps and is still in time."""

import os
import subprocess
import sys

from nfi_tf.cpu_kernels import VARIABLE, prefer_onednn


def test_set_on_x86_64_linux_before_tensorflow_loads():
    env = {}
    assert prefer_onednn(env, "Linux", "x86_64", tensorflow_loaded=False) == "1"
    assert env == {VARIABLE: "1"}


def test_the_users_setting_another_platform_or_a_loaded_tensorflow_decide():
    for setting in ("0", "1"):
        env = {VARIABLE: setting}
        assert prefer_onednn(env, "Linux", "x86_64", tensorflow_loaded=False) is None
        assert env == {VARIABLE: setting}
    for system, machine in (("Linux", "aarch64"), ("Darwin", "x86_64"), ("Windows", "AMD64")):
        env = {}
        assert prefer_onednn(env, system, machine, tensorflow_loaded=False) is None and env == {}
    env = {}
    assert prefer_onednn(env, "Linux", "x86_64", tensorflow_loaded=True) is None and env == {}


def test_importing_the_package_first_sets_it_and_a_user_setting_wins():
    code = "import os, nfi_tf; print(os.environ.get('TF_ENABLE_ONEDNN_OPTS'))"
    base = {k: v for k, v in os.environ.items() if k != VARIABLE}
    out = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True)
    import platform

    expected = "1" if (platform.system(), platform.machine()) == ("Linux", "x86_64") else "None"
    assert out.stdout.strip().splitlines()[-1] == expected
    out = subprocess.run([sys.executable, "-c", code], env={**base, VARIABLE: "0"},
                         capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "0"


def test_user_environment_drops_only_what_the_package_wrote(monkeypatch):
    from nfi_tf import cpu_kernels

    monkeypatch.setattr(cpu_kernels, "set_by_package", True)
    monkeypatch.setenv(VARIABLE, "1")
    assert VARIABLE not in cpu_kernels.user_environment()
    monkeypatch.setattr(cpu_kernels, "set_by_package", False)
    assert cpu_kernels.user_environment()[VARIABLE] == "1"  # the user's own setting is kept
