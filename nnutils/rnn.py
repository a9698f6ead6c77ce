"""Recurrent networks: a vanilla RNN with BPTT in NumPy, LSTM and GRU cells, bidirectional RNNs, synthetic tasks.

Notation of notebook 04 (one sequence, token ids with one-hot inputs implied):
    h_t = tanh(U x_t + W h_{t-1} + b),   o_t = V h_t + c,   loss = sum_t cross-entropy(softmax(o_t), y_t)
with U (H, D), W (H, H), V (K, H), b (H,), c (K,). The from-scratch code is NumPy in float64; the Keras
cells use `keras.ops` only, so they run under every Keras 3 backend.
"""

import numbers

import keras
import numpy as np
from keras import ops

_PARAM_SHAPES = ("U", "W", "V", "b", "c")


# ---------------------------------------------------------------------------------------------------------------
# Vanilla RNN and backpropagation through time (notebook 04)
# ---------------------------------------------------------------------------------------------------------------

def init_rnn_params(input_size, hidden_size, output_size, recurrent_scale=1.0, scale=0.01, seed=0):
    """Float64 params {U, W, V, b, c}: W = recurrent_scale * random orthogonal, U and V ~ N(0, scale^2) (notebook 04)."""
    input_size = _positive_int("input_size", input_size)
    hidden_size = _positive_int("hidden_size", hidden_size)
    output_size = _positive_int("output_size", output_size)
    recurrent_scale = _non_negative_float("recurrent_scale", recurrent_scale)
    scale = _non_negative_float("scale", scale)
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(hidden_size, hidden_size)))
    q *= np.sign(np.diag(r))  # a uniformly random orthogonal matrix: every singular value is 1
    return {"U": rng.normal(0.0, scale, (hidden_size, input_size)),
            "W": recurrent_scale * q,
            "V": rng.normal(0.0, scale, (output_size, hidden_size)),
            "b": np.zeros(hidden_size), "c": np.zeros(output_size)}


def rnn_forward(params, inputs, h0):
    """Hidden states hs (T, H) and logits (T, K) of the vanilla RNN over one sequence of token ids (notebook 04)."""
    params, sizes = _check_params(params)
    inputs = _check_ids("inputs", inputs, sizes["D"])
    h0 = _check_h0(h0, sizes["H"])
    U, W, V, b, c = (params[k] for k in _PARAM_SHAPES)
    hs = np.empty((len(inputs), sizes["H"]))
    h = h0
    for t, x in enumerate(inputs):
        h = np.tanh(U[:, x] + W @ h + b)  # U x_t with a one-hot x_t is column x of U
        hs[t] = h
    return hs, hs @ V.T + c


def bptt(params, inputs, targets, h0):
    """Loss, gradients (same keys and shapes as params) and h_T of the vanilla RNN, by hand-written BPTT (notebook 04)."""
    params, sizes = _check_params(params)
    inputs = _check_ids("inputs", inputs, sizes["D"])
    targets = _check_ids("targets", targets, sizes["K"], length=len(inputs))
    h0 = _check_h0(h0, sizes["H"])
    hs, logits = rnn_forward(params, inputs, h0)
    log_probs = _log_softmax(logits)
    steps = np.arange(len(targets))
    loss = float(-log_probs[steps, targets].sum())
    dlogits = np.exp(log_probs)  # dL/do_t = softmax(o_t) - one_hot(y_t)
    dlogits[steps, targets] -= 1.0
    grads, _ = _backward(params, inputs, h0, hs, dlogits)
    return loss, grads, hs[-1].copy()


def hidden_grad_norms(params, inputs, targets, h0, last_only=True):
    """Norms of dL/dh_t for t = 1..T; L is the loss of the last step only (default) or of all steps (notebook 04)."""
    params, sizes = _check_params(params)
    inputs = _check_ids("inputs", inputs, sizes["D"])
    targets = _check_ids("targets", targets, sizes["K"], length=len(inputs))
    h0 = _check_h0(h0, sizes["H"])
    if not isinstance(last_only, bool):
        raise TypeError(f"last_only must be True or False, got {last_only!r}")
    hs, logits = rnn_forward(params, inputs, h0)
    dlogits = np.exp(_log_softmax(logits))
    dlogits[np.arange(len(targets)), targets] -= 1.0
    if last_only:
        dlogits[:-1] = 0.0
    _, dhs = _backward(params, inputs, h0, hs, dlogits)
    return np.linalg.norm(dhs, axis=1)


def _backward(params, inputs, h0, hs, dlogits):
    """Backpropagation through time from dL/do_t; returns the grads and dL/dh_t for every t."""
    U, W, V = params["U"], params["W"], params["V"]
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    grads["V"] = dlogits.T @ hs
    grads["c"] = dlogits.sum(axis=0)
    dhs = np.empty_like(hs)
    dh_next = np.zeros_like(h0)  # dL/dh_t arriving from step t+1 through W
    for t in reversed(range(len(inputs))):
        dh = V.T @ dlogits[t] + dh_next
        dhs[t] = dh
        da = dh * (1.0 - hs[t] ** 2)  # back through tanh
        h_prev = hs[t - 1] if t > 0 else h0
        grads["b"] += da
        grads["U"][:, inputs[t]] += da
        grads["W"] += np.outer(da, h_prev)
        dh_next = W.T @ da
    return grads, dhs


def clip_by_global_norm(grads, max_norm):
    """Scale all grads by max_norm / global L2 norm when that norm exceeds max_norm; (clipped, norm) (notebook 04)."""
    if isinstance(max_norm, bool) or not isinstance(max_norm, numbers.Real) or not max_norm > 0:
        raise ValueError(f"max_norm must be a positive number, got {max_norm!r}")
    if isinstance(grads, dict):
        keys, arrays = list(grads), list(grads.values())
    elif isinstance(grads, (list, tuple)):
        keys, arrays = None, list(grads)
    else:
        raise TypeError(f"grads must be a dict or a list of arrays, got {type(grads).__name__}")
    try:
        arrays = [np.asarray(g, dtype=np.float64) for g in arrays]
    except (TypeError, ValueError):
        raise TypeError("grads must hold numeric arrays") from None
    norm = float(np.sqrt(sum(np.sum(g ** 2) for g in arrays)))
    factor = max_norm / norm if norm > max_norm else 1.0
    clipped = [g * factor for g in arrays]
    return (dict(zip(keys, clipped)) if keys is not None else clipped), norm


def sample_with_temperature(logits, temperature=1.0, rng=None):
    """One token id drawn from softmax(logits / temperature); temperature 0 gives the argmax (notebook 04)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or logits.size == 0 or not np.all(np.isfinite(logits)):
        raise ValueError(f"logits must be a non-empty 1-D array of finite numbers, got shape {logits.shape}")
    temperature = _non_negative_float("temperature", temperature)
    if temperature == 0:
        return int(np.argmax(logits))
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    probs = np.exp(_log_softmax(logits / temperature))
    return int(rng.choice(len(probs), p=probs / probs.sum()))


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _check_params(params):
    if not isinstance(params, dict) or set(params) != set(_PARAM_SHAPES):
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"params must be a dict with keys {list(_PARAM_SHAPES)}, got {got}")
    try:
        params = {k: np.asarray(params[k], dtype=np.float64) for k in _PARAM_SHAPES}
    except (TypeError, ValueError):
        raise ValueError("params must hold numeric arrays") from None
    U, W, V, b, c = (params[k] for k in _PARAM_SHAPES)
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise ValueError(f"params['W'] must have shape (H, H), got {W.shape}")
    H = W.shape[0]
    if U.ndim != 2 or U.shape[0] != H or U.shape[1] == 0:
        raise ValueError(f"params['U'] must have shape ({H}, D), got {U.shape}")
    if V.ndim != 2 or V.shape[1] != H or V.shape[0] == 0:
        raise ValueError(f"params['V'] must have shape (K, {H}), got {V.shape}")
    if b.shape != (H,):
        raise ValueError(f"params['b'] must have shape ({H},), got {b.shape}")
    if c.shape != (V.shape[0],):
        raise ValueError(f"params['c'] must have shape ({V.shape[0]},), got {c.shape}")
    return params, {"H": H, "D": U.shape[1], "K": V.shape[0]}


def _check_ids(argument, ids, size, length=None):
    ids = np.asarray(ids)
    if ids.ndim != 1 or len(ids) == 0:
        raise ValueError(f"{argument} must be a non-empty 1-D array of token ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{argument} must hold integer token ids, got dtype {ids.dtype}")
    if length is not None and len(ids) != length:
        raise ValueError(f"{argument} must have the length of inputs ({length}), got {len(ids)}")
    if ids.min() < 0 or ids.max() >= size:
        raise ValueError(f"{argument} must hold ids in [0, {size}), got values in [{ids.min()}, {ids.max()}]")
    return ids.astype(np.int64)


def _check_h0(h0, hidden_size):
    try:
        h0 = np.asarray(h0, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("h0 must be a numeric array") from None
    if h0.shape != (hidden_size,):
        raise ValueError(f"h0 must have shape ({hidden_size},), got {h0.shape}")
    return h0


# ---------------------------------------------------------------------------------------------------------------
# LSTM and GRU cells (notebook 05)
# ---------------------------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="nnutils")
class LSTMCell(keras.layers.Layer):
    """An LSTM cell, gate by gate; default weights and gate order (i, f, c, o) as keras.layers.LSTM (notebook 05).

    Weights, in order: kernel (D, 4u), recurrent_kernel (u, 4u), bias (4u,), so that
    `set_weights(keras.layers.LSTM(u).get_weights())` reproduces the built-in. The bias of the forget gate
    starts at 1 (Keras's unit_forget_bias).
    peephole=True adds a fourth weight `peephole` (3, u): diagonal connections from the cell state to the
        input, forget (c_{t-1}) and output (c_t) gates (Gers & Schmidhuber 2000).
    coupled=True ties the input gate to the forget gate, i = 1 - f; kernel, recurrent_kernel and bias then
        hold three gates (f, c, o), 3u columns, and `peephole` has two rows (f, o).
    """

    def __init__(self, units, peephole=False, coupled=False, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        if not isinstance(peephole, bool):
            raise TypeError(f"peephole must be True or False, got {peephole!r}")
        if not isinstance(coupled, bool):
            raise TypeError(f"coupled must be True or False, got {coupled!r}")
        self.peephole, self.coupled = peephole, coupled
        self.state_size = [self.units, self.units]  # (h, c)
        self.output_size = self.units

    @property
    def gate_names(self):
        """The gates in the order of the kernel's column blocks."""
        return ("forget", "candidate", "output") if self.coupled else ("input", "forget", "candidate", "output")

    def build(self, input_shape):
        n, u = len(self.gate_names), self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], n * u), name="kernel", initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(u, n * u), name="recurrent_kernel", initializer="orthogonal")
        forget = self.gate_names.index("forget")

        def bias_initializer(shape, dtype=None):  # ones for the forget gate, zeros elsewhere
            return ops.concatenate([ops.zeros((forget * u,), dtype), ops.ones((u,), dtype),
                                    ops.zeros(((n - forget - 1) * u,), dtype)])

        self.bias = self.add_weight(shape=(n * u,), name="bias", initializer=bias_initializer)
        if self.peephole:
            self.peephole_kernel = self.add_weight(shape=(n - 1, u), name="peephole", initializer="glorot_uniform")
        super().build(input_shape)

    def step(self, inputs, h_prev, c_prev):
        """One time step: (h_t, c_t, gates) with gates a dict of the gate activations (notebook 05)."""
        inputs, h_prev, c_prev = (ops.convert_to_tensor(v, self.compute_dtype) for v in (inputs, h_prev, c_prev))
        z = ops.matmul(inputs, self.kernel) + ops.matmul(h_prev, self.recurrent_kernel) + self.bias
        parts = dict(zip(self.gate_names, ops.split(z, len(self.gate_names), axis=-1)))
        p = ops.convert_to_tensor(self.peephole_kernel) if self.peephole else None  # rows: p[0], p[-2], p[-1]
        f_in = parts["forget"] + (p[-2] * c_prev if self.peephole else 0.0)
        f = ops.sigmoid(f_in)
        if self.coupled:
            i = 1.0 - f
        else:
            i = ops.sigmoid(parts["input"] + (p[0] * c_prev if self.peephole else 0.0))
        g = ops.tanh(parts["candidate"])
        c = f * c_prev + i * g
        o = ops.sigmoid(parts["output"] + (p[-1] * c if self.peephole else 0.0))
        h = o * ops.tanh(c)
        return h, c, {"input": i, "forget": f, "candidate": g, "output": o, "cell": c, "hidden": h}

    def call(self, inputs, states, training=False):
        h, c, _ = self.step(inputs, states[0], states[1])
        return h, [h, c]

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype) for _ in range(2)]

    def trace(self, sequences):
        """Run over a batch (n, T, D) from zero states: NumPy arrays (n, T, u) per gate and state (notebook 05)."""
        return _trace(self, sequences, lambda x, s: self.step(x, *s), 2)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "peephole": self.peephole, "coupled": self.coupled}


@keras.saving.register_keras_serializable(package="nnutils")
class GRUCell(keras.layers.Layer):
    """A GRU cell, gate by gate; weights and gate order (z, r, h) as keras.layers.GRU with reset_after=True (notebook 05).

    Weights, in order: kernel (D, 3u), recurrent_kernel (u, 3u), bias (2, 3u) (row 0 for the input
    projection, row 1 for the recurrent one). h_t = z * h_{t-1} + (1 - z) * tanh(W_h x + r * (U_h h_{t-1} + b_rh) + b_h).
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int("units", units)
        self.state_size = self.units
        self.output_size = self.units

    def build(self, input_shape):
        u = self.units
        self.kernel = self.add_weight(shape=(input_shape[-1], 3 * u), name="kernel", initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight(shape=(u, 3 * u), name="recurrent_kernel", initializer="orthogonal")
        self.bias = self.add_weight(shape=(2, 3 * u), name="bias", initializer="zeros")
        super().build(input_shape)

    def step(self, inputs, h_prev):
        """One time step: (h_t, gates) with gates a dict of the gate activations (notebook 05)."""
        inputs, h_prev = (ops.convert_to_tensor(v, self.compute_dtype) for v in (inputs, h_prev))
        x_z, x_r, x_h = ops.split(ops.matmul(inputs, self.kernel) + self.bias[0], 3, axis=-1)
        r_z, r_r, r_h = ops.split(ops.matmul(h_prev, self.recurrent_kernel) + self.bias[1], 3, axis=-1)
        z = ops.sigmoid(x_z + r_z)  # update gate: how much of the old state to keep
        r = ops.sigmoid(x_r + r_r)  # reset gate: how much of the old state the candidate sees
        candidate = ops.tanh(x_h + r * r_h)
        h = z * h_prev + (1.0 - z) * candidate
        return h, {"update": z, "reset": r, "candidate": candidate, "hidden": h}

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        h, _ = self.step(inputs, h_prev)
        return h, ([h] if isinstance(states, (list, tuple)) else h)

    def get_initial_state(self, batch_size=None):
        return [ops.zeros((batch_size, self.units), dtype=self.compute_dtype)]

    def trace(self, sequences):
        """Run over a batch (n, T, D) from a zero state: NumPy arrays (n, T, u) per gate and state (notebook 05)."""
        return _trace(self, sequences, lambda x, s: self.step(x, s[0]), 1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def _trace(cell, sequences, step, n_states):
    sequences = _check_sequences("sequences", sequences)
    if not cell.built:
        cell.build(tuple(sequences.shape[-1:]))
    x = ops.convert_to_tensor(sequences, dtype=cell.compute_dtype)
    states = [ops.zeros((sequences.shape[0], cell.units), dtype=cell.compute_dtype) for _ in range(n_states)]
    history = {}
    for t in range(sequences.shape[1]):
        out = step(x[:, t], states)
        gates = out[-1]
        states = list(out[:-1])
        for name, value in gates.items():
            history.setdefault(name, []).append(ops.convert_to_numpy(value))
    return {name: np.stack(values, axis=1) for name, values in history.items()}


# ---------------------------------------------------------------------------------------------------------------
# Bidirectional RNNs (notebook 06)
# ---------------------------------------------------------------------------------------------------------------

def bidirectional(forward_layer, backward_layer, inputs):
    """Concatenate a forward RNN over inputs and a second RNN over the time-reversed inputs, re-reversed (notebook 06).

    Equals keras.layers.Bidirectional(layer) when forward_layer and backward_layer carry its two weight sets.
    Both layers are ordinary (go_backwards=False) RNN layers; with return_sequences=True the backward
    outputs are flipped back, so that position t sees x_1..x_t (forward) and x_t..x_T (backward).
    """
    for argument, layer in (("forward_layer", forward_layer), ("backward_layer", backward_layer)):
        if not isinstance(layer, keras.layers.Layer) or not hasattr(layer, "return_sequences"):
            raise TypeError(f"{argument} must be a Keras RNN layer (SimpleRNN, LSTM, GRU, RNN), "
                            f"got {type(layer).__name__}")
        if getattr(layer, "go_backwards", False):
            raise ValueError(f"{argument} must have go_backwards=False: bidirectional reverses the sequence itself")
    if forward_layer.return_sequences != backward_layer.return_sequences:
        raise ValueError("forward_layer and backward_layer must agree on return_sequences")
    if len(ops.shape(inputs)) != 3:
        raise ValueError(f"inputs must have shape (batch, time, features), got {tuple(ops.shape(inputs))}")
    forward = forward_layer(inputs)
    backward = backward_layer(ops.flip(inputs, axis=1))
    if backward_layer.return_sequences:
        backward = ops.flip(backward, axis=1)
    return ops.concatenate([forward, backward], axis=-1)


def reverse_sequence(x, lengths):
    """Reverse the first lengths[i] steps of row i of x (batch, time, ...), padding left at the end (notebook 06).

    tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0) in keras.ops, so on every backend; for eager use only:
    the gather index is built in NumPy from concrete lengths, not inside a symbolic model.
    """
    if len(ops.shape(x)) < 2:
        raise ValueError(f"x must have shape (batch, time, ...), got {tuple(ops.shape(x))}")
    lengths = np.asarray(ops.convert_to_numpy(lengths))
    batch, time = ops.shape(x)[:2]
    if lengths.shape != (batch,) or not np.issubdtype(lengths.dtype, np.integer) \
            or lengths.min() < 0 or lengths.max() > time:
        raise ValueError(f"lengths must be {batch} ints in [0, {time}] (one per row of x), got {lengths.tolist()}")
    t = np.arange(time)[None, :]
    index = np.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)       # the step each position reads
    index = index.reshape(index.shape + (1,) * (len(ops.shape(x)) - 2))
    return ops.take_along_axis(x, ops.convert_to_tensor(np.broadcast_to(index, ops.shape(x)), "int32"), axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Synthetic tasks (notebooks 05 and 06)
# ---------------------------------------------------------------------------------------------------------------

def adding_problem(n, length, seed=0):
    """The adding problem (Hochreiter & Schmidhuber 1997): x (n, length, 2) float32, y (n,) float32 (notebook 05).

    Channel 0 holds uniform [0, 1) values, channel 1 marks exactly two positions, one in each half of the
    sequence; the target is the sum of the two marked values. Predicting the mean, 1.0, gives MSE 1/6.
    """
    n = _positive_int("n", n)
    length = _positive_int("length", length)
    if length < 2:
        raise ValueError(f"length must be at least 2, got {length}")
    rng = np.random.default_rng(seed)
    values = rng.uniform(0.0, 1.0, (n, length))
    half = length // 2
    first = rng.integers(0, half, n)
    second = rng.integers(half, length, n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    x = np.stack([values, markers], axis=-1).astype(np.float32)
    y = (values[rows, first] + values[rows, second]).astype(np.float32)
    return x, y


def appears_later(n, length, vocab_size, seed=0):
    """A task that needs the future: x (n, length) int32, y[i, t] = 1 if x[i, t] occurs again after t (notebook 06)."""
    n = _positive_int("n", n)
    length = _positive_int("length", length)
    vocab_size = _positive_int("vocab_size", vocab_size)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab_size, (n, length)).astype(np.int32)
    # compare every position with every later one: (n, T, T) boolean, strictly upper triangle
    later = np.triu(np.ones((length, length), dtype=bool), k=1)
    y = ((x[:, :, None] == x[:, None, :]) & later).any(axis=-1).astype(np.int32)
    return x, y


def appears_later_causal_accuracy(length, vocab_size):
    """Best accuracy on appears_later for a model that sees only the past: the majority label per position (notebook 06)."""
    length = _positive_int("length", length)
    vocab_size = _positive_int("vocab_size", vocab_size)
    remaining = length - 1 - np.arange(length)  # number of later positions
    p_later = 1.0 - (1.0 - 1.0 / vocab_size) ** remaining  # future tokens are independent of the past
    return float(np.mean(np.maximum(p_later, 1.0 - p_later)))


# ---------------------------------------------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------------------------------------------

def _positive_int(argument, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{argument} must be a positive int, got {value!r}")
    return int(value)


def _non_negative_float(argument, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value >= 0 or not np.isfinite(value):
        raise ValueError(f"{argument} must be a non-negative number, got {value!r}")
    return float(value)


def _check_sequences(argument, sequences):
    try:
        sequences = np.asarray(sequences, dtype=np.float32)
    except (TypeError, ValueError):
        raise ValueError(f"{argument} must be a numeric array (n, T, D)") from None
    if sequences.ndim != 3 or 0 in sequences.shape:
        raise ValueError(f"{argument} must have shape (n, T, D), got {sequences.shape}")
    return sequences
