"""Run profiles and seeding (introduced in notebook 01, used by every notebook)."""

import importlib
import os
import platform
import random

import numpy as np

PROFILES = ("full", "smoke")
PROFILE_VARIABLE = "NNUTILS_PROFILE"
BACKENDS = ("tensorflow", "jax", "torch")  # the Keras 3 backends the course runs on


def profile():
    """The current run profile, `full` (default) or `smoke`, from $NNUTILS_PROFILE (notebook 01)."""
    value = os.environ.get(PROFILE_VARIABLE, "full").strip().lower() or "full"
    if value not in PROFILES:
        raise ValueError(
            f"{PROFILE_VARIABLE} must be one of {PROFILES}, got {os.environ[PROFILE_VARIABLE]!r}"
        )
    return value


def pick(full, smoke):
    """Return `full` or `smoke` depending on the current profile (notebook 01)."""
    return full if profile() == "full" else smoke


def set_seed(seed):
    """Seed Python, NumPy and Keras (and so the backend) with one integer (notebook 01)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    import keras

    random.seed(int(seed))
    np.random.seed(int(seed))
    keras.utils.set_random_seed(int(seed))


def machine():
    """A short description of this machine: CPU cores and any GPU Keras can see (notebook 01)."""
    import keras

    cores = os.cpu_count()
    text = f"{platform.machine()} {cores}-core CPU"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            text += f", {len(gpus)} GPU"
    elif keras.backend.backend() == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus:
            text += f", {len(gpus)}x {gpus[0].device_kind}"
    elif keras.backend.backend() == "torch":
        import torch

        if torch.cuda.is_available():
            text += f", {torch.cuda.device_count()}x {torch.cuda.get_device_name(0)}"
    return text


def versions():
    """Versions of Python, NumPy, Keras and its backend, as a dict (notebook 01)."""
    import keras

    found = {"python": platform.python_version(), "numpy": np.__version__,
             "keras": keras.__version__, "backend": keras.backend.backend()}
    backend = keras.backend.backend()
    if backend in BACKENDS:  # the library that runs the computation, by its import name
        found[backend] = importlib.import_module(backend).__version__
    return found


def requires(backend):
    """True when Keras runs on `backend`; otherwise prints why the cell is skipped and returns False (notebook 07).

    For the few cells whose lesson is a tool of one library (TensorFlow's `tf.data`, say):
    ``if config.requires("tensorflow"): ...``.
    """
    import keras

    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    current = keras.backend.backend()
    if current == backend:
        return True
    print(f"Skipped: this cell shows a tool of {backend}, and Keras runs on {current} here "
          f"(set KERAS_BACKEND={backend} before starting Python to run it).")
    return False


def describe():
    """One line for a notebook's setup cell: profile, machine and versions (notebook 01)."""
    found = versions()
    parts = ", ".join(f"{k} {v}" for k, v in found.items())
    return f"profile={profile()} | {machine()} | {parts}"
