import numpy as np
import pytest
import keras

from nnutils import autodiff, mlp


def _batch(seed=0, n=16, sizes=(12, 9, 7, 5)):
    rng = np.random.default_rng(seed)
    params = mlp.init_mlp(list(sizes), seed=seed)
    x = rng.normal(size=(n, sizes[0]))
    labels = rng.integers(0, sizes[-1], size=n)
    return params, x, labels


def test_init_shapes_and_he_scale():
    params = mlp.init_mlp([784, 256, 10], seed=1)
    assert [(W.shape, b.shape) for W, b in params] == [((784, 256), (256,)), ((256, 10), (10,))]
    assert params[0][0].std() == pytest.approx(np.sqrt(2 / 784), rel=0.05)
    assert all(W.dtype == np.float64 for W, _ in params)


def _check_softmax(dtype, atol):
    rng = np.random.default_rng(3)
    logits, labels = (rng.normal(size=(6, 4)) * 30).astype(dtype), rng.integers(0, 4, 6)
    np.testing.assert_allclose(mlp.softmax(logits), keras.ops.convert_to_numpy(keras.ops.softmax(logits)), atol=atol)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert mlp.cross_entropy(logits, labels) == pytest.approx(float(keras_loss), rel=1e-6)


def test_softmax_and_cross_entropy_match_keras():
    _check_softmax("float32", atol=1e-6)


@pytest.mark.float64
def test_softmax_and_cross_entropy_match_keras_in_float64():
    _check_softmax("float64", atol=1e-12)


def _check_forward(dtype, atol):
    params, x, _ = _batch()
    model = keras.Sequential([keras.Input((12,), dtype=dtype), keras.layers.Dense(9, "relu", dtype=dtype),
                              keras.layers.Dense(7, "relu", dtype=dtype), keras.layers.Dense(5, dtype=dtype)])
    model.set_weights([w for pair in params for w in pair])
    np.testing.assert_allclose(mlp.mlp_forward(params, x)[0], keras.ops.convert_to_numpy(model(x.astype(dtype))),
                               atol=atol)


def test_forward_matches_keras_dense_layers():
    _check_forward("float32", atol=1e-5)


@pytest.mark.float64
def test_forward_matches_keras_dense_layers_in_float64():
    _check_forward("float64", atol=1e-12)


def _autodiff_loss_and_grads(params, x, labels, dtype):
    """The same MLP written with keras.ops and differentiated by the backend's autodiff."""
    ops = keras.ops

    def loss_of(flat):
        h = ops.convert_to_tensor(x.astype(dtype))
        for i in range(0, len(flat), 2):
            h = ops.add(ops.matmul(h, flat[i]), flat[i + 1])
            if i < len(flat) - 2:
                h = ops.relu(h)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, h, from_logits=True))

    return autodiff.value_and_grad(loss_of, [w.astype(dtype) for pair in params for w in pair])


def _check_gradients(dtype, loss_tol, atol, rtol):
    params, x, labels = _batch()
    loss, grads = mlp.loss_and_grads(params, x, labels)
    auto_loss, auto_grads = _autodiff_loss_and_grads(params, x, labels, dtype)
    assert loss == pytest.approx(auto_loss, rel=loss_tol, abs=loss_tol)
    for ours, theirs in zip([g for pair in grads for g in pair], auto_grads):
        np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def test_gradients_match_autodiff_to_1e6():
    _check_gradients("float32", loss_tol=1e-6, atol=1e-6, rtol=1e-4)


@pytest.mark.float64
def test_gradients_match_autodiff_in_float64():
    _check_gradients("float64", loss_tol=1e-12, atol=1e-12, rtol=1e-9)


def test_gradients_match_finite_differences():
    params, x, labels = _batch(seed=5, n=8, sizes=(4, 6, 3))
    _, grads = mlp.loss_and_grads(params, x, labels)
    for (W, b), (dW, db) in zip(params, grads):
        for array, analytic in ((W, dW), (b, db)):
            numeric = mlp.numerical_gradient(lambda: mlp.loss_and_grads(params, x, labels)[0], array)
            np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_sgd_lowers_the_loss_and_train_mlp_learns():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 2))
    labels = (x[:, 0] * x[:, 1] > 0).astype(int)  # XOR-like: not linearly separable
    params = mlp.init_mlp([2, 32, 2], seed=0)
    start = mlp.cross_entropy(mlp.mlp_forward(params, x)[0], labels)
    params, history = mlp.train_mlp(params, x, labels, epochs=60, batch_size=32, learning_rate=0.1,
                                    validation=(x, labels))
    assert history["loss"][-1] < start / 3
    assert mlp.accuracy(params, x, labels) > 0.9
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy"} and len(history["loss"]) == 60


@pytest.mark.parametrize("call, words", [
    (lambda: mlp.init_mlp([784]), "layer_sizes"),
    (lambda: mlp.init_mlp([784, 0, 10]), "layer_sizes"),
    (lambda: mlp.mlp_forward(mlp.init_mlp([4, 2]), np.zeros((3, 5))), r"x must have shape \(n, 4\)"),
    (lambda: mlp.mlp_forward("weights", np.zeros((3, 4))), "params must be"),
    (lambda: mlp.cross_entropy(np.zeros((3, 4)), np.array([0, 1, 4])), r"labels must lie in \[0, 4\)"),
    (lambda: mlp.cross_entropy(np.zeros((3, 4)), np.array([0.0, 1.0, 2.0])), "labels must be 3 integer"),
    (lambda: mlp.sgd_step(mlp.init_mlp([4, 2]), [], 0.1), "grads must have one"),
    (lambda: mlp.sgd_step(mlp.init_mlp([4, 2]), [(0, 0)], -1.0), "learning_rate"),
    (lambda: mlp.numerical_gradient(lambda: 0.0, np.zeros(3, np.float32)), "array must be a float64"),
    (lambda: mlp.train_mlp(mlp.init_mlp([4, 2]), np.zeros((3, 4)), np.zeros(3, int), 0, 2, 0.1), "epochs"),
])
def test_bad_input_names_the_argument(call, words):
    with pytest.raises((ValueError, TypeError), match=words):
        call()


def test_adam_step_matches_keras_adam_over_several_steps():
    params, x, labels = _batch(seed=4, sizes=(6, 5, 3))
    variables = [keras.Variable(a.astype("float32")) for pair in params for a in pair]
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    ours, state = [(W.astype("float32"), b.astype("float32")) for W, b in params], None
    rng = np.random.default_rng(0)
    for _ in range(5):
        grads = [(rng.normal(size=W.shape).astype("float32"), rng.normal(size=b.shape).astype("float32"))
                 for W, b in ours]
        optimizer.apply([keras.ops.convert_to_tensor(g) for pair in grads for g in pair], variables)
        ours, state = mlp.adam_step(ours, grads, state, 0.01)
    for a, v in zip([a for pair in ours for a in pair], variables):
        np.testing.assert_allclose(a, keras.ops.convert_to_numpy(v), atol=1e-6)
    assert state[0] == 5


def test_dropout_keeps_the_expectation_and_matches_keras_on_the_kept_units():
    h = np.random.default_rng(1).uniform(0.5, 2.0, size=(400, 50))
    out, keep = mlp.dropout(h, 0.2, np.random.default_rng(2))
    assert set(np.unique(out[~keep])) == {0.0}
    np.testing.assert_allclose(out[keep], h[keep] / 0.8)
    assert abs(keep.mean() - 0.8) < 0.01 and abs(out.mean() / h.mean() - 1) < 0.01
    keras_out = keras.ops.convert_to_numpy(keras.layers.Dropout(0.2, seed=3)(h.astype("float32"), training=True))
    kept = keras_out != 0
    np.testing.assert_allclose(keras_out[kept], (h[kept] / 0.8).astype("float32"), rtol=1e-6)  # same scaling
    np.testing.assert_array_equal(mlp.dropout(h, 0.0, np.random.default_rng(0))[0], h)


@pytest.mark.parametrize("call, error, word", [
    (lambda: mlp.dropout(np.ones(3), 1.0, np.random.default_rng(0)), ValueError, "rate"),
    (lambda: mlp.dropout(np.ones(3), 0.5, 42), TypeError, "rng"),
    (lambda: mlp.adam_step(mlp.init_mlp([4, 2]), [], None, 0.1), ValueError, "grads"),
    (lambda: mlp.adam_step(mlp.init_mlp([4, 2]), [(0, 0)], None, 0.0), ValueError, "learning_rate"),
])
def test_adam_and_dropout_bad_input(call, error, word):
    with pytest.raises(error, match=word):
        call()
