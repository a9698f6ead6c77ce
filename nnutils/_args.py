"""Argument checks shared by the nnutils modules: a clear error that names the argument."""

import numpy as np


def positive_int(argument, value):
    """An int >= 1 (TypeError for a non-int, ValueError below 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{argument} must be >= 1, got {value}")
    return int(value)


def non_negative_int(argument, value):
    """An int >= 0 (TypeError for a non-int, ValueError below 0)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{argument} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{argument} must be >= 0, got {value}")
    return int(value)


def iterable(argument, value, expected, allow_str=False):
    """value itself, if it is an iterable other than bytes (and other than str unless allow_str); TypeError otherwise."""
    if isinstance(value, (bytes, bytearray)) or (isinstance(value, str) and not allow_str) \
            or not hasattr(value, "__iter__"):
        raise TypeError(f"{argument} must be {expected}, got {type(value).__name__}")
    return value


def jit_compile(value):
    """True (XLA), False, or "auto": Keras's choice, XLA on JAX and on TensorFlow with a GPU (TypeError otherwise)."""
    if value is True or value is False or (isinstance(value, str) and value == "auto"):
        return value
    raise TypeError(f'jit_compile must be True, False or "auto", got {value!r}')


def id_matrix(argument, value):
    """A non-empty 2-D int array of token ids (sentences, positions), as NumPy (ValueError otherwise)."""
    value = np.asarray(value)
    if value.ndim != 2 or value.size == 0 or not np.issubdtype(value.dtype, np.integer):
        raise ValueError(f"{argument} must be a non-empty 2-D int array (sentences, positions), got shape "
                         f"{value.shape} and dtype {value.dtype}")
    return value
