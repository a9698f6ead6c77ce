"""nnutils.autodiff: one gradient function on every Keras backend, checked against calculus and finite differences."""

import keras
import numpy as np
import pytest

from nnutils import autodiff


def test_gradient_of_a_quadratic_is_known_in_closed_form():
    a = np.array([1.0, -2.0, 3.0], "float32")
    value, grads = autodiff.value_and_grad(lambda p: keras.ops.sum(p["w"] ** 2) + 3.0 * keras.ops.sum(p["b"]),
                                           {"w": a, "b": np.zeros(2, "float32")})
    assert value == pytest.approx(14.0)
    np.testing.assert_allclose(grads["w"], 2 * a)
    np.testing.assert_allclose(grads["b"], [3.0, 3.0])
    assert isinstance(grads["w"], np.ndarray)


def test_nested_lists_keep_their_structure_and_unused_inputs_get_zeros():
    params = [(np.ones((2, 3), "float32"), np.ones(3, "float32")), (np.full((3, 1), 2.0, "float32"),)]
    grads = autodiff.grad(lambda p: keras.ops.sum(keras.ops.matmul(p[0][0], p[1][0])), params)
    assert isinstance(grads, list) and len(grads[0]) == 2 and len(grads[1]) == 1
    np.testing.assert_allclose(grads[0][0], np.full((2, 3), 2.0))   # d/dA sum(A @ B) = 1 @ B^T
    np.testing.assert_allclose(grads[1][0], np.full((3, 1), 2.0))   # d/dB sum(A @ B) = A^T @ 1
    np.testing.assert_allclose(grads[0][1], np.zeros(3))            # not used by fn


def test_softmax_cross_entropy_gradient_is_probabilities_minus_one_hot():
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(5, 4)).astype("float32"), np.array([0, 3, 1, 1, 2])
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    grads = autodiff.grad(lambda z: loss(labels, z), logits)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(grads, (probs - np.eye(4)[labels]) / len(labels), atol=1e-6)


def test_gradient_agrees_with_finite_differences_through_a_loop():
    """A small recurrence unrolled in Python, as in notebook 04's BPTT check."""
    rng = np.random.default_rng(1)
    w0, xs = rng.normal(size=(3, 3)).astype("float32") * 0.5, rng.normal(size=(6, 3)).astype("float32")

    def loss_of(w):
        h = keras.ops.zeros(3)
        for x in xs:
            h = keras.ops.tanh(keras.ops.add(keras.ops.matmul(w, h), x))  # ops, not +: torch + NumPy fails
        return keras.ops.sum(h ** 2)

    grads = autodiff.grad(loss_of, w0)
    w64, eps = w0.astype("float64"), 1e-3
    numpy_loss = lambda w: np.sum(np.stack(_unroll(w, xs)) ** 2)  # noqa: E731
    for index in [(0, 0), (1, 2), (2, 1)]:
        plus, minus = w64.copy(), w64.copy()
        plus[index] += eps
        minus[index] -= eps
        assert grads[index] == pytest.approx((numpy_loss(plus) - numpy_loss(minus)) / (2 * eps), rel=1e-3, abs=1e-5)


def _unroll(w, xs):
    h = np.zeros(3)
    for x in xs:
        h = np.tanh(w @ h + x)
    return h


def test_model_gradients_match_a_hand_computed_dense_layer_and_leave_the_model_untouched():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    x = np.random.default_rng(2).normal(size=(8, 4)).astype("float32")
    y = np.arange(8) % 3
    before = [w.copy() for w in model.get_weights()]
    value, (grad_w, grad_b) = autodiff.model_value_and_grad(model, keras.losses.SparseCategoricalCrossentropy(), x, y)
    W, b = before
    z = x @ W + b
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    error = (p - np.eye(3)[y]) / len(x)
    assert value == pytest.approx(-np.mean(np.log(p[np.arange(8), y])), rel=1e-5)
    np.testing.assert_allclose(grad_w, x.T @ error, atol=1e-6)
    np.testing.assert_allclose(grad_b, error.sum(0), atol=1e-6)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("call, words", [
    (lambda: autodiff.grad("not a function", np.ones(2, "float32")), "fn must be a callable"),
    (lambda: autodiff.grad(keras.ops.sum, {}), "params must hold at least one array"),
    (lambda: autodiff.grad(keras.ops.sum, np.arange(3)), "float arrays"),
    (lambda: autodiff.grad(lambda p: p * 2, np.ones(2, "float32")), "fn must return a scalar"),
    (lambda: autodiff.model_value_and_grad("model", keras.ops.sum, 1, 1), "model must be a keras.Model"),
])
def test_bad_input_names_the_argument(call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call()
