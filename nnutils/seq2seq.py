"""Encoder-decoder translation models with additive attention, and their step functions for decoding (notebook 07).

The training model reads (source ids, decoder input ids) and returns next-token logits for every
target position (teacher forcing). Id 0 is padding everywhere: padding is masked out of the
encoder, the attention and the loss. For decoding, ``encode`` runs the encoder on a batch of
sentences once, and ``step_fn_for`` turns the trained decoder into a NumPy step function for
``nnutils.decoding``, one sentence at a time.
"""

import keras
import numpy as np
from keras import layers

from ._args import id_matrix, positive_int


@keras.saving.register_keras_serializable(package="nnutils")
class AdditiveAttention(layers.Layer):
    """Additive (Bahdanau) attention: score(q, k) = v^T tanh(W_q q + W_k k); returns (context, weights) (notebook 07).

    ``call(query, keys, values=None, key_mask=None)``: query (batch, T_q, d_q), keys (batch, T_k, d_k),
    values (batch, T_k, d_v) (default: the keys), key_mask (batch, T_k), True where a key is real.
    context is (batch, T_q, d_v), weights (batch, T_q, T_k); each row of weights sums to 1 over real keys.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = positive_int("units", units)
        self.query_dense = layers.Dense(self.units, use_bias=False, name="w_q")
        self.key_dense = layers.Dense(self.units, use_bias=False, name="w_k")
        self.score_dense = layers.Dense(1, use_bias=False, name="v")

    def build(self, query_shape, keys_shape=None, values_shape=None, key_mask_shape=None):
        self.query_dense.build(query_shape)
        self.key_dense.build(keys_shape)
        self.score_dense.build(tuple(query_shape[:-1]) + (self.units,))
        self.built = True

    def call(self, query, keys, values=None, key_mask=None):
        values = keys if values is None else values
        projected = self.query_dense(query)[:, :, None, :] + self.key_dense(keys)[:, None, :, :]
        scores = self.score_dense(keras.ops.tanh(projected))[..., 0]  # (batch, T_q, T_k)
        if key_mask is not None:
            scores = keras.ops.where(keras.ops.cast(key_mask, "bool")[:, None, :], scores, -1e9)
        weights = keras.ops.softmax(scores, axis=-1)
        return keras.ops.matmul(weights, values), weights

    def compute_output_shape(self, query_shape, keys_shape=None, values_shape=None, key_mask_shape=None):
        values_shape = keys_shape if values_shape is None else values_shape
        return (tuple(query_shape[:-1]) + (values_shape[-1],),
                (query_shape[0], query_shape[1], keys_shape[1]))

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units)
        return config


def dot_product_scores(query, keys, scaled=True):
    """Attention scores q.k (Luong's dot product) or q.k / sqrt(d) (scaled, as in 08), in NumPy (notebook 07).

    query (..., T_q, d), keys (..., T_k, d) -> scores (..., T_q, T_k). No parameters: query and keys
    must live in the same d-dimensional space, which the additive score does not need.
    """
    query, keys = np.asarray(query, dtype=np.float64), np.asarray(keys, dtype=np.float64)
    if query.ndim < 2 or keys.ndim != query.ndim or query.shape[-1] != keys.shape[-1]:
        raise ValueError(f"query and keys must be (..., T_q, d) and (..., T_k, d) with the same d, got shapes "
                         f"{query.shape} and {keys.shape}")
    if not isinstance(scaled, bool):
        raise TypeError(f"scaled must be True or False, got {scaled!r}")
    scores = query @ np.swapaxes(keys, -1, -2)
    return scores / np.sqrt(query.shape[-1]) if scaled else scores


def build_seq2seq(src_vocab_size, tgt_vocab_size, embed_dim=128, units=256, attention=True, name=None):
    """GRU encoder-decoder for teacher forcing, (src_ids, tgt_in_ids) -> logits, with or without attention (notebook 07).

    The encoder's last state starts the decoder (the plain model's only view of the source). With
    attention, every decoder output also queries all encoder outputs, and [output; context] goes
    through a tanh layer before the vocabulary projection (attention after the RNN, as Luong et al.
    2015 arrange it, so training runs over all target positions at once; the score is Bahdanau's).
    """
    for argument, value in (("src_vocab_size", src_vocab_size), ("tgt_vocab_size", tgt_vocab_size),
                            ("embed_dim", embed_dim), ("units", units)):
        positive_int(argument, value)
    if not isinstance(attention, bool):
        raise TypeError(f"attention must be True or False, got {attention!r}")
    src = keras.Input((None,), dtype="int32", name="src_ids")
    tgt_in = keras.Input((None,), dtype="int32", name="tgt_in_ids")
    src_mask = keras.ops.not_equal(src, 0)
    src_emb = layers.Embedding(src_vocab_size, embed_dim, name="src_embed")(src)
    enc_out, enc_state = layers.GRU(units, return_sequences=True, return_state=True, name="encoder")(
        src_emb, mask=src_mask)
    tgt_emb = layers.Embedding(tgt_vocab_size, embed_dim, name="tgt_embed")(tgt_in)
    dec_out = layers.GRU(units, return_sequences=True, name="decoder")(tgt_emb, initial_state=enc_state)
    features = dec_out
    if attention:
        context, _ = AdditiveAttention(units, name="attention")(dec_out, enc_out, key_mask=src_mask)
        features = layers.Concatenate(name="concat")([dec_out, context])
    hidden = layers.Dense(units, activation="tanh", name="combine")(features)
    logits = layers.Dense(tgt_vocab_size, name="logits")(hidden)
    return keras.Model([src, tgt_in], logits, name=name or ("attention" if attention else "plain"))


@keras.saving.register_keras_serializable(package="nnutils")
def masked_loss(y_true, logits):
    """Mean cross-entropy over real target tokens only; id 0 (<pad>) counts for nothing (notebook 07)."""
    y_true = keras.ops.cast(y_true, "int32")
    per_token = keras.losses.sparse_categorical_crossentropy(y_true, logits, from_logits=True)
    mask = keras.ops.cast(keras.ops.not_equal(y_true, 0), per_token.dtype)
    return keras.ops.sum(per_token * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)


@keras.saving.register_keras_serializable(package="nnutils")
def masked_accuracy(y_true, logits):
    """Share of real target tokens (not <pad>) whose most likely prediction is right (notebook 07)."""
    y_true = keras.ops.cast(y_true, "int32")
    hit = keras.ops.cast(keras.ops.equal(keras.ops.cast(keras.ops.argmax(logits, axis=-1), "int32"), y_true),
                         "float32")
    mask = keras.ops.cast(keras.ops.not_equal(y_true, 0), "float32")
    return keras.ops.sum(hit * mask) / keras.ops.maximum(keras.ops.sum(mask), 1.0)


def encode(model, src_ids, batch_size=256):
    """Encoder outputs (n, S, units) and last states (n, units) of a batch of padded source ids, as NumPy (notebook 07)."""
    _check_model(model)
    src_ids = id_matrix("src_ids", src_ids)
    positive_int("batch_size", batch_size)
    encoder = keras.Model(model.get_layer("src_ids").output, model.get_layer("encoder").output)
    batches = [encoder(src_ids[i:i + batch_size], training=False) for i in range(0, len(src_ids), batch_size)]
    # direct calls, not predict(): a new predict function per call would be traced again and again
    outputs = np.concatenate([keras.ops.convert_to_numpy(out) for out, _ in batches])
    states = np.concatenate([keras.ops.convert_to_numpy(state) for _, state in batches])
    return outputs, states


def step_fn_for(model, enc_outputs, enc_state, src_ids):
    """One sentence's (step_fn, initial_state) for nnutils.decoding: the trained decoder, one step, in NumPy (notebook 07).

    ``enc_outputs`` (S, units), ``enc_state`` (units,) and ``src_ids`` (S,) are one row of ``encode``'s
    results and the padded source. The state is the decoder's hidden vector, one row per hypothesis.
    """
    _check_model(model)
    enc_outputs, enc_state = np.asarray(enc_outputs, np.float32), np.asarray(enc_state, np.float32)
    src_ids = np.asarray(src_ids)
    if enc_outputs.ndim != 2 or enc_state.shape != (enc_outputs.shape[1],) or src_ids.shape != (len(enc_outputs),):
        raise ValueError("enc_outputs, enc_state and src_ids must be one sentence: shapes (S, units), (units,), (S,); "
                         f"got {enc_outputs.shape}, {enc_state.shape}, {src_ids.shape}")
    w = _decoder_weights(model)
    attention = "w_q" in w
    if attention:
        keys = enc_outputs @ w["w_k"]  # the keys' projection does not change between steps
        real = src_ids != 0

    def step_fn(tokens, h):
        x = w["embed"][np.asarray(tokens)]
        h = _gru_step(x, h, w["kernel"], w["recurrent"], w["bias"])
        features = h
        if attention:
            scores = np.tanh((h @ w["w_q"])[:, None, :] + keys[None]) @ w["v"][:, 0]  # (n, S)
            scores = np.where(real[None, :], scores, -1e9)
            weights = np.exp(scores - scores.max(axis=1, keepdims=True))
            weights /= weights.sum(axis=1, keepdims=True)
            features = np.concatenate([h, weights @ enc_outputs], axis=1)
        logits = np.tanh(features @ w["combine_w"] + w["combine_b"]) @ w["logits_w"] + w["logits_b"]
        logits = logits - logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), h

    return step_fn, enc_state[None, :].astype(np.float32)


def _gru_step(x, h, kernel, recurrent, bias):
    """Keras's GRU step (gate order z, r, h; reset_after=True) in NumPy."""
    xz, xr, xh = np.split(x @ kernel + bias[0], 3, axis=1)
    hz, hr, hh = np.split(h @ recurrent + bias[1], 3, axis=1)
    z = 1.0 / (1.0 + np.exp(-(xz + hz)))
    r = 1.0 / (1.0 + np.exp(-(xr + hr)))
    candidate = np.tanh(xh + r * hh)
    return z * h + (1.0 - z) * candidate


def _decoder_weights(model):
    as_np = lambda v: np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float32)  # noqa: E731
    kernel, recurrent, bias = model.get_layer("decoder").get_weights()
    w = {"embed": as_np(model.get_layer("tgt_embed").embeddings), "kernel": as_np(kernel),
         "recurrent": as_np(recurrent), "bias": as_np(bias)}
    w["combine_w"], w["combine_b"] = (as_np(v) for v in model.get_layer("combine").get_weights())
    w["logits_w"], w["logits_b"] = (as_np(v) for v in model.get_layer("logits").get_weights())
    if any(layer.name == "attention" for layer in model.layers):
        att = model.get_layer("attention")
        w["w_q"], w["w_k"], w["v"] = (as_np(layer.kernel) for layer in (att.query_dense, att.key_dense,
                                                                        att.score_dense))
    return w


def _check_model(model):
    names = {layer.name for layer in getattr(model, "layers", [])}
    if not isinstance(model, keras.Model) or not {"encoder", "decoder", "tgt_embed", "logits"} <= names:
        raise TypeError(f"model must be a model from build_seq2seq, got {type(model).__name__}")
