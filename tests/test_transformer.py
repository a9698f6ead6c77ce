"""Tests of nnutils.transformer (notebook 08): attention, masks, positions, multi-head attention, blocks, model."""

import math

import keras
import numpy as np
import pytest

from nnutils import seq2seq, transformer

RNG = np.random.default_rng(0)


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _np(x):
    return keras.ops.convert_to_numpy(x)


# ---------------------------------------------------------------- scaled dot-product attention
def test_attention_matches_the_formula_and_rows_sum_to_one():
    q, k, v = _normal(2, 3, 4, seed=1), _normal(2, 5, 4, seed=2), _normal(2, 5, 6, seed=3)
    out, weights = transformer.scaled_dot_product_attention(q, k, v)
    scores = q @ k.transpose(0, 2, 1) / 2.0  # sqrt(4)
    expected = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    np.testing.assert_allclose(_np(weights), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(out), expected @ v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(weights).sum(-1), 1.0, rtol=1e-6)
    assert _np(out).shape == (2, 3, 6)


@pytest.mark.parametrize("causal", [False, True])
def test_attention_equals_keras_ops_dot_product_attention(causal):
    # keras.ops lays heads out as (batch, T, heads, depth); ours takes (batch, heads, T, depth)
    q, k, v = _normal(2, 3, 5, 8, seed=4), _normal(2, 3, 5, 8, seed=5), _normal(2, 3, 5, 8, seed=6)
    mask = transformer.causal_mask(5) if causal else None
    ours, _ = transformer.scaled_dot_product_attention(q, k, v, mask=mask)
    theirs = keras.ops.dot_product_attention(*(np.transpose(t, (0, 2, 1, 3)) for t in (q, k, v)), is_causal=causal)
    np.testing.assert_allclose(_np(ours), np.transpose(_np(theirs), (0, 2, 1, 3)), rtol=1e-5, atol=1e-5)


def test_masked_keys_get_exactly_zero_weight_and_change_nothing():
    q, k, v = _normal(1, 2, 4, seed=7), _normal(1, 6, 4, seed=8), _normal(1, 6, 3, seed=9)
    mask = np.array([[[True, True, True, True, False, False]]])  # the last two keys are padding
    out, weights = transformer.scaled_dot_product_attention(q, k, v, mask=mask)
    assert np.all(_np(weights)[..., 4:] == 0.0)
    k2, v2 = k.copy(), v.copy()
    k2[:, 4:], v2[:, 4:] = 100.0, -50.0  # whatever sits in the padding
    out2, _ = transformer.scaled_dot_product_attention(q, k2, v2, mask=mask)
    np.testing.assert_allclose(_np(out), _np(out2), rtol=1e-6, atol=1e-6)
    short, _ = transformer.scaled_dot_product_attention(q, k[:, :4], v[:, :4])
    np.testing.assert_allclose(_np(out), _np(short), rtol=1e-5, atol=1e-6)


def test_integer_mask_and_fully_masked_row_gives_uniform_weights():
    q, k, v = _normal(3, 4, seed=10), _normal(5, 4, seed=11), _normal(5, 2, seed=12)
    mask = np.ones((3, 5), dtype=int)
    mask[1] = 0
    out, weights = transformer.scaled_dot_product_attention(q, k, v, mask=mask)
    np.testing.assert_allclose(_np(weights)[1], np.full(5, 0.2), rtol=1e-6)
    np.testing.assert_allclose(_np(out)[1], v.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_attention_bad_inputs():
    with pytest.raises(ValueError, match=r"q \(2, 3, 4\).*k \(2, 5, 6\)"):
        transformer.scaled_dot_product_attention(_normal(2, 3, 4), _normal(2, 5, 6), _normal(2, 5, 6))
    with pytest.raises(ValueError, match="same number of keys"):
        transformer.scaled_dot_product_attention(_normal(3, 4), _normal(5, 4), _normal(6, 4))
    with pytest.raises(ValueError, match="at least 2 axes"):
        transformer.scaled_dot_product_attention(_normal(4), _normal(5, 4), _normal(5, 4))


def test_scaling_keeps_the_softmax_from_saturating():
    d = 512
    q, k = _normal(1, d, seed=13), _normal(50, d, seed=14)
    scaled = _np(transformer.attention_weights(q, k))
    unscaled = _np(keras.ops.softmax(q @ k.T, axis=-1))
    assert unscaled.max() > 0.99 and scaled.max() < 0.5  # without 1/sqrt(d), one key takes everything


# ---------------------------------------------------------------- positional encoding and masks
def test_positional_encoding_formula():
    pe = transformer.positional_encoding(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == np.float32
    for p, i in [(0, 0), (3, 1), (17, 5), (49, 7)]:
        angle = p / 10000 ** (2 * i / 16)
        assert pe[p, 2 * i] == pytest.approx(math.sin(angle), abs=1e-6)
        assert pe[p, 2 * i + 1] == pytest.approx(math.cos(angle), abs=1e-6)
    np.testing.assert_array_equal(pe[0, 1::2], 1.0)


@pytest.mark.parametrize("length, depth, error", [(10, 7, ValueError), (0, 8, ValueError), (10, 0, ValueError),
                                                  (2.5, 8, TypeError), (10, "8", TypeError)])
def test_positional_encoding_bad_arguments(length, depth, error):
    with pytest.raises(error, match="depth|length"):
        transformer.positional_encoding(length, depth)


def test_causal_mask():
    mask = transformer.causal_mask(4)
    assert mask.dtype == bool and mask.shape == (4, 4)
    np.testing.assert_array_equal(mask, np.tril(np.ones((4, 4))) == 1)
    assert mask[2, 1] and not mask[1, 2]
    with pytest.raises(ValueError, match="size"):
        transformer.causal_mask(0)


# ---------------------------------------------------------------- multi-head attention against Keras's layer
def _pair(num_heads=2, key_dim=3, query=None, value=None, seed=0):
    query = _normal(2, 4, 6, seed=seed) if query is None else query
    value = query if value is None else value
    theirs = keras.layers.MultiHeadAttention(num_heads, key_dim)
    theirs(query, value)
    ours = transformer.MultiHeadAttention(num_heads, key_dim)
    ours(query, value)
    rng = np.random.default_rng(seed + 1)  # non-zero biases too, so that every weight is exercised
    theirs.set_weights([rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()])
    ours.set_weights(theirs.get_weights())
    return ours, theirs, query, value


def test_mha_weights_have_keras_shapes_and_order():
    ours, theirs, _, _ = _pair()
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()] == [
        (6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (6, 2, 3), (2, 3), (2, 3, 6), (6,)]


@pytest.mark.parametrize("case", ["self", "cross", "padding", "causal", "causal+padding"])
def test_mha_equals_keras_multi_head_attention(case):
    query = _normal(2, 4, 6, seed=20)
    value = _normal(2, 7, 5, seed=21) if case in ("cross", "padding") else query
    ours, theirs, _, _ = _pair(query=query, value=value)
    kwargs = {}
    if "padding" in case:
        t_k = value.shape[1]
        real = np.arange(t_k)[None, :] < np.array([[t_k], [t_k - 3]])
        kwargs["attention_mask"] = np.repeat(real[:, None, :], 4, axis=1)
    if "causal" in case:
        kwargs["use_causal_mask"] = True
    out, scores = ours(query, value, return_attention_scores=True, **kwargs)
    out_k, scores_k = theirs(query, value, return_attention_scores=True, **kwargs)
    np.testing.assert_allclose(_np(out), _np(out_k), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(_np(scores), _np(scores_k), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_np(ours(query, value, **kwargs)), _np(out_k), rtol=1e-5, atol=1e-5)


def test_mha_separate_key_equals_keras():
    query, value, key = _normal(2, 3, 4, seed=22), _normal(2, 5, 4, seed=23), _normal(2, 5, 4, seed=24)
    theirs = keras.layers.MultiHeadAttention(2, 4)
    theirs(query, value, key)
    ours = transformer.MultiHeadAttention(2, 4)
    ours(query, value, key)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(_np(ours(query, value, key)), _np(theirs(query, value, key)), rtol=1e-5, atol=1e-5)


def test_mha_differs_before_weights_are_copied():
    query = _normal(2, 4, 6, seed=25)
    theirs, ours = keras.layers.MultiHeadAttention(2, 3), transformer.MultiHeadAttention(2, 3)
    assert not np.allclose(_np(ours(query, query)), _np(theirs(query, query)), atol=1e-3)


def test_mha_a_future_token_changes_nothing_under_the_causal_mask():
    ours, _, query, _ = _pair()
    changed = query.copy()
    changed[:, 3] += 10.0  # the last position
    before = _np(ours(query, query, use_causal_mask=True))
    after = _np(ours(changed, changed, use_causal_mask=True))
    np.testing.assert_allclose(before[:, :3], after[:, :3], rtol=1e-5, atol=1e-5)
    assert not np.allclose(before[:, 3], after[:, 3])


@pytest.mark.filterwarnings("ignore:.*mask attached")
def test_mha_ignores_keras_masks_attached_to_inputs():
    ids = np.array([[3, 4, 0, 0]])
    embed = keras.layers.Embedding(10, 6, mask_zero=True)
    x = embed(ids)
    ours = transformer.MultiHeadAttention(2, 3)
    with_mask = _np(ours(x, x))
    np.testing.assert_allclose(with_mask, _np(ours(_np(x), _np(x))), rtol=1e-6)


def test_mha_round_trips_through_keras_file(tmp_path):
    inputs = keras.Input((5, 6))
    outputs = transformer.MultiHeadAttention(2, 3, dropout=0.1, name="mha")(inputs, inputs, use_causal_mask=True)
    model = keras.Model(inputs, outputs)
    x = _normal(3, 5, 6, seed=26)
    path = tmp_path / "mha.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    layer = loaded.get_layer("mha")
    assert isinstance(layer, transformer.MultiHeadAttention) and layer.dropout == 0.1
    np.testing.assert_allclose(_np(model(x)), _np(loaded(x)), rtol=1e-6, atol=1e-6)


def test_mha_dropout_only_in_training():
    query = _normal(2, 4, 6, seed=27)
    layer = transformer.MultiHeadAttention(2, 3, dropout=0.5)
    np.testing.assert_allclose(_np(layer(query, query)), _np(layer(query, query)))
    assert not np.allclose(_np(layer(query, query, training=True)), _np(layer(query, query)))


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(num_heads=0, key_dim=4), ValueError, "num_heads"),
    (dict(num_heads=2, key_dim=2.0), TypeError, "key_dim"),
    (dict(num_heads=2, key_dim=4, dropout=1.0), ValueError, "dropout"),
    (dict(num_heads=2, key_dim=4, use_bias=1), TypeError, "use_bias"),
])
def test_mha_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        transformer.MultiHeadAttention(**kwargs)


def test_mha_rejects_inputs_without_positions():
    with pytest.raises(ValueError, match="query"):
        transformer.MultiHeadAttention(2, 3)(_normal(4, 6), _normal(4, 6))


# ---------------------------------------------------------------- blocks
def test_encoder_block_padding_changes_nothing_for_real_tokens():
    block = transformer.EncoderBlock(8, 2, 16, dropout=0.0)
    x = _normal(1, 5, 8, seed=30)
    real = np.array([[True, True, True, False, False]])
    out = _np(block(x, padding_mask=real))
    x2 = x.copy()
    x2[:, 3:] = 7.0
    np.testing.assert_allclose(out[:, :3], _np(block(x2, padding_mask=real))[:, :3], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[:, :3], _np(block(x[:, :3]))[:, :3], rtol=1e-5, atol=1e-5)


def test_decoder_block_is_causal_and_ignores_padded_context():
    block = transformer.DecoderBlock(8, 2, 16, dropout=0.0)
    y, memory = _normal(2, 4, 8, seed=31), _normal(2, 6, 8, seed=32)
    context_real = np.array([[True] * 6, [True] * 4 + [False] * 2])
    out = _np(block(y, memory, context_padding_mask=context_real))
    y2 = y.copy()
    y2[:, 2:] += 5.0
    np.testing.assert_allclose(out[:, :2], _np(block(y2, memory, context_padding_mask=context_real))[:, :2],
                               rtol=1e-5, atol=1e-5)
    memory2 = memory.copy()
    memory2[1, 4:] = -9.0
    np.testing.assert_allclose(out[1], _np(block(y, memory2, context_padding_mask=context_real))[1],
                               rtol=1e-5, atol=1e-5)
    out_scores = block(y, memory, return_attention_scores=True)
    assert [tuple(t.shape) for t in out_scores] == [(2, 4, 8), (2, 2, 4, 4), (2, 2, 4, 6)]
    assert np.all(_np(out_scores[1])[..., 0, 1:] == 0.0)  # the first position sees only itself


def test_encoder_block_is_post_layer_norm_of_the_paper():
    block = transformer.EncoderBlock(8, 2, 16, dropout=0.0)
    x = _normal(2, 3, 8, seed=33)
    out = _np(block(x))
    attended = _np(block.self_attention(x, x))

    def norm(layer, z):
        mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        return _np(layer.gamma) * (z - mean) / np.sqrt(var + layer.epsilon) + _np(layer.beta)

    h = norm(block.attention_norm, x + attended)
    ffn = np.maximum(h @ _np(block.ffn_hidden.kernel) + _np(block.ffn_hidden.bias), 0)
    expected = norm(block.ffn_norm, h + ffn @ _np(block.ffn_output.kernel) + _np(block.ffn_output.bias))
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(d_model=10, num_heads=4, d_ff=16), ValueError, "divisible"),
    (dict(d_model=8, num_heads=2, d_ff=0), ValueError, "d_ff"),
    (dict(d_model=8, num_heads=2, d_ff=16, dropout=-0.1), ValueError, "dropout"),
])
def test_block_bad_arguments(kwargs, error, word):
    for block in (transformer.EncoderBlock, transformer.DecoderBlock):
        with pytest.raises(error, match=word):
            block(**kwargs)


def test_blocks_match_keras_hub_layers():
    keras_hub = pytest.importorskip("keras_hub")
    x, memory = _normal(2, 5, 8, seed=34), _normal(2, 6, 8, seed=35)
    real = np.array([[True] * 5, [True] * 3 + [False] * 2])
    theirs = keras_hub.layers.TransformerEncoder(16, 2, dropout=0.0)
    theirs(x)
    ours = transformer.EncoderBlock(8, 2, 16, dropout=0.0)
    ours(x)
    ours.set_weights([w + 0.01 * np.random.default_rng(1).normal(size=w.shape) for w in theirs.get_weights()])
    theirs.set_weights(ours.get_weights())
    np.testing.assert_allclose(_np(ours(x, padding_mask=real)), _np(theirs(x, padding_mask=real)),
                               rtol=1e-4, atol=1e-4)
    theirs = keras_hub.layers.TransformerDecoder(16, 2, dropout=0.0)
    theirs(x, memory)
    ours = transformer.DecoderBlock(8, 2, 16, dropout=0.0)
    ours(x, memory)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(_np(ours(x, memory, padding_mask=real)),
                               _np(theirs(x, memory, decoder_padding_mask=real)), rtol=1e-4, atol=1e-4)



@pytest.mark.parametrize("masked", [False, True])
def test_pre_ln_encoder_block_matches_keras_hub_normalize_first(masked):
    keras_hub = pytest.importorskip("keras_hub")
    x = _normal(2, 5, 8, seed=36)
    real = np.array([[True] * 5, [True] * 3 + [False] * 2]) if masked else None
    theirs = keras_hub.layers.TransformerEncoder(16, 2, dropout=0.0, normalize_first=True)
    theirs(x)
    ours = transformer.EncoderBlock(8, 2, 16, dropout=0.0, norm_first=True)
    ours(x)
    assert [w.shape for w in ours.get_weights()] == [w.shape for w in theirs.get_weights()]
    rng = np.random.default_rng(2)
    theirs.set_weights([w + 0.2 * rng.normal(size=w.shape) for w in theirs.get_weights()])  # norms and biases too
    ours.set_weights(theirs.get_weights())
    out = _np(ours(x, padding_mask=real))
    np.testing.assert_allclose(out, _np(theirs(x, padding_mask=real)), rtol=1e-4, atol=1e-4)
    post = transformer.EncoderBlock(8, 2, 16, dropout=0.0)
    post(x)
    post.set_weights(ours.get_weights())
    assert not np.allclose(_np(post(x, padding_mask=real)), out, atol=1e-3)  # norm_first does change the block
    if masked:  # and the mask does change the padded row
        assert not np.allclose(_np(ours(x))[1, :3], out[1, :3], atol=1e-3)


def test_encoder_block_pre_layer_norm_formula_and_config():
    block = transformer.EncoderBlock(8, 2, 16, dropout=0.0, norm_first=True)
    x = 3.0 * _normal(2, 3, 8, seed=37)
    block(x)
    block.set_weights([w + 0.2 * _normal(*w.shape, seed=i) for i, w in enumerate(block.get_weights())])

    def norm(layer, z):
        mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        return _np(layer.gamma) * (z - mean) / np.sqrt(var + layer.epsilon) + _np(layer.beta)

    normed = norm(block.attention_norm, x)
    h = x + _np(block.self_attention(normed, normed))  # x + sublayer(LayerNorm(x)): no norm after the sum
    hidden = np.maximum(norm(block.ffn_norm, h) @ _np(block.ffn_hidden.kernel) + _np(block.ffn_hidden.bias), 0)
    expected = h + hidden @ _np(block.ffn_output.kernel) + _np(block.ffn_output.bias)
    np.testing.assert_allclose(_np(block(x)), expected, rtol=1e-4, atol=1e-4)
    assert block.get_config()["norm_first"] is True
    assert transformer.EncoderBlock.from_config(block.get_config()).norm_first is True
    assert transformer.EncoderBlock(8, 2, 16).norm_first is False


@pytest.mark.parametrize("value", [1, 0, "yes", None, np.bool_(True)])
def test_encoder_block_norm_first_must_be_a_bool(value):
    with pytest.raises(TypeError, match="norm_first"):
        transformer.EncoderBlock(8, 2, 16, norm_first=value)

def _encoder_forward(x, real, w):
    """One post-LN encoder block in NumPy from encoder_block_weights (notebook 08's exercise 4)."""
    def norm(z, prefix):
        mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
        return w[f"{prefix}_gamma"] * (z - mean) / np.sqrt(var + 1e-5) + w[f"{prefix}_beta"]

    q, k, v = (np.einsum("btd,dhk->bhtk", x, w[f"{n}_kernel"]) + w[f"{n}_bias"][None, :, None, :]
               for n in ("query", "key", "value"))
    scores = np.where(real[:, None, None, :], q @ np.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]), -1e9)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    h = norm(x + np.einsum("bhtk,hkd->btd", weights @ v, w["output_kernel"]) + w["output_bias"], "attention_norm")
    hidden = np.maximum(h @ w["ffn_hidden_kernel"] + w["ffn_hidden_bias"], 0.0)
    return norm(h + hidden @ w["ffn_output_kernel"] + w["ffn_output_bias"], "ffn_norm")


def test_encoder_block_weights_names_shapes_and_a_forward_pass_from_them():
    block = transformer.EncoderBlock(12, 3, 20, dropout=0.1)
    x = _normal(2, 5, 12, seed=38)
    block(x)
    block.set_weights([0.3 * _normal(*w.shape, seed=40 + i) for i, w in enumerate(block.get_weights())])
    w = transformer.encoder_block_weights(block)
    assert list(w) == ["query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
                       "output_kernel", "output_bias", "attention_norm_gamma", "attention_norm_beta",
                       "ffn_hidden_kernel", "ffn_hidden_bias", "ffn_output_kernel", "ffn_output_bias",
                       "ffn_norm_gamma", "ffn_norm_beta"]
    assert w["query_kernel"].shape == (12, 3, 4) and w["output_kernel"].shape == (3, 4, 12)
    assert w["ffn_hidden_kernel"].shape == (12, 20) and w["ffn_norm_beta"].shape == (12,)
    assert sum(v.size for v in w.values()) == block.count_params()
    np.testing.assert_array_equal(w["ffn_norm_gamma"], _np(block.ffn_norm.gamma))
    real = np.array([[True] * 5, [True, True, False, False, False]])
    np.testing.assert_allclose(_encoder_forward(x, real, w), _np(block(x, padding_mask=real, training=False)),
                               rtol=1e-4, atol=1e-4)
    w["ffn_norm_beta"][:] = 99.0  # a copy: changing it leaves the block as it was
    assert not np.any(_np(block.ffn_norm.beta) == 99.0)


def test_encoder_block_weights_bad_inputs():
    with pytest.raises(ValueError, match="built"):
        transformer.encoder_block_weights(transformer.EncoderBlock(8, 2, 16))
    decoder = transformer.DecoderBlock(8, 2, 16)
    decoder(_normal(1, 3, 8), _normal(1, 4, 8))
    for wrong in (decoder, keras.layers.Dense(4), None):
        with pytest.raises(TypeError, match="block must be a transformer.EncoderBlock"):
            transformer.encoder_block_weights(wrong)


# ---------------------------------------------------------------- the translation model
def _model(**kwargs):
    keras.utils.set_random_seed(0)
    args = dict(d_model=8, num_heads=2, d_ff=16, num_layers=2, max_len=12, dropout=0.0)
    args.update(kwargs)
    return transformer.build_transformer(11, 13, **args)


def test_transformer_output_shape_and_causality():
    model = _model()
    src, tgt = np.array([[4, 5, 6, 2, 0]]), np.array([[3, 7, 8, 9]])
    logits = _np(model([src, tgt]))
    assert logits.shape == (1, 4, 13)
    tgt2 = tgt.copy()
    tgt2[0, 3] = 10
    np.testing.assert_allclose(logits[:, :3], _np(model([src, tgt2]))[:, :3], rtol=1e-5, atol=1e-5)


def test_transformer_source_padding_changes_nothing():
    model = _model()
    tgt = np.array([[3, 7, 8]])
    short = _np(model([np.array([[4, 5, 2]]), tgt]))
    padded = _np(model([np.array([[4, 5, 2, 0, 0, 0]]), tgt]))
    np.testing.assert_allclose(short, padded, rtol=1e-5, atol=1e-5)


def test_transformer_without_positions_is_blind_to_source_order():
    src, shuffled, tgt = np.array([[4, 5, 6, 7, 2]]), np.array([[6, 4, 7, 5, 2]]), np.array([[3, 7, 8]])
    blind = _model(positional=False)
    np.testing.assert_allclose(_np(blind([src, tgt])), _np(blind([shuffled, tgt])), rtol=1e-5, atol=1e-5)
    seeing = _model()
    assert not np.allclose(_np(seeing([src, tgt])), _np(seeing([shuffled, tgt])), atol=1e-4)


def test_transformer_round_trips_through_keras_file(tmp_path):
    model = _model(dropout=0.1)
    src, tgt = np.array([[4, 5, 6, 2, 0]]), np.array([[3, 7, 8, 0]])
    model.compile(optimizer="adam", loss=transformer.SmoothedMaskedLoss(0.1))
    model.fit([src, tgt], np.array([[7, 8, 2, 0]]), epochs=1, verbose=0)
    path = tmp_path / "transformer.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded.get_layer("decoder_1"), transformer.DecoderBlock)
    np.testing.assert_allclose(_np(model([src, tgt])), _np(loaded([src, tgt])), rtol=1e-5, atol=1e-5)


def test_build_transformer_bad_arguments():
    with pytest.raises(ValueError, match="num_layers"):
        transformer.build_transformer(10, 10, num_layers=0)
    with pytest.raises(ValueError, match="divisible"):
        transformer.build_transformer(10, 10, d_model=10, num_heads=4)
    with pytest.raises(TypeError, match="positional"):
        transformer.build_transformer(10, 10, positional="yes")


def test_positional_embedding_scales_and_adds_positions():
    layer = transformer.PositionalEmbedding(7, 4, max_len=5)
    ids = np.array([[1, 2, 3]])
    out = _np(layer(ids))
    table = _np(layer.embedding.embeddings)
    np.testing.assert_allclose(out[0], table[[1, 2, 3]] * 2.0 + transformer.positional_encoding(5, 4)[:3],
                               rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- schedule and loss
def test_transformer_schedule_warms_up_then_decays():
    schedule = transformer.TransformerSchedule(128, warmup_steps=100)
    rates = np.array([float(schedule(s)) for s in range(400)])
    assert rates.argmax() == 99  # step 100, counted from 1
    assert rates[99] == pytest.approx(128 ** -0.5 * 100 ** -0.5, rel=1e-5)
    assert rates[399] == pytest.approx(128 ** -0.5 * 400 ** -0.5, rel=1e-5)
    clone = transformer.TransformerSchedule.from_config(schedule.get_config())
    assert float(clone(50)) == pytest.approx(float(schedule(50)))
    with pytest.raises(ValueError, match="scale"):
        transformer.TransformerSchedule(128, scale=0)
    with pytest.raises(ValueError, match="warmup_steps"):
        transformer.TransformerSchedule(128, warmup_steps=0)


def test_smoothed_loss_without_smoothing_is_the_masked_loss():
    logits = _normal(2, 3, 5, seed=40)
    y = np.array([[1, 2, 0], [3, 0, 0]])
    np.testing.assert_allclose(float(transformer.SmoothedMaskedLoss(0.0)(y, logits)),
                               float(seq2seq.masked_loss(y, logits)), rtol=1e-5)


def test_smoothed_loss_formula_and_padding_ignored():
    logits = _normal(1, 3, 4, seed=41)
    y = np.array([[1, 3, 0]])
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_token = [0.8 * -log_p[0, t, y[0, t]] + 0.2 * -log_p[0, t].mean() for t in range(2)]
    loss = transformer.SmoothedMaskedLoss(0.2)
    assert float(loss(y, logits)) == pytest.approx(np.mean(per_token), rel=1e-5)
    logits2 = logits.copy()
    logits2[0, 2] = 100.0
    assert float(loss(y, logits2)) == pytest.approx(float(loss(y, logits)), rel=1e-6)
    with pytest.raises(ValueError, match="label_smoothing"):
        transformer.SmoothedMaskedLoss(1.0)
