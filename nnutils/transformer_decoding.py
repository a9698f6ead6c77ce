"""Decoding a trained Transformer one token at a time, for nnutils.decoding (notebook 08).

``encode`` runs the encoder of a model from ``transformer.build_transformer`` once per batch of sentences.
``step_fn_for`` then turns the decoder into a NumPy step function for one sentence. With ``use_cache=True``
each decoder layer keeps the keys and values of the positions decoded so far in the state, so a step
computes one new position; with ``use_cache=False`` every step runs the decoder over the whole prefix
again, which gives the same log-probabilities at a cost that grows with the length.
"""

import math

import keras
import numpy as np

from ._args import id_matrix, positive_int
from .transformer import MASKED, DecoderBlock, EncoderBlock


def _as_np(value):
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float32)


def _blocks(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def _check_model(model):
    if not isinstance(model, keras.Model) or not _blocks(model, DecoderBlock) or not _blocks(model, EncoderBlock):
        raise TypeError(f"model must be a model from transformer.build_transformer, got {type(model).__name__}")


def encode(model, src_ids, batch_size=256):
    """The encoder's output (n, S, d_model) for a batch of padded source ids, as NumPy (notebook 08)."""
    _check_model(model)
    src_ids = id_matrix("src_ids", src_ids)
    batch_size = positive_int("batch_size", batch_size)
    encoder = keras.Model(model.get_layer("src_ids").output, _blocks(model, EncoderBlock)[-1].output)
    return np.concatenate([_as_np(encoder(src_ids[i:i + batch_size], training=False))
                           for i in range(0, len(src_ids), batch_size)])


def _attention_weights(mha):
    names = ("query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
             "output_kernel", "output_bias")
    return {name: _as_np(getattr(mha, name)) for name in names}


def _norm_weights(norm):
    return (_as_np(norm.gamma), _as_np(norm.beta), norm.epsilon)


def _decoder_weights(model):
    embed = model.get_layer("tgt_embed")
    w = {"table": _as_np(embed.embedding.embeddings) * math.sqrt(embed.d_model),
         "positions": embed.encoding if embed.positional else np.zeros_like(embed.encoding),
         "logits": [_as_np(v) for v in model.get_layer("logits").get_weights()], "layers": []}
    for block in _blocks(model, DecoderBlock):
        w["layers"].append({
            "self": _attention_weights(block.self_attention), "self_norm": _norm_weights(block.attention_norm),
            "cross": _attention_weights(block.cross_attention), "cross_norm": _norm_weights(block.cross_norm),
            "ffn": [_as_np(v) for v in block.ffn_hidden.weights + block.ffn_output.weights],
            "ffn_norm": _norm_weights(block.ffn_norm)})
    return w


def _layer_norm(x, norm):
    gamma, beta, epsilon = norm
    mean = x.mean(axis=-1, keepdims=True)
    return gamma * (x - mean) / np.sqrt(x.var(axis=-1, keepdims=True) + epsilon) + beta


def _project(x, kernel, bias):
    return np.einsum("ntd,dhk->nhtk", x, kernel) + bias[None, :, None, :]


def _attend(q, k, v, mask, att):
    """Softmax attention of q (n, H, T, kd) over k, v (n or 1, H, S, kd); mask broadcastable to (n, H, T, S)."""
    scores = np.einsum("nhtk,nhsk->nhts", q, np.broadcast_to(k, (len(q),) + k.shape[1:])) / math.sqrt(q.shape[-1])
    scores = np.where(mask, scores, np.float32(MASKED))
    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    context = np.einsum("nhts,nhsk->nhtk", weights, np.broadcast_to(v, (len(q),) + v.shape[1:]))
    return np.einsum("nhtk,hkd->ntd", context, att["output_kernel"]) + att["output_bias"]


def _decoder(w, x, past, start, cross, real):
    """Run every decoder layer on x (n, T, d) at positions start.., given past keys/values; returns (x, new past)."""
    t_new = x.shape[1]
    causal = (np.arange(start + t_new)[None, :] <= np.arange(start, start + t_new)[:, None])[None, None]
    new_past = []
    for layer, (past_k, past_v), (cross_k, cross_v) in zip(w["layers"], past, cross):
        att = layer["self"]
        keys = np.concatenate([past_k, _project(x, att["key_kernel"], att["key_bias"])], axis=2)
        values = np.concatenate([past_v, _project(x, att["value_kernel"], att["value_bias"])], axis=2)
        new_past.append((keys, values))
        q = _project(x, att["query_kernel"], att["query_bias"])
        x = _layer_norm(x + _attend(q, keys, values, causal, att), layer["self_norm"])
        att = layer["cross"]
        q = _project(x, att["query_kernel"], att["query_bias"])
        x = _layer_norm(x + _attend(q, cross_k, cross_v, real, att), layer["cross_norm"])
        w1, b1, w2, b2 = layer["ffn"]
        x = _layer_norm(x + np.maximum(x @ w1 + b1, 0.0) @ w2 + b2, layer["ffn_norm"])
    return x, new_past


def _log_softmax(logits):
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def step_fn_for(model, memory, src_ids, use_cache=True):
    """One sentence's (step_fn, initial_state) for nnutils.decoding, the decoder in NumPy (notebook 08).

    ``memory`` (S, d_model) and ``src_ids`` (S,) are one row of ``encode``'s output and the padded source.
    With ``use_cache`` the state holds, per decoder layer, the keys and values of the tokens so far,
    (n, heads, t, key_dim), plus the position; without it, the state is the prefix of tokens (n, t).
    """
    _check_model(model)
    memory = np.asarray(memory, dtype=np.float32)
    src_ids = np.asarray(src_ids)
    if memory.ndim != 2 or src_ids.shape != (len(memory),):
        raise ValueError("memory and src_ids must be one sentence: shapes (S, d_model) and (S,); "
                         f"got {memory.shape} and {src_ids.shape}")
    if not isinstance(use_cache, bool):
        raise TypeError(f"use_cache must be True or False, got {use_cache!r}")
    w = _decoder_weights(model)
    cross = [(_project(memory[None], layer["cross"]["key_kernel"], layer["cross"]["key_bias"]),
              _project(memory[None], layer["cross"]["value_kernel"], layer["cross"]["value_bias"]))
             for layer in w["layers"]]  # the encoder's keys and values, computed once per sentence
    real = (src_ids != 0)[None, None, None, :]
    heads, key_dim = w["layers"][0]["self"]["key_kernel"].shape[1:]
    max_len = len(w["positions"])

    def embed(tokens, start):
        if start + tokens.shape[1] > max_len:
            raise ValueError(f"the model's positions go up to max_len={max_len}; decode with max_len <= {max_len}")
        return w["table"][tokens] + w["positions"][start:start + tokens.shape[1]]

    def logits_of(x):
        kernel, bias = w["logits"]
        return _log_softmax(x[:, -1] @ kernel + bias)

    def cached_step(tokens, state):
        start = int(state["position"][0])
        past = list(zip(state["keys"], state["values"]))
        x, new_past = _decoder(w, embed(np.asarray(tokens)[:, None], start), past, start, cross, real)
        new_state = {"position": state["position"] + 1, "keys": [k for k, _ in new_past],
                     "values": [v for _, v in new_past]}
        return logits_of(x), new_state

    def uncached_step(tokens, state):
        prefix = np.concatenate([state["prefix"], np.asarray(tokens)[:, None]], axis=1)
        empty = np.zeros((len(prefix), heads, 0, key_dim), np.float32)
        x, _ = _decoder(w, embed(prefix, 0), [(empty, empty)] * len(w["layers"]), 0, cross, real)
        return logits_of(x), {"prefix": prefix}

    if not use_cache:
        return uncached_step, {"prefix": np.zeros((1, 0), dtype=np.int64)}
    empty = np.zeros((1, heads, 0, key_dim), np.float32)
    state = {"position": np.zeros(1, dtype=np.int64), "keys": [empty] * len(w["layers"]),
             "values": [empty] * len(w["layers"])}
    return cached_step, state
