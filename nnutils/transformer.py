"""The Transformer from its parts: attention, masks, positional encoding, multi-head attention, encoder and
decoder blocks, and a translation model (notebook 08).

Masks follow Keras: True (or 1) means "may attend". Id 0 is padding in every sequence. Layers and models
use ``keras.ops`` and ``keras.layers`` only, so they run on the TensorFlow, JAX and PyTorch backends.
Decoding a trained model one token at a time, with cached keys and values, is in ``nnutils.transformer_decoding``.
"""

import math

import keras
import numpy as np
from keras import layers, ops

from ._args import positive_int

MASKED = -1e9  # the score given to a masked key: exp(-1e9 - max) is exactly 0 in float32


def _check_rate(argument, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 <= value < 1:
        raise ValueError(f"{argument} must be a number in [0, 1), got {value!r}")
    return float(value)


def attention_weights(q, k, mask=None):
    """softmax(q k^T / sqrt(d)) over the keys, with masked keys set to weight 0 (notebook 08)."""
    scores = ops.matmul(q, ops.swapaxes(k, -1, -2)) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = ops.where(ops.cast(mask, "bool"), scores, ops.cast(MASKED, scores.dtype))
    return ops.softmax(scores, axis=-1)


def scaled_dot_product_attention(q, k, v, mask=None):
    """Attention as a soft dictionary look-up: (softmax(q k^T / sqrt(d)) v, weights) (notebook 08).

    ``q`` (..., T_q, d), ``k`` (..., T_k, d), ``v`` (..., T_k, d_v); ``mask`` broadcastable to
    (..., T_q, T_k), True (or 1) where a query may attend to a key. Each row of ``weights`` sums to 1 and
    is 0 where masked. A fully masked row has no key to attend to: every score is then the same large
    negative number, so its weights are uniform (1 / T_k) and its output is the mean of the values, as in
    Keras; keep such rows (padded queries) out of the loss.
    """
    q, k, v = (ops.convert_to_tensor(t) for t in (q, k, v))
    if len(q.shape) < 2 or len(k.shape) < 2 or len(v.shape) < 2:
        raise ValueError(f"q, k and v must have at least 2 axes (positions, depth), got q {tuple(q.shape)}, "
                         f"k {tuple(k.shape)}, v {tuple(v.shape)}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q and k must have the same depth (last axis): q {tuple(q.shape)}, k {tuple(k.shape)}")
    if k.shape[-2] is not None and v.shape[-2] is not None and k.shape[-2] != v.shape[-2]:
        raise ValueError(f"k and v must have the same number of keys (axis -2): k {tuple(k.shape)}, "
                         f"v {tuple(v.shape)}")
    weights = attention_weights(q, k, mask)
    return ops.matmul(weights, v), weights


def positional_encoding(length, depth):
    """Sinusoidal positions: PE[p, 2i] = sin(p / 10000^(2i/depth)), PE[p, 2i+1] = cos(...) (notebook 08)."""
    length = positive_int("length", length)
    depth = positive_int("depth", depth)
    if depth % 2:
        raise ValueError(f"depth must be even (sine and cosine pairs), got {depth}")
    positions = np.arange(length, dtype=np.float64)[:, None]
    rates = 1.0 / 10000.0 ** (np.arange(0, depth, 2, dtype=np.float64) / depth)
    encoding = np.zeros((length, depth))
    encoding[:, 0::2] = np.sin(positions * rates)
    encoding[:, 1::2] = np.cos(positions * rates)
    return encoding.astype(np.float32)


def causal_mask(size):
    """Bool (size, size), True where key j <= query i: no position sees the future (notebook 08)."""
    size = positive_int("size", size)
    return np.tril(np.ones((size, size), dtype=bool))


def _causal(t_q, t_k):
    rows = ops.arange(t_q)[:, None]
    cols = ops.arange(t_k)[None, :]
    return ops.less_equal(cols, rows)


@keras.saving.register_keras_serializable(package="nnutils")
class MultiHeadAttention(layers.Layer):
    """Multi-head attention written with keras.ops, weight for weight like keras.layers.MultiHeadAttention (notebook 08).

    ``call(query, value, key=None, attention_mask=None, use_causal_mask=False, return_attention_scores=False)``:
    query (batch, T_q, d_q), value (batch, T_k, d_v), key (default: value); attention_mask (batch, T_q, T_k)
    or broadcastable to it, True where a query may attend to a key. Returns (batch, T_q, d_q), and with
    ``return_attention_scores`` also the weights (batch, heads, T_q, T_k). The weights are the query, key
    and value kernels (d, heads, key_dim) each followed by its bias (heads, key_dim), then the output
    kernel (heads, value_dim, d_q) and bias (d_q,): Keras's shapes and order, so set_weights carries over.
    Unlike Keras's layer it never reads masks attached to its inputs: every mask is passed explicitly.
    """

    def __init__(self, num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = positive_int("num_heads", num_heads)
        self.key_dim = positive_int("key_dim", key_dim)
        self.value_dim = self.key_dim if value_dim is None else positive_int("value_dim", value_dim)
        self.dropout = _check_rate("dropout", dropout)
        if not isinstance(use_bias, bool):
            raise TypeError(f"use_bias must be True or False, got {use_bias!r}")
        self.use_bias = use_bias
        self.dropout_layer = layers.Dropout(self.dropout)

    def _projection(self, name, d_in, heads, dim):
        kernel = self.add_weight(name=f"{name}_kernel", shape=(d_in, heads, dim), initializer="glorot_uniform")
        bias = self.add_weight(name=f"{name}_bias", shape=(heads, dim), initializer="zeros") if self.use_bias else None
        return kernel, bias

    def build(self, query_shape, value_shape, key_shape=None):
        key_shape = value_shape if key_shape is None else key_shape
        for argument, shape in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if len(shape) != 3:
                raise ValueError(f"{argument} must have shape (batch, positions, features), got {tuple(shape)}")
        h = self.num_heads
        self.query_kernel, self.query_bias = self._projection("query", query_shape[-1], h, self.key_dim)
        self.key_kernel, self.key_bias = self._projection("key", key_shape[-1], h, self.key_dim)
        self.value_kernel, self.value_bias = self._projection("value", value_shape[-1], h, self.value_dim)
        self.output_kernel = self.add_weight(name="output_kernel", shape=(h, self.value_dim, query_shape[-1]),
                                             initializer="glorot_uniform")
        self.output_bias = (self.add_weight(name="output_bias", shape=(query_shape[-1],), initializer="zeros")
                            if self.use_bias else None)
        self.built = True

    def _project(self, x, kernel, bias):
        y = ops.einsum("btd,dhk->bhtk", x, kernel)  # (batch, heads, positions, depth per head)
        return y if bias is None else y + bias[None, :, None, :]

    def call(self, query, value, key=None, attention_mask=None, use_causal_mask=False,
             return_attention_scores=False, training=None):
        key = value if key is None else key
        q = self._project(query, self.query_kernel, self.query_bias)
        k = self._project(key, self.key_kernel, self.key_bias)
        v = self._project(value, self.value_kernel, self.value_bias)
        mask = None
        if attention_mask is not None:
            mask = ops.cast(attention_mask, "bool")[:, None, :, :]  # the same mask for every head
        if use_causal_mask:
            causal = _causal(ops.shape(query)[1], ops.shape(key)[1])[None, None]
            mask = causal if mask is None else ops.logical_and(mask, causal)
        weights = attention_weights(q, k, mask)
        context = ops.matmul(self.dropout_layer(weights, training=training), v)  # (batch, heads, T_q, value_dim)
        output = ops.einsum("bhtk,hkd->btd", context, self.output_kernel)
        if self.output_bias is not None:
            output = output + self.output_bias
        return (output, weights) if return_attention_scores else output

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, key_dim=self.key_dim, value_dim=self.value_dim,
                      dropout=self.dropout, use_bias=self.use_bias)
        return config


def _block_args(d_model, num_heads, d_ff, dropout):
    d_model = positive_int("d_model", d_model)
    num_heads = positive_int("num_heads", num_heads)
    if d_model % num_heads:
        raise ValueError(f"d_model must be divisible by num_heads, got d_model={d_model}, num_heads={num_heads}")
    return d_model, num_heads, positive_int("d_ff", d_ff), _check_rate("dropout", dropout)


def _key_mask(padding_mask):
    """(batch, T_k) True for real tokens -> (batch, 1, T_k), an attention mask that broadcasts over the queries."""
    return None if padding_mask is None else ops.cast(padding_mask, "bool")[:, None, :]


class _Block(layers.Layer):
    """What encoder and decoder blocks share: sizes, the feed-forward network and the residual + LayerNorm steps."""

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1, **kwargs):
        super().__init__(**kwargs)
        self.d_model, self.num_heads, self.d_ff, self.dropout = _block_args(d_model, num_heads, d_ff, dropout)

    def _attention(self, name):
        return MultiHeadAttention(self.num_heads, self.d_model // self.num_heads, dropout=self.dropout, name=name)

    def _make_feedforward(self, norm_last=False):
        # the order in which sub-layers are created is the order of get_weights(): KerasHub's encoder
        # creates the feed-forward LayerNorm before the dense layers, its decoder after them
        if not norm_last:
            self.ffn_norm = layers.LayerNormalization(epsilon=1e-5, name="ffn_norm")
        self.ffn_hidden = layers.Dense(self.d_ff, activation="relu", name="ffn_hidden")
        self.ffn_output = layers.Dense(self.d_model, name="ffn_output")
        if norm_last:
            self.ffn_norm = layers.LayerNormalization(epsilon=1e-5, name="ffn_norm")
        self.drop = layers.Dropout(self.dropout)

    def _build_feedforward(self, shape):
        self.ffn_norm.build(shape)
        self.ffn_hidden.build(shape)
        self.ffn_output.build(tuple(shape[:-1]) + (self.d_ff,))

    def _residual(self, norm, x, sublayer_output, training):
        """Post-LN, as in the paper: LayerNorm(x + Dropout(sublayer(x)))."""
        return norm(x + self.drop(sublayer_output, training=training))

    def _feedforward(self, x, training):
        return self._residual(self.ffn_norm, x, self.ffn_output(self.ffn_hidden(x)), training)

    def get_config(self):
        config = super().get_config()
        config.update(d_model=self.d_model, num_heads=self.num_heads, d_ff=self.d_ff, dropout=self.dropout)
        return config


@keras.saving.register_keras_serializable(package="nnutils")
class EncoderBlock(_Block):
    """Self-attention and a position-wise feed-forward net, each with residual + LayerNorm (notebook 08).

    ``call(inputs, padding_mask=None)``: inputs (batch, T, d_model); padding_mask (batch, T), True for real
    tokens. ``norm_first=True`` normalises before each sub-layer instead (pre-LN, KerasHub's
    ``normalize_first``), which trains stably without a long warm-up (notebook 09). The sub-layers are
    built in KerasHub's TransformerEncoder order, so its weights load directly.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1, norm_first=False, **kwargs):
        super().__init__(d_model, num_heads, d_ff, dropout, **kwargs)
        if not isinstance(norm_first, bool):
            raise TypeError(f"norm_first must be True or False, got {norm_first!r}")
        self.norm_first = norm_first
        self.self_attention = self._attention("self_attention")
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self._make_feedforward()

    def build(self, inputs_shape):
        self.self_attention.build(inputs_shape, inputs_shape)
        self.attention_norm.build(inputs_shape)
        self._build_feedforward(inputs_shape)
        self.built = True

    def call(self, inputs, padding_mask=None, training=None, return_attention_scores=False):
        mask = _key_mask(padding_mask)
        if self.norm_first:  # pre-LN: x + Dropout(sublayer(LayerNorm(x))), as in GPT-2 and notebook 09's BERT
            normed = self.attention_norm(inputs)
            attended, weights = self.self_attention(normed, normed, attention_mask=mask, training=training,
                                                    return_attention_scores=True)
            x = inputs + self.drop(attended, training=training)
            hidden = self.ffn_output(self.ffn_hidden(self.ffn_norm(x)))
            x = x + self.drop(hidden, training=training)
            return (x, weights) if return_attention_scores else x
        attended, weights = self.self_attention(inputs, inputs, attention_mask=mask, training=training,
                                                return_attention_scores=True)
        x = self._residual(self.attention_norm, inputs, attended, training)
        x = self._feedforward(x, training)
        return (x, weights) if return_attention_scores else x

    def get_config(self):
        config = super().get_config()
        config.update(norm_first=self.norm_first)
        return config


def encoder_block_weights(block):
    """A built EncoderBlock's weights by name, as NumPy arrays, to re-implement its forward pass (notebook 08).

    The names follow the forward pass: ``query_kernel`` (d_model, heads, key_dim) and ``query_bias``
    (heads, key_dim), the same for ``key`` and ``value``, ``output_kernel`` (heads, key_dim, d_model) and
    ``output_bias`` (d_model,), ``attention_norm_gamma`` and ``_beta`` (d_model,), ``ffn_hidden_kernel``
    (d_model, d_ff) and ``_bias`` (d_ff,), ``ffn_output_kernel`` (d_ff, d_model) and ``_bias``, ``ffn_norm_gamma``
    and ``_beta``. Both LayerNorms use epsilon 1e-5.
    """
    if not isinstance(block, EncoderBlock):
        raise TypeError(f"block must be a transformer.EncoderBlock, got {type(block).__name__}")
    if not block.built:
        raise ValueError("block must be built: call it once on inputs of shape (batch, positions, d_model)")
    attention = block.self_attention
    named = [(f"{part}_{kind}", getattr(attention, f"{part}_{kind}"))
             for part in ("query", "key", "value", "output") for kind in ("kernel", "bias")]
    named += [("attention_norm_gamma", block.attention_norm.gamma), ("attention_norm_beta", block.attention_norm.beta),
              ("ffn_hidden_kernel", block.ffn_hidden.kernel), ("ffn_hidden_bias", block.ffn_hidden.bias),
              ("ffn_output_kernel", block.ffn_output.kernel), ("ffn_output_bias", block.ffn_output.bias),
              ("ffn_norm_gamma", block.ffn_norm.gamma), ("ffn_norm_beta", block.ffn_norm.beta)]
    return {name: np.array(ops.convert_to_numpy(value)) for name, value in named}


@keras.saving.register_keras_serializable(package="nnutils")
class DecoderBlock(_Block):
    """Causal self-attention, cross-attention to the encoder, feed-forward; residual + LayerNorm each (notebook 08).

    ``call(inputs, context, padding_mask=None, context_padding_mask=None)``: inputs (batch, T, d_model), the
    target so far; context (batch, S, d_model), the encoder's output; the padding masks are (batch, T) and
    (batch, S), True for real tokens. Position i attends to target positions <= i only. Sub-layers are built
    in KerasHub's TransformerDecoder order.
    """

    def __init__(self, d_model, num_heads, d_ff, dropout=0.1, **kwargs):
        super().__init__(d_model, num_heads, d_ff, dropout, **kwargs)
        self.self_attention = self._attention("self_attention")
        self.attention_norm = layers.LayerNormalization(epsilon=1e-5, name="attention_norm")
        self.cross_attention = self._attention("cross_attention")
        self.cross_norm = layers.LayerNormalization(epsilon=1e-5, name="cross_norm")
        self._make_feedforward(norm_last=True)

    def build(self, inputs_shape, context_shape):
        self.self_attention.build(inputs_shape, inputs_shape)
        self.attention_norm.build(inputs_shape)
        self.cross_attention.build(inputs_shape, context_shape)
        self.cross_norm.build(inputs_shape)
        self._build_feedforward(inputs_shape)
        self.built = True

    def call(self, inputs, context, padding_mask=None, context_padding_mask=None, training=None,
             return_attention_scores=False):
        attended, self_weights = self.self_attention(
            inputs, inputs, attention_mask=_key_mask(padding_mask), use_causal_mask=True, training=training,
            return_attention_scores=True)
        x = self._residual(self.attention_norm, inputs, attended, training)
        crossed, cross_weights = self.cross_attention(
            x, context, attention_mask=_key_mask(context_padding_mask), training=training,
            return_attention_scores=True)
        x = self._residual(self.cross_norm, x, crossed, training)
        x = self._feedforward(x, training)
        return (x, self_weights, cross_weights) if return_attention_scores else x


@keras.saving.register_keras_serializable(package="nnutils")
class PositionalEmbedding(layers.Layer):
    """Token embedding scaled by sqrt(d_model), plus the sinusoidal positional encoding (notebook 08).

    ``positional=False`` leaves the positions out (the ablation of notebook 08: attention alone is blind to
    order). Inputs are ids (batch, T) with T <= ``max_len``; no Keras mask is attached to the output.
    """

    def __init__(self, vocab_size, d_model, max_len, positional=True, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = positive_int("vocab_size", vocab_size)
        self.d_model = positive_int("d_model", d_model)
        self.max_len = positive_int("max_len", max_len)
        if not isinstance(positional, bool):
            raise TypeError(f"positional must be True or False, got {positional!r}")
        self.positional = positional
        self.embedding = layers.Embedding(self.vocab_size, self.d_model, name="token_embedding")
        self.encoding = positional_encoding(self.max_len, self.d_model)

    def build(self, inputs_shape):
        self.embedding.build(inputs_shape)
        self.built = True

    def call(self, inputs):
        x = self.embedding(inputs) * ops.cast(math.sqrt(self.d_model), self.compute_dtype)
        if self.positional:
            x = x + ops.cast(self.encoding, self.compute_dtype)[None, : ops.shape(inputs)[1], :]
        return x

    def compute_output_shape(self, inputs_shape):
        return tuple(inputs_shape) + (self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(vocab_size=self.vocab_size, d_model=self.d_model, max_len=self.max_len,
                      positional=self.positional)
        return config


def build_transformer(src_vocab_size, tgt_vocab_size, d_model=128, num_heads=4, d_ff=512, num_layers=2,
                      max_len=64, dropout=0.1, positional=True, name="transformer"):
    """Encoder-decoder Transformer for teacher forcing, (src_ids, tgt_in_ids) -> logits (notebook 08).

    ``num_layers`` encoder blocks and as many decoder blocks, post-LN as in Vaswani et al. (2017); id 0 is
    padding in both inputs and is masked out of every attention. ``max_len`` bounds both lengths.
    """
    for argument, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                            ("num_layers", num_layers)):
        positive_int(argument, value)
    _block_args(d_model, num_heads, d_ff, dropout)
    src = keras.Input((None,), dtype="int32", name="src_ids")
    tgt_in = keras.Input((None,), dtype="int32", name="tgt_in_ids")
    src_real, tgt_real = ops.not_equal(src, 0), ops.not_equal(tgt_in, 0)
    x = PositionalEmbedding(src_vocab_size, d_model, max_len, positional, name="src_embed")(src)
    x = layers.Dropout(dropout, name="src_dropout")(x)
    for i in range(num_layers):
        x = EncoderBlock(d_model, num_heads, d_ff, dropout, name=f"encoder_{i}")(x, padding_mask=src_real)
    memory = x
    y = PositionalEmbedding(tgt_vocab_size, d_model, max_len, positional, name="tgt_embed")(tgt_in)
    y = layers.Dropout(dropout, name="tgt_dropout")(y)
    for i in range(num_layers):
        y = DecoderBlock(d_model, num_heads, d_ff, dropout, name=f"decoder_{i}")(
            y, memory, padding_mask=tgt_real, context_padding_mask=src_real)
    logits = layers.Dense(tgt_vocab_size, name="logits")(y)
    return keras.Model([src, tgt_in], logits, name=name)


@keras.saving.register_keras_serializable(package="nnutils")
class TransformerSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """The paper's learning rate: scale * d_model^-0.5 * min(step^-0.5, step * warmup^-1.5) (notebook 08)."""

    def __init__(self, d_model, warmup_steps=4000, scale=1.0):
        self.d_model = positive_int("d_model", d_model)
        self.warmup_steps = positive_int("warmup_steps", warmup_steps)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ValueError(f"scale must be a number > 0, got {scale!r}")
        self.scale = float(scale)

    def __call__(self, step):
        step = ops.cast(step, "float32") + 1.0  # Keras counts steps from 0
        return (self.scale * self.d_model ** -0.5
                * ops.minimum(ops.rsqrt(step), step * self.warmup_steps ** -1.5))

    def get_config(self):
        return {"d_model": self.d_model, "warmup_steps": self.warmup_steps, "scale": self.scale}


@keras.saving.register_keras_serializable(package="nnutils")
class SmoothedMaskedLoss(keras.losses.Loss):
    """Cross-entropy over real target tokens (id 0 ignored) with label smoothing epsilon (notebook 08).

    The target distribution puts 1 - epsilon on the right token and spreads epsilon evenly over the whole
    vocabulary; ``label_smoothing=0`` is nnutils.seq2seq.masked_loss. y_pred are logits.
    """

    def __init__(self, label_smoothing=0.1, name="smoothed_masked_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = _check_rate("label_smoothing", label_smoothing)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        log_probs = ops.log_softmax(ops.cast(y_pred, "float32"), axis=-1)
        nll = -ops.take_along_axis(log_probs, y_true[..., None], axis=-1)[..., 0]
        uniform = -ops.mean(log_probs, axis=-1)
        per_token = (1.0 - self.label_smoothing) * nll + self.label_smoothing * uniform
        mask = ops.cast(ops.not_equal(y_true, 0), "float32")
        return ops.sum(per_token * mask) / ops.maximum(ops.sum(mask), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(label_smoothing=self.label_smoothing)
        return config
