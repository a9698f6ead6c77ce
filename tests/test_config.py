import importlib
import random

import numpy as np
import pytest

from nnutils import config


def test_profile_defaults_to_full(monkeypatch):
    monkeypatch.delenv("NNUTILS_PROFILE", raising=False)
    assert config.profile() == "full"
    assert config.pick(full=10, smoke=1) == 10


def test_profile_switch_to_smoke(monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "smoke")
    assert config.profile() == "smoke"
    assert config.pick(full=10, smoke=1) == 1


def test_profile_is_case_and_space_tolerant(monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", " Smoke ")
    assert config.profile() == "smoke"


def test_unknown_profile_names_the_variable(monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "fast")
    with pytest.raises(ValueError, match="NNUTILS_PROFILE.*'fast'"):
        config.pick(full=1, smoke=0)


def test_set_seed_makes_python_numpy_and_keras_repeatable():
    import keras

    def draw():
        return random.random(), np.random.rand(), float(keras.random.uniform(()))

    config.set_seed(7)
    first = draw()
    config.set_seed(7)
    assert draw() == first
    config.set_seed(8)
    assert draw() != first


@pytest.mark.parametrize("seed, error", [("1", TypeError), (1.5, TypeError), (True, TypeError), (-1, ValueError), (2**32, ValueError)])
def test_set_seed_rejects_bad_seeds(seed, error):
    with pytest.raises(error, match="seed"):
        config.set_seed(seed)


def test_describe_names_profile_backend_and_cores(monkeypatch):
    monkeypatch.setenv("NNUTILS_PROFILE", "smoke")
    line = config.describe()
    assert line.startswith("profile=smoke")
    assert "keras 3." in line and "CPU" in line
    found = config.versions()
    assert found["backend"] in ("tensorflow", "jax", "torch")
    assert found[found["backend"]] == importlib.import_module(found["backend"]).__version__  # the library behind Keras
    assert f"{found['backend']} {found[found['backend']]}" in line


def test_requires_is_true_on_the_running_backend_and_explains_a_skip_elsewhere(capsys):
    import keras

    current = keras.backend.backend()
    assert config.requires(current) is True
    assert capsys.readouterr().out == ""
    other = next(b for b in config.BACKENDS if b != current)
    assert config.requires(other) is False
    printed = capsys.readouterr().out
    assert printed.startswith("Skipped") and other in printed and current in printed and f"KERAS_BACKEND={other}" in printed


def test_requires_rejects_an_unknown_backend():
    with pytest.raises(ValueError, match="backend must be one of"):
        config.requires("tensorflw")
