"""Automatic differentiation on any Keras backend: the library's answer that our hand-written gradients are checked
against (introduced in notebook 01, used again in 02, 03 and 04).

Keras trains with the backend's own autodiff (TensorFlow's GradientTape, `jax.grad` or `torch.autograd`). The
notebooks differentiate their own code with it through one function, so that no cell has to name the backend:

    value, grads = autodiff.value_and_grad(lambda p: keras.ops.sum(p["w"] ** 2), {"w": np.ones(3)})

`fn` is written with `keras.ops`; `params` is any nest (dict, list, tuple) of arrays, and the gradients come back
as NumPy arrays in the same nest. Precision: TensorFlow computes float64 inputs in float64; Keras on JAX and
PyTorch computes its ops in float32 whatever the inputs (`keras.backend.result_type` maps float64 to float32 there),
so compare at float32 tolerances when a check must hold on every backend.
"""

import keras
import numpy as np

from nnutils.config import BACKENDS


def _check(fn, params):
    if not callable(fn):
        raise TypeError(f"fn must be a callable that returns a scalar, got {type(fn).__name__}")
    leaves = keras.tree.flatten(params)
    if not leaves:
        raise ValueError("params must hold at least one array (a dict, list or tuple of arrays)")
    arrays = []
    for leaf in leaves:
        array = np.asarray(keras.ops.convert_to_numpy(leaf)) if not isinstance(leaf, np.ndarray) else leaf
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"params must hold float arrays (gradients need real numbers), got dtype {array.dtype}")
        arrays.append(array)
    return arrays


def _as_scalar(value):
    if tuple(value.shape) != ():
        raise ValueError(f"fn must return a scalar, got shape {tuple(value.shape)}")
    return value


def value_and_grad(fn, params):
    """The value of a scalar `fn(params)` and its gradient with respect to every array in `params` (notebook 01)."""
    arrays = _check(fn, params)
    backend = keras.backend.backend()
    pack = lambda leaves: keras.tree.pack_sequence_as(params, leaves)  # noqa: E731
    if backend == "tensorflow":
        import tensorflow as tf

        variables = [tf.Variable(a) for a in arrays]
        with tf.GradientTape() as tape:
            value = _as_scalar(fn(pack(variables)))
        grads = tape.gradient(value, variables)
    elif backend == "jax":
        import jax

        value, grads = jax.value_and_grad(lambda leaves: _as_scalar(fn(pack(leaves))))(
            [keras.ops.convert_to_tensor(a) for a in arrays])
    elif backend == "torch":
        tensors = [keras.ops.convert_to_tensor(a).detach().clone().requires_grad_(True) for a in arrays]
        value = _as_scalar(fn(pack(tensors)))
        value.backward()
        grads = [t.grad for t in tensors]
    else:
        raise NotImplementedError(f"value_and_grad supports the backends {BACKENDS}, not {backend!r}")
    grads = [np.zeros_like(a) if g is None else keras.ops.convert_to_numpy(g) for a, g in zip(arrays, grads)]
    return float(keras.ops.convert_to_numpy(value)), pack(grads)


def grad(fn, params):
    """The gradient of a scalar `fn(params)` with respect to every array in `params`, as NumPy (notebook 01)."""
    return value_and_grad(fn, params)[1]


def model_value_and_grad(model, loss_fn, x, y, training=True):
    """`loss_fn(y, model(x))` and its gradient with respect to each trainable variable of `model` (notebook 03).

    The gradients come back as a list of NumPy arrays in the order of `model.trainable_variables`. Works through
    `model.stateless_call`, so the model's own variables (batch-norm statistics included) are left untouched.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model, got {type(model).__name__}")
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a callable loss(y_true, y_pred), got {type(loss_fn).__name__}")
    frozen = [v.value for v in model.non_trainable_variables]

    def compute(trainable):
        outputs, _ = model.stateless_call(trainable, frozen, x, training=training)
        return loss_fn(y, outputs)

    trainable = [keras.ops.convert_to_numpy(v.value) for v in model.trainable_variables]
    return value_and_grad(compute, trainable)
