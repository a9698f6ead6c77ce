"""GPT, a decoder-only Transformer language model: the model, its training and its generation (notebook 09).

The model follows nanoGPT's ``model.py``: token and learned position embeddings, pre-LayerNorm blocks of
causal self-attention and a GELU MLP, a final LayerNorm and an output layer tied to the token embedding.
Weights start from N(0, 0.02), the two residual projections of each block from N(0, 0.02 / sqrt(2 L)).
``train_gpt`` is nanoGPT's ``train.py`` recipe as one call (random windows, AdamW, warm-up and cosine
decay, gradient clipping), so that the same run can be timed in the notebook and beside nanoGPT.
``step_fn_for`` turns a trained model into a step function for ``nnutils.decoding`` (with a key/value cache
in NumPy, or by running the Keras model over the whole context again).
"""

import math
import time

import keras
import numpy as np
from keras import layers, ops

from . import _args
from ._args import positive_int


def _normal(std):
    return keras.initializers.RandomNormal(stddev=std)


def _bool(argument, value):
    if not isinstance(value, bool):
        raise TypeError(f"{argument} must be True or False, got {value!r}")
    return value


def _rate(argument, value, low=0.0, high=1.0, closed_high=False):
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    ok = ok and low <= value and (value <= high if closed_high else value < high)
    if not ok:
        raise ValueError(f"{argument} must be a number in [{low}, {high}{']' if closed_high else ')'}, got {value!r}")
    return float(value)


def _block_config(layer):
    """The constructor arguments that CausalSelfAttention and GPTBlock share, for get_config."""
    return {name: getattr(layer, name) for name in ("d_model", "num_heads", "num_layers", "dropout", "use_bias", "fused")}


@keras.saving.register_keras_serializable(package="nnutils")
class CausalSelfAttention(layers.Layer):
    """Multi-head causal self-attention with one fused query/key/value projection, as in nanoGPT (notebook 09).

    ``call(x)``: x (batch, T, d_model) -> (batch, T, d_model); position t attends to positions <= t.
    ``fused=True`` computes softmax(q k^T / sqrt(d_head)) v with ``keras.ops.dot_product_attention``
    (one fused kernel where the backend has one); ``fused=False`` writes the same out in matmuls.
    """

    def __init__(self, d_model, num_heads, num_layers=1, dropout=0.0, use_bias=False, fused=True, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads = positive_int("d_model", d_model), positive_int("num_heads", num_heads)
        if self.d_model % self.num_heads:
            raise ValueError(f"d_model must be divisible by num_heads, got {d_model} and {num_heads}")
        self.num_layers = positive_int("num_layers", num_layers)
        self.dropout, self.use_bias = _rate("dropout", dropout), _bool("use_bias", use_bias)
        self.fused = _bool("fused", fused)
        self.qkv = layers.Dense(3 * self.d_model, use_bias=use_bias, kernel_initializer=_normal(0.02), name="qkv")
        self.proj = layers.Dense(self.d_model, use_bias=use_bias, name="proj",
                                 kernel_initializer=_normal(0.02 / math.sqrt(2 * self.num_layers)))
        self.drop = layers.Dropout(self.dropout)

    def build(self, input_shape):
        self.qkv.build(input_shape)
        self.proj.build(input_shape)
        self.built = True

    def call(self, x, training=None):
        batch, t = ops.shape(x)[0], ops.shape(x)[1]
        heads, d_head = self.num_heads, self.d_model // self.num_heads
        q, k, v = ops.split(ops.reshape(self.qkv(x), (batch, t, 3, heads, d_head)), 3, axis=2)
        q, k, v = q[:, :, 0], k[:, :, 0], v[:, :, 0]  # (batch, T, heads, d_head) each
        if self.fused:
            y = ops.dot_product_attention(q, k, v, is_causal=True)
        else:
            scores = ops.einsum("bthd,bshd->bhts", q, k) / math.sqrt(d_head)
            causal = ops.arange(t)[None, :] <= ops.arange(t)[:, None]
            scores = ops.where(causal[None, None], scores, ops.cast(-1e9, scores.dtype))
            y = ops.einsum("bhts,bshd->bthd", ops.softmax(scores, axis=-1), v)
        return self.drop(self.proj(ops.reshape(y, (batch, t, self.d_model))), training=training)

    def get_config(self):
        return {**super().get_config(), **_block_config(self)}


@keras.saving.register_keras_serializable(package="nnutils")
class GPTBlock(layers.Layer):
    """Pre-LN block: x + attention(LN(x)), then x + MLP(LN(x)) with a 4x GELU MLP, tanh form as in GPT-2 (notebook 09)."""

    def __init__(self, d_model, num_heads, num_layers=1, dropout=0.0, use_bias=False, fused=True, **kwargs):
        super().__init__(**kwargs)
        self.attention = CausalSelfAttention(d_model, num_heads, num_layers, dropout, use_bias, fused,
                                             name="attention")
        self.d_model, self.num_heads, self.num_layers = d_model, num_heads, num_layers
        self.dropout, self.use_bias, self.fused = dropout, use_bias, fused
        self.norm_1 = layers.LayerNormalization(epsilon=1e-5, center=use_bias, name="norm_1")
        self.norm_2 = layers.LayerNormalization(epsilon=1e-5, center=use_bias, name="norm_2")
        self.mlp_hidden = layers.Dense(4 * d_model, use_bias=use_bias, kernel_initializer=_normal(0.02),
                                       name="mlp_hidden")
        self.mlp_output = layers.Dense(d_model, use_bias=use_bias, name="mlp_output",
                                       kernel_initializer=_normal(0.02 / math.sqrt(2 * num_layers)))
        self.drop = layers.Dropout(dropout)

    def build(self, input_shape):
        for layer in (self.norm_1, self.attention, self.norm_2, self.mlp_hidden):
            layer.build(input_shape)
        self.mlp_output.build(tuple(input_shape[:-1]) + (4 * self.d_model,))
        self.built = True

    def call(self, x, training=None):
        x = x + self.attention(self.norm_1(x), training=training)
        hidden = ops.gelu(self.mlp_hidden(self.norm_2(x)), approximate=True)  # GPT-2's tanh form
        return x + self.drop(self.mlp_output(hidden), training=training)

    def get_config(self):
        return {**super().get_config(), **_block_config(self)}


@keras.saving.register_keras_serializable(package="nnutils")
class GPT(keras.Model):
    """A decoder-only language model: ids (batch, T <= context) -> next-token logits (batch, T, vocab) (notebook 09)."""

    def __init__(self, vocab_size, context=64, d_model=128, num_layers=4, num_heads=4, dropout=0.0,
                 tie_weights=True, use_bias=False, fused=True, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.context = positive_int("vocab_size", vocab_size), positive_int("context", context)
        self.d_model, self.num_layers = positive_int("d_model", d_model), positive_int("num_layers", num_layers)
        self.num_heads, self.dropout = positive_int("num_heads", num_heads), _rate("dropout", dropout)
        self.tie_weights, self.use_bias = _bool("tie_weights", tie_weights), _bool("use_bias", use_bias)
        self.fused = _bool("fused", fused)
        self.token_embedding = layers.Embedding(vocab_size, d_model, embeddings_initializer=_normal(0.02),
                                                name="token_embedding")
        self.position_embedding = layers.Embedding(context, d_model, embeddings_initializer=_normal(0.02),
                                                   name="position_embedding")
        self.drop = layers.Dropout(dropout)
        self.blocks = [GPTBlock(d_model, num_heads, num_layers, dropout, use_bias, fused, name=f"block_{i}")
                       for i in range(num_layers)]
        self.final_norm = layers.LayerNormalization(epsilon=1e-5, center=use_bias, name="final_norm")
        self.head = None if tie_weights else layers.Dense(vocab_size, use_bias=False, name="head",
                                                          kernel_initializer=_normal(0.02))

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        self.position_embedding.build((input_shape[1],))
        shape = tuple(input_shape) + (self.d_model,)
        for block in self.blocks:
            block.build(shape)
        self.final_norm.build(shape)
        if self.head is not None:
            self.head.build(shape)
        self.built = True

    def call(self, ids, training=None):
        positions = ops.arange(ops.shape(ids)[1])
        x = self.drop(self.token_embedding(ids) + self.position_embedding(positions)[None], training=training)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.final_norm(x)
        if self.head is not None:
            return self.head(x)
        return ops.matmul(x, ops.transpose(self.token_embedding.embeddings))  # the tied output layer

    def get_config(self):
        return {"name": self.name, "vocab_size": self.vocab_size, "context": self.context, "d_model": self.d_model,
                "num_layers": self.num_layers, "num_heads": self.num_heads, "dropout": self.dropout,
                "tie_weights": self.tie_weights, "use_bias": self.use_bias, "fused": self.fused}


def count_parameters(model, exclude_positions=False):
    """The number of trainable weights; nanoGPT's count leaves out the position embedding (notebook 09)."""
    total = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    return total - int(np.prod(model.position_embedding.embeddings.shape)) if exclude_positions else total


def _ids(argument, ids, vocab_size=None, min_len=2):
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or len(ids) < min_len:
        raise ValueError(f"{argument} must be a 1-D int array of at least {min_len} token ids, got shape "
                         f"{ids.shape} and dtype {ids.dtype}")
    if vocab_size is not None and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"{argument} must hold ids in [0, {vocab_size}), got {ids.min()} to {ids.max()}")
    return ids


def random_windows(ids, n, context, seed=0):
    """n random windows of a token stream, as nanoGPT's get_batch draws them: (x, y), each (n, context) int32 (notebook 09)."""
    ids = _ids("ids", ids)
    n, context = positive_int("n", n), positive_int("context", context)
    if len(ids) <= context:
        raise ValueError(f"ids must be longer than context={context}, got {len(ids)} tokens")
    starts = np.random.default_rng(seed).integers(0, len(ids) - context, size=n)
    windows = ids[starts[:, None] + np.arange(context + 1)[None, :]].astype(np.int32)
    return windows[:, :-1], windows[:, 1:]


def validation_loss(model, ids, batch_size=256):
    """Mean cross-entropy in nats per token over a whole split, in non-overlapping windows of the context (notebook 09).

    Every token of ``ids`` but the first is predicted once, from the tokens before it in its window,
    which is what nanoGPT's random-window estimate averages in expectation.
    """
    ids = _ids("ids", ids, model.vocab_size)
    batch_size = positive_int("batch_size", batch_size)
    context, total, count = model.context, 0.0, 0
    n_full = (len(ids) - 1) // context
    x = ids[:n_full * context].reshape(n_full, context)
    y = ids[1:n_full * context + 1].reshape(n_full, context)
    for i in range(0, n_full, batch_size):
        total, count = _add_loss(model, x[i:i + batch_size], y[i:i + batch_size], total, count)
    if n_full * context + 1 < len(ids):  # the shorter last window
        total, count = _add_loss(model, ids[n_full * context:-1][None], ids[n_full * context + 1:][None], total, count)
    return total / count


def _add_loss(model, x, y, total, count):
    logits = ops.convert_to_numpy(model(x.astype(np.int32), training=False)).astype(np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, y[..., None], axis=-1)
    return total + float(nll.sum()), count + nll.size


def make_optimizer(steps, peak_lr=1e-3, min_lr=1e-4, warmup=100, weight_decay=0.1, beta_2=0.99, clipnorm=1.0):
    """nanoGPT's AdamW: linear warm-up to peak_lr, cosine decay to min_lr, no decay on norms and biases (notebook 09)."""
    steps, warmup = positive_int("steps", steps), positive_int("warmup", warmup)
    if warmup >= steps:
        raise ValueError(f"warmup must be smaller than steps, got warmup={warmup}, steps={steps}")
    peak_lr = _rate("peak_lr", peak_lr, 1e-8, 1.0, closed_high=True)
    min_lr = _rate("min_lr", min_lr, 0.0, peak_lr, closed_high=True)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=steps - warmup, alpha=min_lr / peak_lr, warmup_target=peak_lr, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(schedule, beta_1=0.9, beta_2=_rate("beta_2", beta_2),
                                       weight_decay=_rate("weight_decay", weight_decay), clipnorm=float(clipnorm))
    optimizer.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    return optimizer


def train_gpt(train_ids, val_ids, vocab_size, iterations=2000, batch_size=12, context=64, d_model=128,
              num_layers=4, num_heads=4, dropout=0.0, tie_weights=True, peak_lr=1e-3, min_lr=1e-4, warmup=100,
              weight_decay=0.1, beta_2=0.99, eval_every=None, jit_compile=True, steps_per_execution=50,
              fused=True, seed=0, verbose=True):
    """nanoGPT's train.py in one call: a GPT trained on random windows of train_ids, scored on val_ids (notebook 09).

    Returns (model, log): log holds ``val_loss`` (``validation_loss`` on the whole of val_ids), ``seconds``
    (training wall time, compilation included, evaluations excluded), ``tokens`` (iterations * batch_size *
    context), ``parameters``, and ``curve``: (iteration, mean train loss since the last entry, validation
    loss, training seconds so far) every ``eval_every`` iterations. On PyTorch, steps_per_execution is 1.
    """
    train_ids = _ids("train_ids", train_ids, positive_int("vocab_size", vocab_size))
    val_ids = _ids("val_ids", val_ids, vocab_size)
    iterations, batch_size = positive_int("iterations", iterations), positive_int("batch_size", batch_size)
    eval_every = iterations if eval_every is None else positive_int("eval_every", eval_every)
    steps_per_execution = positive_int("steps_per_execution", steps_per_execution)
    if keras.backend.backend() == "torch":
        steps_per_execution = 1  # Keras on PyTorch runs one step per execution and refuses more
    keras.utils.set_random_seed(seed)
    model = GPT(vocab_size, context, d_model, num_layers, num_heads, dropout, tie_weights, fused=fused)
    model.compile(optimizer=make_optimizer(iterations, peak_lr, min_lr, warmup, weight_decay, beta_2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=_args.jit_compile(jit_compile), steps_per_execution=steps_per_execution)
    x, y = random_windows(train_ids, iterations * batch_size, context, seed=seed)
    log = {"seconds": 0.0, "tokens": iterations * batch_size * context, "curve": []}
    for start in range(0, iterations, eval_every):
        stop = min(start + eval_every, iterations)
        began = time.perf_counter()
        history = model.fit(x[start * batch_size:stop * batch_size], y[start * batch_size:stop * batch_size],
                            batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
        log["seconds"] += time.perf_counter() - began
        val = validation_loss(model, val_ids)
        log["curve"].append((stop, float(history.history["loss"][-1]), val, log["seconds"]))
        if verbose:
            print(f"iteration {stop:5d}: train loss {history.history['loss'][-1]:.4f} (last {stop - start} "
                  f"iterations), val loss {val:.4f}, {log['seconds']:.0f} s")
    log["val_loss"] = log["curve"][-1][2]
    log["parameters"] = count_parameters(model)
    return model, log


def _as_np(value):
    """A weight as a NumPy array of the model's own dtype (float64 for a float64 model), so checks see its precision."""
    return np.asarray(ops.convert_to_numpy(value))


def _weights(model):
    """The trained weights as NumPy arrays, for the cached forward pass."""
    def norm(layer):
        beta = _as_np(layer.beta) if layer.center else 0.0
        return _as_np(layer.gamma), beta, layer.epsilon

    def dense(layer):
        return _as_np(layer.kernel), (_as_np(layer.bias) if layer.use_bias else 0.0)

    table = _as_np(model.token_embedding.embeddings)
    return {"table": table, "positions": _as_np(model.position_embedding.embeddings),
            "head": table.T if model.head is None else _as_np(model.head.kernel),
            "final_norm": norm(model.final_norm), "heads": model.num_heads,
            "blocks": [{"norm_1": norm(b.norm_1), "qkv": dense(b.attention.qkv), "proj": dense(b.attention.proj),
                        "norm_2": norm(b.norm_2), "hidden": dense(b.mlp_hidden), "output": dense(b.mlp_output)}
                       for b in model.blocks]}


def _layer_norm(x, norm):
    gamma, beta, epsilon = norm
    mean = x.mean(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + epsilon) + beta


def _gelu(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def _forward(w, tokens, past, start):
    """The new positions start.. of tokens (n, t) through every block, given past keys/values: (last logits, new past)."""
    n, t = tokens.shape
    h = w["table"][tokens] + w["positions"][start:start + t]
    heads = w["heads"]
    d_head = h.shape[-1] // heads
    causal = np.arange(start + t)[None, :] <= np.arange(start, start + t)[:, None]  # (t, start + t)
    new_past = []
    for block, (past_k, past_v) in zip(w["blocks"], past):
        kernel, bias = block["qkv"]
        qkv = (_layer_norm(h, block["norm_1"]) @ kernel + bias).reshape(n, t, 3, heads, d_head)
        q, k, v = (np.transpose(qkv[:, :, i], (0, 2, 1, 3)) for i in range(3))  # (n, heads, t, d_head)
        k, v = np.concatenate([past_k, k], axis=2), np.concatenate([past_v, v], axis=2)
        new_past.append((k, v))
        scores = np.where(causal, q @ np.swapaxes(k, -1, -2) / math.sqrt(d_head), np.float32(-1e9))
        weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
        y = np.transpose((weights / weights.sum(axis=-1, keepdims=True)) @ v, (0, 2, 1, 3)).reshape(n, t, -1)
        kernel, bias = block["proj"]
        h = h + y @ kernel + bias
        (k1, b1), (k2, b2) = block["hidden"], block["output"]
        h = h + _gelu(_layer_norm(h, block["norm_2"]) @ k1 + b1) @ k2 + b2
    return _layer_norm(h[:, -1], w["final_norm"]) @ w["head"], new_past


def _log_softmax(logits):
    logits = np.asarray(logits, dtype=np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def step_fn_for(model, prompt_ids, use_cache=True):
    """(step_fn, initial_state) for nnutils.decoding, to continue ``prompt_ids``; feed prompt_ids[-1] as bos_id (notebook 09).

    With ``use_cache`` the state holds each block's keys and values, (n, heads, t, d_head), and a step runs
    one new position through the model in NumPy; the cache holds at most ``model.context`` positions.
    Without it, each step runs the compiled Keras model (``predict_on_batch``) over the last ``model.context``
    tokens again, right-padded to the context (a sliding window, so any length can be generated): the same
    log-probabilities while the text fits the context.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an nnutils.gpt.GPT, got {type(model).__name__}")
    prompt_ids = _ids("prompt_ids", prompt_ids, model.vocab_size, min_len=1)
    use_cache = _bool("use_cache", use_cache)
    if not use_cache:
        def uncached_step(tokens, state):
            prefix = np.concatenate([state["prefix"], np.asarray(tokens)[:, None]], axis=1)
            window = prefix[:, -model.context:]
            padded = np.zeros((len(window), model.context), np.int32)  # one shape, so one compiled function
            padded[:, :window.shape[1]] = window  # right padding: causal, so position t never sees it
            logits = ops.convert_to_numpy(model.predict_on_batch(padded))
            return _log_softmax(logits[:, window.shape[1] - 1]), {"prefix": prefix}

        return uncached_step, {"prefix": prompt_ids[None, :-1].astype(np.int64)}

    if len(prompt_ids) > model.context:
        raise ValueError(f"prompt_ids must fit the context of {model.context} tokens to fill the cache, got "
                         f"{len(prompt_ids)}; use use_cache=False for longer text")
    w = _weights(model)
    d_head = model.d_model // model.num_heads
    empty = np.zeros((1, model.num_heads, 0, d_head), w["table"].dtype)
    past = [(empty, empty)] * model.num_layers
    if len(prompt_ids) > 1:
        _, past = _forward(w, prompt_ids[None, :-1], past, 0)

    def cached_step(tokens, state):
        start = state["keys"][0].shape[2]
        if start >= model.context:
            raise ValueError(f"the cache is full: the model's positions go up to context={model.context}; "
                             "use use_cache=False to slide the window over longer text")
        logits, new_past = _forward(w, np.asarray(tokens)[:, None], list(zip(state["keys"], state["values"])), start)
        return _log_softmax(logits), {"keys": [k for k, _ in new_past], "values": [v for _, v in new_past]}

    return cached_step, {"keys": [k for k, _ in past], "values": [v for _, v in past]}


def generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None, seed=None, use_cache=False):
    """prompt_ids followed by max_new_tokens sampled ids, through nnutils.decoding.sample (notebook 09)."""
    from .decoding import sample

    step_fn, state = step_fn_for(model, prompt_ids, use_cache=use_cache)
    new = sample(step_fn, state, int(np.asarray(prompt_ids)[-1]), positive_int("max_new_tokens", max_new_tokens),
                 temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
    return np.concatenate([np.asarray(prompt_ids), np.array(new, dtype=np.asarray(prompt_ids).dtype)])
