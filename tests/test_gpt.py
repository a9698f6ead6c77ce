"""Tests of nnutils.gpt (notebook 09): causal self-attention against Keras's layer, the GPT model, its data,
loss, optimiser and training, and the cached and uncached step functions for decoding."""

import math

import keras
import numpy as np
import pytest

from nnutils import decoding, gpt

# The training tests compile their step on JAX, where jit_compile=False runs it op by op (slow);
# TensorFlow's graph without XLA is quick to build and fast enough for these tiny models.
JIT_ON_JAX = keras.backend.backend() == "jax"

VOCAB, CONTEXT, D, HEADS = 11, 8, 16, 2


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _normal(*shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def _log_softmax(logits):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _model(seed=0, randomise=True, **kwargs):
    """A tiny built GPT; with randomise, every weight (biases and norms too) is set to a random value."""
    keras.utils.set_random_seed(seed)
    args = dict(context=CONTEXT, d_model=D, num_layers=2, num_heads=HEADS)
    args.update(kwargs)
    model = gpt.GPT(VOCAB, **args)
    model(np.zeros((1, args["context"]), np.int32))
    if randomise:
        rng = np.random.default_rng(seed + 100)
        model.set_weights([(1.0 if "gamma" in w.path else 0.0) + 0.3 * rng.normal(size=w.shape).astype("float32")
                           for w in model.weights])
    return model


def _ids(shape, seed=0, vocab=VOCAB):
    return np.random.default_rng(seed).integers(0, vocab, shape).astype(np.int32)


# ---------------------------------------------------------------- causal self-attention against Keras's layer
@pytest.mark.parametrize("fused", [True, False])
def test_causal_self_attention_equals_keras_multi_head_attention(fused):
    d, heads, t = 12, 3, 5
    x = _normal(2, t, d, seed=1)
    ours = gpt.CausalSelfAttention(d, heads, fused=fused)
    ours(x)
    rng = np.random.default_rng(2)
    ours.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in ours.get_weights()])
    theirs = keras.layers.MultiHeadAttention(heads, key_dim=d // heads, use_bias=False)
    theirs(x, x, use_causal_mask=True)
    assert [w.path.split("/")[-2:] for w in theirs.weights] == [
        ["query", "kernel"], ["key", "kernel"], ["value", "kernel"], ["attention_output", "kernel"]]
    qkv = _np(ours.qkv.kernel).reshape(d, 3, heads, d // heads)
    proj = _np(ours.proj.kernel).reshape(heads, d // heads, d)
    theirs.set_weights([qkv[:, 0], qkv[:, 1], qkv[:, 2], proj])
    expected = _np(theirs(x, x, use_causal_mask=True))
    np.testing.assert_allclose(_np(ours(x)), expected, rtol=1e-5, atol=1e-5)
    assert not np.allclose(_np(theirs(x, x)), expected, atol=1e-3)  # the mask matters for these inputs


def test_fused_and_unfused_attention_agree_and_are_causal():
    x = _normal(3, 7, 16, seed=3)
    fused = gpt.CausalSelfAttention(16, 4, fused=True)
    unfused = gpt.CausalSelfAttention(16, 4, fused=False)
    fused(x)
    unfused(x)
    unfused.set_weights(fused.get_weights())
    np.testing.assert_allclose(_np(fused(x)), _np(unfused(x)), rtol=1e-5, atol=1e-6)
    changed = x.copy()
    changed[:, 4:] += 5.0
    for layer in (fused, unfused):
        np.testing.assert_allclose(_np(layer(x))[:, :4], _np(layer(changed))[:, :4], rtol=1e-5, atol=1e-6)
        assert not np.allclose(_np(layer(x))[:, 4:], _np(layer(changed))[:, 4:])


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(d_model=10, num_heads=4), ValueError, "divisible"),
    (dict(d_model=8, num_heads=0), ValueError, "num_heads"),
    (dict(d_model=8, num_heads=2, dropout=1.0), ValueError, "dropout"),
    (dict(d_model=8, num_heads=2, fused=1), TypeError, "fused"),
    (dict(d_model=8, num_heads=2, use_bias="no"), TypeError, "use_bias"),
])
def test_causal_self_attention_bad_arguments(kwargs, error, word):
    with pytest.raises(error, match=word):
        gpt.CausalSelfAttention(**kwargs)


# ---------------------------------------------------------------- the model
@pytest.mark.parametrize("fused", [True, False])
def test_gpt_shape_and_future_tokens_change_nothing_before_them(fused):
    model = _model(fused=fused)
    ids = _ids((2, CONTEXT), seed=4)
    logits = _np(model(ids))
    assert logits.shape == (2, CONTEXT, VOCAB)
    changed = ids.copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % VOCAB
    after = _np(model(changed))
    np.testing.assert_allclose(logits[:, :5], after[:, :5], rtol=1e-5, atol=1e-5)
    assert not np.allclose(logits[:, 5:], after[:, 5:], atol=1e-4)
    np.testing.assert_allclose(_np(model(ids[:, :5])), logits[:, :5], rtol=1e-5, atol=1e-5)  # shorter input


def test_fused_and_unfused_gpt_agree():
    fused, unfused = _model(fused=True), _model(fused=False)
    unfused.set_weights(fused.get_weights())
    ids = _ids((2, CONTEXT), seed=5)
    np.testing.assert_allclose(_np(fused(ids)), _np(unfused(ids)), rtol=1e-5, atol=1e-5)


def test_tied_output_layer_is_the_token_embedding_transposed():
    tied = _model(tie_weights=True)
    untied = _model(tie_weights=False)
    assert tied.head is None and untied.head is not None
    by_path = {w.path.split("/", 1)[1]: _np(w) for w in tied.weights}
    for w in untied.weights:
        key = w.path.split("/", 1)[1]
        w.assign(_np(tied.token_embedding.embeddings).T if key == "head/kernel" else by_path[key])
    ids = _ids((2, CONTEXT), seed=6)
    np.testing.assert_allclose(_np(tied(ids)), _np(untied(ids)), rtol=1e-5, atol=1e-5)
    # and by hand: final_norm(h) @ E^T, h from the embeddings and the blocks
    h = tied.token_embedding(ids) + tied.position_embedding(np.arange(CONTEXT))[None]
    for block in tied.blocks:
        h = block(h)
    expected = _np(tied.final_norm(h)) @ _np(tied.token_embedding.embeddings).T
    np.testing.assert_allclose(_np(tied(ids)), expected, rtol=1e-5, atol=1e-5)
    untied.get_layer("head").kernel.assign(_normal(D, VOCAB, seed=7))
    assert not np.allclose(_np(tied(ids)), _np(untied(ids)), atol=1e-3)


def test_parameter_counts():
    tied, untied = _model(randomise=False), _model(randomise=False, tie_weights=False)
    assert gpt.count_parameters(untied) - gpt.count_parameters(tied) == VOCAB * D
    assert gpt.count_parameters(tied) - gpt.count_parameters(tied, exclude_positions=True) == CONTEXT * D
    assert gpt.count_parameters(tied) == sum(int(np.prod(w.shape)) for w in tied.trainable_weights)


def test_nanogpt_configuration_has_795904_parameters_without_positions():
    vocab, context, d, layers_, heads = 65, 64, 128, 4, 4
    model = gpt.GPT(vocab, context, d, layers_, heads, tie_weights=True, use_bias=False)
    model(np.zeros((1, context), np.int32))
    per_block = 3 * d * d + d * d + 4 * d * d + 4 * d * d + 2 * d  # qkv, proj, MLP in and out, two norms (no beta)
    expected = layers_ * per_block + vocab * d + d  # + the tied embedding and the final norm
    assert expected == 795_904
    assert gpt.count_parameters(model, exclude_positions=True) == expected
    assert gpt.count_parameters(model) == expected + context * d


def test_initialisation_scales_residual_projections():
    num_layers, d = 2, 256
    model = _model(randomise=False, d_model=d, num_layers=num_layers, num_heads=4)
    residual = 0.02 / math.sqrt(2 * num_layers)
    for block in model.blocks:
        for layer, std in [(block.attention.qkv, 0.02), (block.attention.proj, residual),
                           (block.mlp_hidden, 0.02), (block.mlp_output, residual)]:
            kernel = _np(layer.kernel)
            assert kernel.std() == pytest.approx(std, rel=0.03), layer.name
            assert abs(kernel.mean()) < 0.1 * std
        np.testing.assert_array_equal(_np(block.norm_1.gamma), 1.0)
    for table in (model.token_embedding.embeddings, model.position_embedding.embeddings):
        assert _np(table).std() == pytest.approx(0.02, rel=0.06)


def test_use_bias_adds_biases_and_centred_norms():
    with_bias, without = _model(randomise=False, use_bias=True), _model(randomise=False)
    d, layers_ = D, 2
    per_block_bias = 3 * d + d + 4 * d + d + 2 * d  # qkv, proj, MLP in, MLP out, two norms' beta
    assert gpt.count_parameters(with_bias) - gpt.count_parameters(without) == layers_ * per_block_bias + d


def test_gpt_round_trips_through_keras_file(tmp_path):
    model = _model(dropout=0.1)
    path = tmp_path / "gpt.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, gpt.GPT) and loaded.dropout == 0.1 and loaded.context == CONTEXT
    ids = _ids((2, CONTEXT), seed=8)
    np.testing.assert_allclose(_np(model(ids)), _np(loaded(ids)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(d_model=10, num_heads=4), ValueError, "divisible"),
    (dict(dropout=-0.1), ValueError, "dropout"),
    (dict(dropout=1.0), ValueError, "dropout"),
    (dict(tie_weights=1), TypeError, "tie_weights"),
    (dict(use_bias=None), TypeError, "use_bias"),
    (dict(fused="yes"), TypeError, "fused"),
    (dict(vocab_size=0), ValueError, "vocab_size"),
    (dict(context=8.0), TypeError, "context"),
    (dict(num_layers=0), ValueError, "num_layers"),
    (dict(num_heads=0), ValueError, "num_heads"),
])
def test_gpt_bad_arguments(kwargs, error, word):
    args = dict(vocab_size=VOCAB, context=CONTEXT, d_model=D, num_layers=1, num_heads=HEADS)
    args.update(kwargs)
    with pytest.raises(error, match=word):
        gpt.GPT(**args)


# ---------------------------------------------------------------- random windows
def test_random_windows_are_shifted_windows_of_the_stream():
    stream = np.random.default_rng(9).permutation(200) + 3  # unique values: a value tells its position
    where = np.empty(stream.max() + 1, dtype=int)
    where[stream] = np.arange(len(stream))
    x, y = gpt.random_windows(stream, 500, 10, seed=1)
    assert x.shape == y.shape == (500, 10) and x.dtype == np.int32 and y.dtype == np.int32
    px, py = where[x], where[y]
    np.testing.assert_array_equal(np.diff(px, axis=1), 1)  # each window is contiguous
    np.testing.assert_array_equal(py, px + 1)  # y is x one step later in the stream
    assert px.min() >= 0 and py.max() <= len(stream) - 1
    starts = set(px[:, 0])
    assert max(starts) <= len(stream) - 11 and len(starts) > 150  # spread over the possible starts
    again = gpt.random_windows(stream, 500, 10, seed=1)
    np.testing.assert_array_equal(x, again[0])
    np.testing.assert_array_equal(y, again[1])
    assert not np.array_equal(x, gpt.random_windows(stream, 500, 10, seed=2)[0])


def test_random_windows_reach_the_last_token():
    stream = np.arange(12)
    x, y = gpt.random_windows(stream, 300, 10, seed=0)
    assert set(x[:, 0]) == {0, 1}  # the only two starts that fit
    assert y.max() == 11


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(ids=np.arange(10)), ValueError, "ids"),  # not longer than the context
    (dict(ids=np.arange(20).reshape(2, 10)), ValueError, "ids"),
    (dict(ids=np.arange(20) * 1.0), ValueError, "ids"),
    (dict(n=0), ValueError, "n"),
    (dict(n=2.0), TypeError, "n"),
    (dict(context=0), ValueError, "context"),
])
def test_random_windows_bad_arguments(kwargs, error, word):
    args = dict(ids=np.arange(50), n=4, context=10)
    args.update(kwargs)
    with pytest.raises(error, match=word):
        gpt.random_windows(**args)


# ---------------------------------------------------------------- validation loss
def test_validation_loss_equals_brute_force_nll_over_windows():
    model = _model()
    stream = _ids(3 * CONTEXT + 5, seed=10)  # 3 full windows and a shorter last one of 4 predictions
    nll = []
    for start in range(0, len(stream) - 1, CONTEXT):
        x = stream[start:start + CONTEXT][:len(stream) - 1 - start]
        targets = stream[start + 1:start + 1 + len(x)]
        log_p = _log_softmax(_np(model(x[None]))[0])
        nll += [-log_p[t, targets[t]] for t in range(len(x))]
    assert len(nll) == len(stream) - 1  # every token but the first, once
    expected = float(np.mean(nll))
    assert gpt.validation_loss(model, stream) == pytest.approx(expected, rel=1e-5)
    assert gpt.validation_loss(model, stream, batch_size=1) == pytest.approx(expected, rel=1e-5)
    exact = _ids(2 * CONTEXT + 1, seed=11)  # no short window at all
    log_p = _log_softmax(_np(model(exact[:-1].reshape(2, CONTEXT))))
    targets = exact[1:].reshape(2, CONTEXT)
    expected = -np.take_along_axis(log_p, targets[..., None], axis=-1).mean()
    assert gpt.validation_loss(model, exact) == pytest.approx(expected, rel=1e-5)


def test_validation_loss_of_uniform_logits_is_log_vocab():
    model = _model()
    model.token_embedding.embeddings.assign(np.zeros((VOCAB, D), np.float32))  # tied: every logit is 0
    stream = _ids(29, seed=12)
    np.testing.assert_allclose(_np(model(stream[None, :CONTEXT])), 0.0, atol=1e-7)
    assert gpt.validation_loss(model, stream) == pytest.approx(math.log(VOCAB), rel=1e-6)


def test_validation_loss_bad_arguments():
    model = _model(randomise=False)
    with pytest.raises(ValueError, match="ids"):
        gpt.validation_loss(model, np.array([1, 2, VOCAB]))
    with pytest.raises(ValueError, match="ids"):
        gpt.validation_loss(model, np.array([3]))
    with pytest.raises(ValueError, match="batch_size"):
        gpt.validation_loss(model, np.array([1, 2, 3]), batch_size=0)


# ---------------------------------------------------------------- the optimiser
def test_schedule_warms_up_linearly_then_decays_to_min_lr():
    steps, warmup, peak, low = 1000, 100, 1e-3, 1e-4
    schedule = gpt.make_optimizer(steps, peak, low, warmup)._learning_rate
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == pytest.approx(0.0, abs=1e-12)
    assert rate(50) == pytest.approx(peak / 2, rel=1e-5)
    assert rate(warmup) == pytest.approx(peak, rel=1e-6)
    assert rate(warmup + (steps - warmup) // 2) == pytest.approx((peak + low) / 2, rel=1e-5)
    assert rate(steps - 1) == pytest.approx(low, rel=1e-3)
    assert rate(steps) == pytest.approx(low, rel=1e-6)
    rates = np.array([rate(s) for s in range(0, steps + 1, 25)])
    assert np.all(np.diff(rates[:5]) > 0) and np.all(np.diff(rates[4:]) < 0)


def test_optimizer_is_adamw_with_nanogpt_settings():
    optimizer = gpt.make_optimizer(100, warmup=10)
    assert isinstance(optimizer, keras.optimizers.AdamW)
    assert optimizer.beta_1 == 0.9 and optimizer.beta_2 == 0.99
    assert optimizer.weight_decay == pytest.approx(0.1) and optimizer.clipnorm == 1.0


def test_weight_decay_skips_norms_and_shrinks_kernels_and_embeddings():
    model = _model(use_bias=True)
    peak, decay = 0.5, 0.1
    optimizer = gpt.make_optimizer(100, peak_lr=peak, min_lr=0.0, warmup=10, weight_decay=decay)
    variables = model.trainable_variables
    optimizer.build(variables)
    decayed = {v.path: optimizer._use_weight_decay(v) for v in variables}
    for path, use in decayed.items():
        assert use == (path.endswith("kernel") or path.endswith("embeddings")), path
    before = [_np(v).copy() for v in variables]
    optimizer.iterations.assign(10)  # the peak of the schedule
    optimizer.apply_gradients([(np.zeros(v.shape, np.float32), v) for v in variables])
    for v, old in zip(variables, before):
        factor = 1 - peak * decay if decayed[v.path] else 1.0  # zero gradients: Adam moves nothing
        np.testing.assert_allclose(_np(v), old * factor, rtol=1e-5, atol=1e-7, err_msg=v.path)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(steps=0), ValueError, "steps"),
    (dict(steps=100, warmup=100), ValueError, "warmup"),
    (dict(steps=100, warmup=0), ValueError, "warmup"),
    (dict(steps=100.0), TypeError, "steps"),
    (dict(peak_lr=0.0), ValueError, "peak_lr"),
    (dict(peak_lr=2.0), ValueError, "peak_lr"),
    (dict(min_lr=1e-2), ValueError, "min_lr"),  # above peak_lr
    (dict(min_lr=-1e-4), ValueError, "min_lr"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(beta_2=1.0), ValueError, "beta_2"),
])
def test_make_optimizer_bad_arguments(kwargs, error, word):
    args = dict(steps=1000, warmup=10)
    args.update(kwargs)
    with pytest.raises(error, match=word):
        gpt.make_optimizer(**args)


# ---------------------------------------------------------------- training
def test_train_gpt_learns_a_repetitive_stream():
    vocab, iterations, batch, context = 3, 60, 8, 8
    train, val = np.tile([0, 1, 2], 100), np.tile([1, 2, 0], 20)
    model, log = gpt.train_gpt(train, val, vocab, iterations=iterations, batch_size=batch, context=context,
                               d_model=16, num_layers=1, num_heads=2, peak_lr=1e-2, min_lr=1e-3, warmup=10,
                               eval_every=20, jit_compile=JIT_ON_JAX, steps_per_execution=1, verbose=False)
    assert isinstance(model, gpt.GPT) and model.context == context and model.vocab_size == vocab
    assert log["val_loss"] < 0.3 * math.log(vocab)
    assert log["val_loss"] == pytest.approx(gpt.validation_loss(model, val), rel=1e-6)
    assert log["seconds"] > 0
    assert log["tokens"] == iterations * batch * context
    assert log["parameters"] == gpt.count_parameters(model)
    assert [entry[0] for entry in log["curve"]] == [20, 40, 60]
    assert log["curve"][-1][2] == log["val_loss"]
    assert log["curve"][0][2] > log["curve"][-1][2]  # it improved along the way
    assert all(np.isfinite(entry[1]) for entry in log["curve"])


def test_train_gpt_curve_with_a_partial_last_chunk():
    """Also: several steps per execution, which Keras refuses on PyTorch; train_gpt runs one step there."""
    _, log = gpt.train_gpt(np.tile([0, 1, 2], 30), np.tile([0, 1, 2], 5), 3, iterations=5, batch_size=2,
                           context=4, d_model=8, num_layers=1, num_heads=2, warmup=1, eval_every=2,
                           jit_compile=JIT_ON_JAX, steps_per_execution=2, verbose=False)
    assert [entry[0] for entry in log["curve"]] == [2, 4, 5]


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(train_ids=np.array([0, 1, 3, 1, 2] * 10)), ValueError, "train_ids"),
    (dict(val_ids=np.array([0, 5, 1])), ValueError, "val_ids"),
    (dict(vocab_size=0), ValueError, "vocab_size"),
    (dict(iterations=0), ValueError, "iterations"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(eval_every=0), ValueError, "eval_every"),
    (dict(steps_per_execution=0), ValueError, "steps_per_execution"),
    (dict(jit_compile="no"), TypeError, "jit_compile"),
    (dict(jit_compile=1), TypeError, 'jit_compile must be True, False or "auto"'),
])
def test_train_gpt_bad_arguments(kwargs, error, word):
    args = dict(train_ids=np.tile([0, 1, 2], 20), val_ids=np.tile([0, 1, 2], 5), vocab_size=3, iterations=5,
                batch_size=2, context=4, d_model=8, num_layers=1, num_heads=2, warmup=1, verbose=False)
    args.update(kwargs)
    with pytest.raises(error, match=word):
        gpt.train_gpt(**args)


@pytest.mark.parametrize("jit_compile", [False, "auto"])  # True: every notebook run (on PyTorch, a slow torch.compile)
def test_train_gpt_passes_jit_compile_to_keras(jit_compile, keras_auto_jit):
    model, _ = gpt.train_gpt(np.tile([0, 1, 2], 20), np.tile([0, 1, 2], 5), 3, iterations=2, batch_size=2, context=4,
                             d_model=8, num_layers=1, num_heads=2, warmup=1, jit_compile=jit_compile,
                             steps_per_execution=1, verbose=False)
    assert model.jit_compile is (keras_auto_jit if jit_compile == "auto" else jit_compile)


# ---------------------------------------------------------------- step functions and generation
@pytest.mark.parametrize("kwargs", [{}, {"use_bias": True}, {"tie_weights": False}, {"fused": False}])
def test_cached_and_uncached_steps_agree_within_the_context(kwargs):
    model = _model(**kwargs)
    prompt = _ids(3, seed=13)
    cached, cached_state = gpt.step_fn_for(model, prompt, use_cache=True)
    uncached, uncached_state = gpt.step_fn_for(model, prompt, use_cache=False)
    rng = np.random.default_rng(14)
    token, text = prompt[-1], list(prompt)
    for _ in range(CONTEXT - len(prompt) + 1):  # positions len(prompt) - 1 .. CONTEXT - 1
        log_p, cached_state = cached(np.array([token]), cached_state)
        log_q, uncached_state = uncached(np.array([token]), uncached_state)
        assert log_p.shape == log_q.shape == (1, VOCAB)
        np.testing.assert_allclose(np.exp(log_p).sum(), 1.0, rtol=1e-6)
        np.testing.assert_allclose(log_p, log_q, rtol=0, atol=1e-5)
        expected = _log_softmax(_np(model(np.array([text], np.int32)))[:, -1])
        np.testing.assert_allclose(log_q, expected, rtol=0, atol=1e-5)
        token = int(rng.integers(VOCAB))
        text.append(token)
    assert cached_state["keys"][0].shape == (1, HEADS, CONTEXT, D // HEADS)
    with pytest.raises(ValueError, match="cache"):
        cached(np.array([token]), cached_state)


def test_cached_step_with_a_one_token_prompt_and_a_full_context_prompt():
    model = _model()
    step, state = gpt.step_fn_for(model, [5], use_cache=True)
    log_p, _ = step(np.array([5]), state)
    np.testing.assert_allclose(log_p, _log_softmax(_np(model(np.array([[5]])))[:, -1]), atol=1e-5)
    prompt = _ids(CONTEXT, seed=15)
    step, state = gpt.step_fn_for(model, prompt, use_cache=True)
    log_p, state = step(prompt[-1:], state)
    np.testing.assert_allclose(log_p, _log_softmax(_np(model(prompt[None]))[:, -1]), atol=1e-5)
    with pytest.raises(ValueError, match="cache"):
        step(np.array([1]), state)


@pytest.mark.float64
def test_cached_step_of_a_float64_model_computes_in_float64():
    """The cache check of notebook 09 runs a float64 copy: the cached path must not round it to float32."""
    model = _model()
    keras.config.set_dtype_policy("float64")
    try:
        double = gpt.GPT.from_config({k: v for k, v in model.get_config().items() if k != "dtype"})
        double(np.zeros((1, CONTEXT), np.int32))
    finally:
        keras.config.set_dtype_policy("float32")
    double.set_weights(model.get_weights())
    prompt = _ids(3, seed=21)
    cached, cached_state = gpt.step_fn_for(double, prompt, use_cache=True)
    uncached, uncached_state = gpt.step_fn_for(double, prompt, use_cache=False)
    token = prompt[-1]
    for _ in range(CONTEXT - len(prompt) + 1):
        log_p, cached_state = cached(np.array([token]), cached_state)
        log_q, uncached_state = uncached(np.array([token]), uncached_state)
        assert cached_state["keys"][0].dtype == np.float64
        # float32 rounding gives about 2e-6 here, the float64 path about 3e-8 (some Keras op keeps less than float64)
        np.testing.assert_allclose(log_p, log_q, rtol=0, atol=2e-7)
        token = int(np.argmax(log_q[0]))


def test_uncached_step_slides_the_window_past_the_context():
    model = _model()
    prompt = _ids(CONTEXT + 3, seed=16)  # already longer than the context
    with pytest.raises(ValueError, match="prompt_ids"):
        gpt.step_fn_for(model, prompt, use_cache=True)
    step, state = gpt.step_fn_for(model, prompt, use_cache=False)
    text, token = list(prompt), int(prompt[-1])
    for new in (4, 7, 1):
        log_p, state = step(np.array([token]), state)
        expected = _log_softmax(_np(model(np.array([text[-CONTEXT:]], np.int32)))[:, -1])
        np.testing.assert_allclose(log_p, expected, rtol=0, atol=1e-5)
        token = new
        text.append(new)


def test_step_functions_follow_the_decoding_protocol_for_several_hypotheses():
    model = _model()
    step, state = gpt.step_fn_for(model, _ids(3, seed=17), use_cache=True)
    results = decoding.beam_search(step, state, 2, eos_id=0, beam_width=3, max_len=4)
    assert 1 <= len(results) <= 3
    ustep, ustate = gpt.step_fn_for(model, _ids(3, seed=17), use_cache=False)
    uresults = decoding.beam_search(ustep, ustate, 2, eos_id=0, beam_width=3, max_len=4)
    assert [tokens for tokens, _ in results] == [tokens for tokens, _ in uresults]
    np.testing.assert_allclose([s for _, s in results], [s for _, s in uresults], atol=1e-4)


def _greedy(model, prompt, n):
    text = list(prompt)
    for _ in range(n):
        text.append(int(np.argmax(_np(model(np.array([text[-model.context:]], np.int32)))[0, -1])))
    return text


@pytest.mark.parametrize("use_cache", [False, True])
def test_generate(use_cache):
    model = _model()
    prompt = _ids(3, seed=18)
    n = CONTEXT - len(prompt) + 1 if use_cache else 12  # uncached: past the context
    out = gpt.generate(model, prompt, n, seed=3, use_cache=use_cache)
    assert len(out) == len(prompt) + n
    np.testing.assert_array_equal(out[:len(prompt)], prompt)
    assert out.min() >= 0 and out.max() < VOCAB
    np.testing.assert_array_equal(out, gpt.generate(model, prompt, n, seed=3, use_cache=use_cache))
    others = [gpt.generate(model, prompt, n, seed=s, use_cache=use_cache) for s in (4, 5)]
    assert any(not np.array_equal(out, other) for other in others)
    np.testing.assert_array_equal(gpt.generate(model, prompt, n, top_k=1, use_cache=use_cache),
                                  _greedy(model, prompt, n))


def test_generate_past_the_context_with_the_cache_raises():
    model = _model()
    with pytest.raises(ValueError, match="cache"):
        gpt.generate(model, _ids(3, seed=19), CONTEXT, use_cache=True)
    with pytest.raises(ValueError, match="max_new_tokens"):
        gpt.generate(model, _ids(3, seed=19), 0)


def test_step_fn_for_bad_arguments():
    model = _model(randomise=False)
    with pytest.raises(TypeError, match="model"):
        gpt.step_fn_for(keras.Sequential([keras.layers.Dense(3)]), [1, 2])
    with pytest.raises(ValueError, match="prompt_ids"):
        gpt.step_fn_for(model, [1, VOCAB])
    with pytest.raises(ValueError, match="prompt_ids"):
        gpt.step_fn_for(model, [])
    with pytest.raises(ValueError, match="prompt_ids"):
        gpt.step_fn_for(model, [[1, 2]])
    with pytest.raises(TypeError, match="use_cache"):
        gpt.step_fn_for(model, [1, 2], use_cache="yes")
