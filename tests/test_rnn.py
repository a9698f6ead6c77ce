import keras
import numpy as np
import pytest
import tensorflow as tf

from nnutils import rnn

D, H, K, T = 7, 5, 6, 12


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    params = rnn.init_rnn_params(D, H, K, recurrent_scale=0.9, scale=0.5, seed=2)
    params["b"] = rng.normal(0, 0.1, H)
    params["c"] = rng.normal(0, 0.1, K)
    inputs = rng.integers(0, D, T)
    targets = rng.integers(0, K, T)
    h0 = rng.normal(0, 0.3, H)
    return params, inputs, targets, h0


def _tape_rnn(params, inputs, targets, h0):
    """The same RNN in TensorFlow float64: (loss, grads, hidden states, last-step loss)."""
    variables = {k: tf.Variable(v, dtype=tf.float64) for k, v in params.items()}
    with tf.GradientTape(persistent=True) as tape:
        h, hs, losses = tf.constant(h0), [], []
        for x, y in zip(inputs, targets):
            h = tf.tanh(variables["U"][:, int(x)] + tf.linalg.matvec(variables["W"], h) + variables["b"])
            hs.append(h)
            logits = tf.linalg.matvec(variables["V"], h) + variables["c"]
            losses.append(-tf.nn.log_softmax(logits)[int(y)])
        loss = tf.add_n(losses)
    grads = {k: tape.gradient(loss, v).numpy() for k, v in variables.items()}
    dh_last = [tape.gradient(losses[-1], h_t) for h_t in hs]
    dh_all = [tape.gradient(loss, h_t) for h_t in hs]
    return float(loss), grads, hs, dh_last, dh_all


def test_bptt_matches_gradient_tape_in_float64(problem):
    params, inputs, targets, h0 = problem
    loss, grads, h_T = rnn.bptt(params, inputs, targets, h0)
    tf_loss, tf_grads, tf_hs, _, _ = _tape_rnn(params, inputs, targets, h0)
    assert abs(loss - tf_loss) < 1e-10
    assert set(grads) == set(params)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == np.float64
        np.testing.assert_allclose(grads[k], tf_grads[k], rtol=0, atol=1e-8)
    np.testing.assert_allclose(h_T, tf_hs[-1].numpy(), atol=1e-12)


def test_bptt_matches_finite_differences(problem):
    params, inputs, targets, h0 = problem
    _, grads, _ = rnn.bptt(params, inputs, targets, h0)
    eps = 1e-6
    for key, index in (("W", (1, 2)), ("U", (0, inputs[0])), ("b", (3,))):
        plus, minus = {k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in params.items()}
        plus[key][index] += eps
        minus[key][index] -= eps
        numeric = (rnn.bptt(plus, inputs, targets, h0)[0] - rnn.bptt(minus, inputs, targets, h0)[0]) / (2 * eps)
        assert abs(numeric - grads[key][index]) < 1e-6


def test_rnn_forward_equals_keras_simple_rnn(problem):
    params, inputs, _, h0 = problem
    hs, logits = rnn.rnn_forward(params, inputs, h0)
    assert hs.shape == (T, H) and logits.shape == (T, K)
    layer = keras.layers.SimpleRNN(H, return_sequences=True, dtype="float64")
    one_hot = np.eye(D)[inputs][None]
    layer(one_hot)
    layer.set_weights([params["U"].T, params["W"].T, params["b"]])
    keras_hs = layer(one_hot, initial_state=[h0[None]])
    np.testing.assert_allclose(hs, keras.ops.convert_to_numpy(keras_hs)[0], atol=1e-12)
    np.testing.assert_allclose(logits, hs @ params["V"].T + params["c"], atol=1e-12)


def test_hidden_grad_norms_match_gradient_tape(problem):
    params, inputs, targets, h0 = problem
    _, _, _, dh_last, dh_all = _tape_rnn(params, inputs, targets, h0)
    np.testing.assert_allclose(rnn.hidden_grad_norms(params, inputs, targets, h0),
                               [np.linalg.norm(g.numpy()) for g in dh_last], atol=1e-10)
    np.testing.assert_allclose(rnn.hidden_grad_norms(params, inputs, targets, h0, last_only=False),
                               [np.linalg.norm(g.numpy()) for g in dh_all], atol=1e-10)


def test_small_recurrent_weights_make_gradients_vanish():
    inputs = targets = np.zeros(30, dtype=int)
    params = rnn.init_rnn_params(3, 8, 3, recurrent_scale=0.5, scale=0.5, seed=0)
    norms = rnn.hidden_grad_norms(params, inputs, targets, np.zeros(8))
    assert norms[0] < 1e-6 * norms[-1] and np.all(np.diff(norms) > 0)


def test_init_rnn_params_shapes_and_spectrum():
    params = rnn.init_rnn_params(4, 6, 3, recurrent_scale=1.5, seed=0)
    assert {k: v.shape for k, v in params.items()} == {"U": (6, 4), "W": (6, 6), "V": (3, 6), "b": (6,), "c": (3,)}
    np.testing.assert_allclose(np.linalg.svd(params["W"], compute_uv=False), 1.5)
    again = rnn.init_rnn_params(4, 6, 3, recurrent_scale=1.5, seed=0)
    assert all(np.array_equal(params[k], again[k]) for k in params)


def test_clip_by_global_norm_matches_tensorflow():
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)) * 10, "b": rng.normal(size=5)}
    clipped, norm = rnn.clip_by_global_norm(grads, 2.0)
    tf_clipped, tf_norm = tf.clip_by_global_norm([tf.constant(g) for g in grads.values()], 2.0)
    assert abs(norm - float(tf_norm)) < 1e-9 and list(clipped) == ["a", "b"]
    for got, want in zip(clipped.values(), tf_clipped):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-12)
    assert abs(np.sqrt(sum(np.sum(g ** 2) for g in clipped.values())) - 2.0) < 1e-9
    small, small_norm = rnn.clip_by_global_norm([np.ones(4)], 5.0)  # below the threshold: unchanged
    assert small_norm == 2.0 and np.array_equal(small[0], np.ones(4))


def test_sample_with_temperature():
    logits = np.array([1.0, 3.0, 0.5, 2.0])
    assert rnn.sample_with_temperature(logits, 0) == 1
    assert rnn.sample_with_temperature(logits, 1.0, rng=3) == rnn.sample_with_temperature(logits, 1.0, rng=3)
    rng = np.random.default_rng(0)
    draws = np.bincount([rnn.sample_with_temperature(logits, 1.0, rng) for _ in range(4000)], minlength=4) / 4000
    probs = np.exp(logits) / np.exp(logits).sum()
    assert np.abs(draws - probs).max() < 0.03
    cold = [rnn.sample_with_temperature(logits, 0.05, rng) for _ in range(200)]
    assert cold.count(1) == 200


def _randomised(layer):
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(0, 0.4, w.shape).astype("float32") for w in layer.get_weights()])
    return layer


@pytest.fixture
def sequences():
    return np.random.default_rng(0).normal(size=(3, 9, 5)).astype("float32")


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_cells_reproduce_the_builtins(name, sequences):
    builtin = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[name](4, return_sequences=True)
    builtin(sequences)
    _randomised(builtin)  # non-zero biases, so that every weight matters
    cell = {"lstm": rnn.LSTMCell, "gru": rnn.GRUCell}[name](4)
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer(sequences)
    assert [w.shape for w in layer.get_weights()] == [w.shape for w in builtin.get_weights()]
    layer.set_weights(builtin.get_weights())
    np.testing.assert_allclose(layer(sequences), builtin(sequences), atol=1e-5)
    trace = cell.trace(sequences)
    np.testing.assert_allclose(trace["hidden"], builtin(sequences), atol=1e-5)
    gates = ("input", "forget", "output") if name == "lstm" else ("update", "reset")
    assert all(trace[g].shape == (3, 9, 4) and trace[g].min() >= 0 and trace[g].max() <= 1 for g in gates)


def test_gru_bias_shape_and_lstm_forget_bias(sequences):
    gru = keras.layers.RNN(rnn.GRUCell(4))
    gru(sequences)
    assert [w.shape for w in gru.get_weights()] == [(5, 12), (4, 12), (2, 12)]
    for coupled in (False, True):
        lstm = keras.layers.RNN(rnn.LSTMCell(4, coupled=coupled))
        lstm(sequences)
        bias = lstm.get_weights()[2]
        forget = 0 if coupled else 1
        assert np.array_equal(bias, np.eye(len(bias) // 4)[forget].repeat(4))


@pytest.mark.parametrize("peephole, coupled, shapes", [
    (True, False, [(5, 16), (4, 16), (16,), (3, 4)]),
    (False, True, [(5, 12), (4, 12), (12,)]),
    (True, True, [(5, 12), (4, 12), (12,), (2, 4)]),
])
def test_lstm_variants(peephole, coupled, shapes, sequences):
    default = keras.layers.RNN(rnn.LSTMCell(4), return_sequences=True)
    default(sequences)
    _randomised(default)
    cell = rnn.LSTMCell(4, peephole=peephole, coupled=coupled)
    layer = keras.layers.RNN(cell, return_sequences=True)
    layer(sequences)
    assert [w.shape for w in layer.get_weights()] == shapes
    weights = default.get_weights()
    if coupled:  # drop the input gate's columns: the remaining gates are (f, c, o)
        weights = [weights[0][:, 4:], weights[1][:, 4:], weights[2][4:]]
    layer.set_weights(weights + ([np.full(shapes[-1], 0.5, "float32")] if peephole else []))
    assert not np.allclose(layer(sequences), default(sequences), atol=1e-3)
    trace = cell.trace(sequences)
    if coupled:
        np.testing.assert_allclose(trace["input"], 1 - trace["forget"], atol=1e-6)
    if peephole:  # with zero peepholes the variant falls back to the one without
        layer.set_weights(weights + [np.zeros(shapes[-1], "float32")])
        if not coupled:
            np.testing.assert_allclose(layer(sequences), default(sequences), atol=1e-6)


def test_keras_file_round_trip(tmp_path, sequences):
    inputs = keras.Input((None, 5))
    x = keras.layers.RNN(rnn.LSTMCell(6, peephole=True), return_sequences=True)(inputs)
    x = keras.layers.RNN(rnn.LSTMCell(6, coupled=True), return_sequences=True)(x)
    x = keras.layers.RNN(rnn.GRUCell(4))(x)
    model = keras.Model(inputs, keras.layers.Dense(2)(x))
    path = tmp_path / "cells.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(sequences, verbose=0), model.predict(sequences, verbose=0), atol=1e-6)
    cells = [layer.cell for layer in loaded.layers if isinstance(layer, keras.layers.RNN)]
    assert [type(c).__name__ for c in cells] == ["LSTMCell", "LSTMCell", "GRUCell"]
    assert (cells[0].peephole, cells[0].coupled, cells[1].coupled, cells[2].units) == (True, False, True, 4)
    config = rnn.LSTMCell(3, peephole=True).get_config()
    assert rnn.LSTMCell.from_config(config).get_config() == config


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple"])
@pytest.mark.parametrize("return_sequences", [True, False])
def test_bidirectional_equals_keras(kind, return_sequences, sequences):
    make = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU, "simple": keras.layers.SimpleRNN}[kind]
    builtin = keras.layers.Bidirectional(make(4, return_sequences=return_sequences))
    builtin(sequences)  # build
    _randomised(builtin)
    expected = builtin(sequences)
    forward, backward = make(4, return_sequences=return_sequences), make(4, return_sequences=return_sequences)
    forward(sequences), backward(sequences)
    weights = builtin.get_weights()
    forward.set_weights(weights[: len(weights) // 2])
    backward.set_weights(weights[len(weights) // 2:])
    got = rnn.bidirectional(forward, backward, sequences)
    assert tuple(got.shape) == tuple(expected.shape)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_bidirectional_backward_half_sees_the_future(sequences):
    forward = keras.layers.SimpleRNN(3, return_sequences=True)
    backward = keras.layers.SimpleRNN(3, return_sequences=True)
    before = keras.ops.convert_to_numpy(rnn.bidirectional(forward, backward, sequences))
    changed = sequences.copy()
    changed[:, -1] += 1.0  # change only the last step
    after = keras.ops.convert_to_numpy(rnn.bidirectional(forward, backward, changed))
    assert np.allclose(before[:, :-1, :3], after[:, :-1, :3])  # forward half: earlier outputs unchanged
    assert not np.allclose(before[:, 0, 3:], after[:, 0, 3:])  # backward half at t=0 sees the last step


def test_adding_problem():
    x, y = rnn.adding_problem(500, 100, seed=0)
    assert x.shape == (500, 100, 2) and y.shape == (500,) and x.dtype == y.dtype == np.float32
    markers = x[:, :, 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :50].sum(axis=1) == 1) and np.all(markers[:, 50:].sum(axis=1) == 1)
    np.testing.assert_allclose(y, (x[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    assert abs(np.mean((y - 1.0) ** 2) - 1 / 6) < 0.03  # the trivial baseline's MSE
    x2, y2 = rnn.adding_problem(500, 100, seed=0)
    assert np.array_equal(x, x2) and not np.array_equal(x, rnn.adding_problem(500, 100, seed=1)[0])


def test_appears_later():
    x, y = rnn.appears_later(200, 12, 8, seed=0)
    assert x.shape == y.shape == (200, 12) and x.dtype == y.dtype == np.int32
    assert x.min() >= 0 and x.max() < 8 and np.all(y[:, -1] == 0)
    brute = [[int(seq[t] in seq[t + 1:]) for t in range(12)] for seq in x.tolist()]
    assert np.array_equal(y, brute)
    assert np.array_equal(x, rnn.appears_later(200, 12, 8, seed=0)[0])


def test_appears_later_causal_accuracy_is_the_best_past_only_guess():
    _, y = rnn.appears_later(20000, 10, 6, seed=0)
    majority = np.maximum(y.mean(axis=0), 1 - y.mean(axis=0)).mean()
    assert abs(rnn.appears_later_causal_accuracy(10, 6) - majority) < 0.01
    assert rnn.appears_later_causal_accuracy(1, 5) == 1.0


@pytest.mark.parametrize("change, argument", [
    (dict(params={"U": np.zeros((5, 7))}), "params"),
    (dict(params="not a dict"), "params"),
    (dict(W=np.zeros((5, 4))), r"params\['W'\]"),
    (dict(U=np.zeros((4, 7))), r"params\['U'\]"),
    (dict(V=np.zeros((6, 4))), r"params\['V'\]"),
    (dict(b=np.zeros(4)), r"params\['b'\]"),
    (dict(c=np.zeros(5)), r"params\['c'\]"),
    (dict(inputs=np.array([0, 7])), "inputs"),
    (dict(inputs=np.array([-1, 2])), "inputs"),
    (dict(inputs=np.array([0.0, 1.0])), "inputs"),
    (dict(inputs=np.zeros((2, 2), int)), "inputs"),
    (dict(inputs=np.array([], int)), "inputs"),
    (dict(targets=np.array([0, 6] * 6)), "targets"),
    (dict(targets=np.array([0, 1])), "targets"),
    (dict(h0=np.zeros(4)), "h0"),
    (dict(h0=np.zeros((1, 5))), "h0"),
])
def test_bptt_bad_input_names_the_argument(problem, change, argument):
    params, inputs, targets, h0 = problem
    args = dict(params=params, inputs=inputs, targets=targets, h0=h0)
    if "params" in change:
        args["params"] = change["params"]
    for key in ("U", "W", "V", "b", "c"):
        if key in change:
            args["params"] = {**params, key: change[key]}
    args.update({k: v for k, v in change.items() if k in ("inputs", "targets", "h0")})
    with pytest.raises(ValueError, match=argument):
        rnn.bptt(**args)
    if "targets" not in change:
        with pytest.raises(ValueError, match=argument):
            rnn.hidden_grad_norms(**args)
        with pytest.raises(ValueError, match=argument):
            rnn.rnn_forward(args["params"], args["inputs"], args["h0"])


def test_hidden_grad_norms_bad_last_only(problem):
    with pytest.raises(TypeError, match="last_only"):
        rnn.hidden_grad_norms(*problem, last_only="yes")


@pytest.mark.parametrize("call, error, argument", [
    (lambda: rnn.init_rnn_params(0, 4, 3), ValueError, "input_size"),
    (lambda: rnn.init_rnn_params(3, 2.5, 3), ValueError, "hidden_size"),
    (lambda: rnn.init_rnn_params(3, 4, None), ValueError, "output_size"),
    (lambda: rnn.init_rnn_params(3, 4, 3, recurrent_scale=-1), ValueError, "recurrent_scale"),
    (lambda: rnn.init_rnn_params(3, 4, 3, scale="big"), ValueError, "scale"),
    (lambda: rnn.clip_by_global_norm([np.ones(3)], 0), ValueError, "max_norm"),
    (lambda: rnn.clip_by_global_norm(np.ones(3), 1.0), TypeError, "grads"),
    (lambda: rnn.clip_by_global_norm(["a"], 1.0), TypeError, "grads"),
    (lambda: rnn.sample_with_temperature([1.0, 2.0], -1), ValueError, "temperature"),
    (lambda: rnn.sample_with_temperature([[1.0, 2.0]], 1.0), ValueError, "logits"),
    (lambda: rnn.sample_with_temperature([1.0, np.nan], 1.0), ValueError, "logits"),
    (lambda: rnn.LSTMCell(0), ValueError, "units"),
    (lambda: rnn.LSTMCell(4, peephole="yes"), TypeError, "peephole"),
    (lambda: rnn.LSTMCell(4, coupled=1), TypeError, "coupled"),
    (lambda: rnn.GRUCell(-3), ValueError, "units"),
    (lambda: rnn.LSTMCell(3).trace(np.zeros((4, 3))), ValueError, "sequences"),
    (lambda: rnn.GRUCell(3).trace(np.zeros((2, 0, 3))), ValueError, "sequences"),
    (lambda: rnn.adding_problem(0, 10), ValueError, "n"),
    (lambda: rnn.adding_problem(5, 1), ValueError, "length"),
    (lambda: rnn.appears_later(5, 10, 0), ValueError, "vocab_size"),
    (lambda: rnn.appears_later(5, "10", 3), ValueError, "length"),
    (lambda: rnn.appears_later_causal_accuracy(0, 3), ValueError, "length"),
    (lambda: rnn.appears_later_causal_accuracy(3, 1.5), ValueError, "vocab_size"),
])
def test_bad_input_names_the_argument(call, error, argument):
    with pytest.raises(error, match=argument):
        call()


def test_bidirectional_bad_input(sequences):
    lstm = keras.layers.LSTM(3, return_sequences=True)
    with pytest.raises(TypeError, match="forward_layer"):
        rnn.bidirectional(keras.layers.Dense(3), lstm, sequences)
    with pytest.raises(TypeError, match="backward_layer"):
        rnn.bidirectional(lstm, "lstm", sequences)
    with pytest.raises(ValueError, match="backward_layer must have go_backwards=False"):
        rnn.bidirectional(lstm, keras.layers.LSTM(3, return_sequences=True, go_backwards=True), sequences)
    with pytest.raises(ValueError, match="return_sequences"):
        rnn.bidirectional(lstm, keras.layers.LSTM(3), sequences)
    with pytest.raises(ValueError, match="inputs"):
        rnn.bidirectional(lstm, keras.layers.LSTM(3, return_sequences=True), sequences[0])
