"""Instant feedback for exercises: each check prints a pass line or raises AssertionError (notebook 01)."""

import numpy as np


def _passed(name):
    print(f"✔ {name}: correct")


def _as_array(argument, value):
    if value is None:
        raise AssertionError(f"{argument}: received None; did you fill in the exercise cell?")
    try:
        return np.asarray(value, dtype=np.float64)
    except RuntimeError:  # a PyTorch tensor that tracks gradients refuses np.asarray; Keras converts any backend's
        import keras

        return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{argument} must be array-like numbers, got {type(value).__name__}") from None


def check_shape(name, received, expected_shape):
    """Check that an array has the expected shape (notebook 01)."""
    shape = tuple(np.shape(received)) if received is not None else None
    if shape != tuple(expected_shape):
        raise AssertionError(f"{name}: expected shape {tuple(expected_shape)}, received {shape}")
    _passed(name)


def check_close(name, received, expected, rtol=1e-5, atol=1e-8):
    """Check that an array or number equals the expected one up to tolerance (notebook 01)."""
    got, want = _as_array("received", received), _as_array("expected", expected)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: expected shape {want.shape}, received shape {got.shape}")
    if not np.allclose(got, want, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(got - want)))
        raise AssertionError(f"{name}: expected {_short(want)}, received {_short(got)} (largest difference {worst:.3g})")
    _passed(name)


def check_equal(name, received, expected):
    """Check exact equality of numbers, strings or sequences (notebook 01)."""
    same = np.array_equal(np.asarray(received), np.asarray(expected)) if not isinstance(expected, str) else received == expected
    if not same:
        raise AssertionError(f"{name}: expected {expected!r}, received {received!r}")
    _passed(name)


def check_at_least(name, received, minimum):
    """Check that a score reaches a minimum, e.g. an accuracy (notebook 01)."""
    value = float(_as_array("received", received))
    if not value >= minimum:
        raise AssertionError(f"{name}: expected at least {minimum}, received {value:.4f}")
    _passed(name)


def _short(array):
    return np.array2string(np.asarray(array), precision=4, threshold=8, edgeitems=2)
