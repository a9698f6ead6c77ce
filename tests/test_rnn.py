import keras
import numpy as np
import pytest

from nnutils import autodiff, rnn

_np = keras.ops.convert_to_numpy  # Keras outputs as NumPy on every backend (np.asarray fails on torch tensors that need grad)

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


def _autodiff_rnn(params, inputs, targets, h0, dtype):
    """The same RNN written with keras.ops, differentiated by the backend: (loss, grads, last h, dL_T/dh_t, dL/dh_t).

    A zero offset e_t is added to each hidden state, so that dL/de_t = dL/dh_t comes out of the same gradient call.
    """
    ops = keras.ops
    p = {k: v.astype(dtype) for k, v in params.items()} | {"e": np.zeros((len(inputs), len(h0)), dtype)}

    def loss_of(p, last_only=False, states=None):
        h, losses = ops.convert_to_tensor(h0.astype(dtype)), []
        for t, (x, y) in enumerate(zip(inputs, targets)):
            h = ops.add(ops.tanh(p["U"][:, int(x)] + ops.matmul(p["W"], h) + p["b"]), p["e"][t])
            if states is not None:
                states.append(ops.convert_to_numpy(h))
            losses.append(-ops.log_softmax(ops.matmul(p["V"], h) + p["c"])[int(y)])
        return losses[-1] if last_only else ops.sum(ops.stack(losses))

    loss, grads = autodiff.value_and_grad(loss_of, p)
    dh_last = autodiff.grad(lambda q: loss_of(q, last_only=True), p)["e"]
    states = []
    loss_of({k: ops.convert_to_tensor(v) for k, v in p.items()}, states=states)
    return loss, {k: g for k, g in grads.items() if k != "e"}, states[-1], dh_last, grads["e"]


def _check_bptt(problem, dtype, loss_tol, atol, rtol):
    params, inputs, targets, h0 = problem
    loss, grads, h_T = rnn.bptt(params, inputs, targets, h0)
    auto_loss, auto_grads, auto_h_T, _, _ = _autodiff_rnn(params, inputs, targets, h0, dtype)
    assert loss == pytest.approx(auto_loss, rel=loss_tol, abs=loss_tol)
    assert set(grads) == set(params)
    for k in params:
        assert grads[k].shape == params[k].shape and grads[k].dtype == np.float64
        np.testing.assert_allclose(grads[k], auto_grads[k], rtol=rtol, atol=atol)
    np.testing.assert_allclose(h_T, auto_h_T, rtol=rtol, atol=atol)


def test_bptt_matches_autodiff_in_float32_on_every_backend(problem):
    _check_bptt(problem, "float32", loss_tol=1e-6, atol=1e-5, rtol=1e-4)


@pytest.mark.float64
def test_bptt_matches_autodiff_in_float64(problem):
    _check_bptt(problem, "float64", loss_tol=1e-10, atol=1e-8, rtol=0)


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


def _check_forward_against_simple_rnn(problem, dtype, atol):
    params, inputs, _, h0 = problem
    hs, logits = rnn.rnn_forward(params, inputs, h0)
    assert hs.shape == (T, H) and logits.shape == (T, K)
    layer = keras.layers.SimpleRNN(H, return_sequences=True, dtype=dtype)
    one_hot = np.eye(D, dtype=dtype)[inputs][None]
    layer(one_hot)
    layer.set_weights([params["U"].T, params["W"].T, params["b"]])
    keras_hs = layer(one_hot, initial_state=[h0[None].astype(dtype)])
    np.testing.assert_allclose(hs, keras.ops.convert_to_numpy(keras_hs)[0], atol=atol)
    np.testing.assert_allclose(logits, hs @ params["V"].T + params["c"], atol=1e-12)


def test_rnn_forward_equals_keras_simple_rnn(problem):
    _check_forward_against_simple_rnn(problem, "float32", atol=1e-6)


@pytest.mark.float64
def test_rnn_forward_equals_keras_simple_rnn_in_float64(problem):
    _check_forward_against_simple_rnn(problem, "float64", atol=1e-12)


def _check_hidden_grad_norms(problem, dtype, atol, rtol):
    params, inputs, targets, h0 = problem
    _, _, _, dh_last, dh_all = _autodiff_rnn(params, inputs, targets, h0, dtype)
    np.testing.assert_allclose(rnn.hidden_grad_norms(params, inputs, targets, h0),
                               np.linalg.norm(dh_last, axis=1), rtol=rtol, atol=atol)
    np.testing.assert_allclose(rnn.hidden_grad_norms(params, inputs, targets, h0, last_only=False),
                               np.linalg.norm(dh_all, axis=1), rtol=rtol, atol=atol)


def test_hidden_grad_norms_match_autodiff(problem):
    _check_hidden_grad_norms(problem, "float32", atol=1e-6, rtol=1e-4)


@pytest.mark.float64
def test_hidden_grad_norms_match_autodiff_in_float64(problem):
    _check_hidden_grad_norms(problem, "float64", atol=1e-10, rtol=0)


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


def test_clip_by_global_norm_matches_keras_global_clipnorm():
    """Keras clips inside its optimizers: SGD with learning rate 1 from zero weights leaves minus the clipped grads."""
    rng = np.random.default_rng(0)
    grads = {"a": rng.normal(size=(3, 4)) * 10, "b": rng.normal(size=5)}
    clipped, norm = rnn.clip_by_global_norm(grads, 2.0)
    assert norm == pytest.approx(np.sqrt(sum(np.sum(g ** 2) for g in grads.values())), abs=1e-12)
    assert list(clipped) == ["a", "b"]
    weights = [keras.Variable(np.zeros(g.shape, "float32")) for g in grads.values()]
    keras.optimizers.SGD(learning_rate=1.0, global_clipnorm=2.0).apply(
        [keras.ops.convert_to_tensor(g.astype("float32")) for g in grads.values()], weights)
    for got, want in zip(clipped.values(), weights):
        np.testing.assert_allclose(got, -keras.ops.convert_to_numpy(want), atol=1e-6)
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
    np.testing.assert_allclose(_np(layer(sequences)), _np(builtin(sequences)), atol=1e-5)
    trace = cell.trace(sequences)
    np.testing.assert_allclose(trace["hidden"], _np(builtin(sequences)), atol=1e-5)
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
    assert not np.allclose(_np(layer(sequences)), _np(default(sequences)), atol=1e-3)
    trace = cell.trace(sequences)
    if coupled:
        np.testing.assert_allclose(trace["input"], 1 - trace["forget"], atol=1e-6)
    if peephole:  # with zero peepholes the variant falls back to the one without
        layer.set_weights(weights + [np.zeros(shapes[-1], "float32")])
        if not coupled:
            np.testing.assert_allclose(_np(layer(sequences)), _np(default(sequences)), atol=1e-6)


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
    np.testing.assert_allclose(_np(got), _np(expected), atol=1e-5)


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


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_cell_step_takes_numpy_arrays_on_every_backend(name):
    """Notebook 05 calls step on NumPy vectors: the result must equal the step on tensors (PyTorch refused NumPy)."""
    cell = {"lstm": rnn.LSTMCell, "gru": rnn.GRUCell}[name](3)
    cell.build((None, 2))
    rng = np.random.default_rng(0)
    x, h, c = (rng.normal(size=(1, n)).astype("float32") for n in (2, 3, 3))
    states = (h, c) if name == "lstm" else (h,)
    from_numpy = cell.step(x, *states)[0]
    from_tensors = cell.step(*(keras.ops.convert_to_tensor(v) for v in (x, *states)))[0]
    np.testing.assert_allclose(_np(from_numpy), _np(from_tensors), atol=1e-7)
    assert _np(from_numpy).shape == (1, 3) and not np.allclose(_np(from_numpy), 0.0)


def _reverse_each_row(x, lengths):
    """The reference: a Python loop over the rows."""
    out = np.array(x, copy=True)
    for row, length in enumerate(lengths):
        out[row, :length] = np.asarray(x)[row, :length][::-1]
    return out


@pytest.mark.parametrize("shape", [(4, 6), (4, 6, 3)])
def test_reverse_sequence_reverses_the_real_steps_and_leaves_the_padding(shape):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    lengths = np.array([6, 3, 0, 1])
    got = keras.ops.convert_to_numpy(rnn.reverse_sequence(x, lengths))
    np.testing.assert_array_equal(got, _reverse_each_row(x, lengths))
    assert not np.array_equal(got, x[:, ::-1])  # not the plain flip
    twice = keras.ops.convert_to_numpy(rnn.reverse_sequence(got, lengths))
    np.testing.assert_array_equal(twice, x)  # its own inverse


def test_reverse_sequence_on_ids():
    ids = np.array([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8]], dtype="int32")
    got = keras.ops.convert_to_numpy(rnn.reverse_sequence(ids, [3, 5]))
    np.testing.assert_array_equal(got, [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4]])


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares with tf.reverse_sequence")
def test_reverse_sequence_equals_tf_reverse_sequence():
    import tensorflow as tf

    x = np.random.default_rng(1).normal(size=(5, 7, 2)).astype("float32")
    lengths = np.array([7, 2, 5, 1, 4])
    expected = tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0).numpy()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(rnn.reverse_sequence(x, lengths)), expected)


@pytest.mark.parametrize("x, lengths, words", [
    (np.zeros(5), [1], "x must have shape"),
    (np.zeros((2, 5)), [1], "lengths must be 2 ints"),
    (np.zeros((2, 5)), [1, 6], r"in \[0, 5\]"),
    (np.zeros((2, 5)), [1, -1], r"in \[0, 5\]"),
    (np.zeros((2, 5)), [1.0, 2.0], "lengths must be 2 ints"),
])
def test_reverse_sequence_bad_input(x, lengths, words):
    with pytest.raises(ValueError, match=words):
        rnn.reverse_sequence(x, lengths)
