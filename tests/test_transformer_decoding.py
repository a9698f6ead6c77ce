"""Tests of nnutils.transformer_decoding (notebook 08): encode, cached and uncached NumPy decoder steps."""

import keras
import numpy as np
import pytest

from nnutils import decoding, transformer, transformer_decoding


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    m = transformer.build_transformer(11, 13, d_model=8, num_heads=2, d_ff=16, num_layers=2, max_len=10,
                                      dropout=0.1)
    rng = np.random.default_rng(0)  # non-trivial layer norms and biases, so that every weight matters
    m.set_weights([w + 0.3 * rng.normal(size=w.shape).astype("float32") for w in m.get_weights()])
    return m


SRC = np.array([[4, 5, 6, 2, 0, 0], [7, 8, 9, 10, 5, 2]])


def _teacher_forced_log_probs(model, src, tgt_in):
    logits = keras.ops.convert_to_numpy(model([src, tgt_in], training=False)).astype(np.float64)
    logits -= logits.max(-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(-1, keepdims=True))


def test_encode_equals_the_encoder_part_of_the_model(model):
    memory = transformer_decoding.encode(model, SRC, batch_size=1)
    assert memory.shape == (2, 6, 8) and memory.dtype == np.float32
    encoder = keras.Model(model.get_layer("src_ids").output, model.get_layer("encoder_1").output)
    np.testing.assert_allclose(memory, keras.ops.convert_to_numpy(encoder(SRC)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("use_cache", [True, False])
def test_steps_equal_the_keras_model_under_teacher_forcing(model, use_cache):
    tgt_in = np.array([[3, 7, 8, 9, 12]])
    for row in range(2):
        memory = transformer_decoding.encode(model, SRC[row:row + 1])[0]
        step_fn, state = transformer_decoding.step_fn_for(model, memory, SRC[row], use_cache=use_cache)
        expected = _teacher_forced_log_probs(model, SRC[row:row + 1], tgt_in)[0]
        for t, token in enumerate(tgt_in[0]):
            log_probs, state = step_fn(np.array([token]), state)
            np.testing.assert_allclose(log_probs[0], expected[t], atol=1e-5)


def test_cached_and_uncached_steps_agree_for_several_hypotheses(model):
    memory = transformer_decoding.encode(model, SRC[1:])[0]
    cached, c_state = transformer_decoding.step_fn_for(model, memory, SRC[1], use_cache=True)
    plain, p_state = transformer_decoding.step_fn_for(model, memory, SRC[1], use_cache=False)
    tokens = np.array([3])
    for width in (3, 2, 4):  # hypotheses come and go as a beam would keep them
        lp_c, c_state = cached(tokens, c_state)
        lp_p, p_state = plain(tokens, p_state)
        np.testing.assert_allclose(lp_c, lp_p, atol=1e-5)
        rows = np.arange(width) % len(tokens)
        c_state, p_state = decoding._select(c_state, rows), decoding._select(p_state, rows)
        tokens = np.argsort(-lp_c[rows], axis=1)[np.arange(width), np.arange(width)]
    assert c_state["keys"][0].shape == (4, 2, 3, 4) and p_state["prefix"].shape == (4, 3)


def test_beam_search_gives_the_same_hypotheses_with_and_without_cache(model):
    memory = transformer_decoding.encode(model, SRC[:1])[0]
    results = []
    for use_cache in (True, False):
        step_fn, state = transformer_decoding.step_fn_for(model, memory, SRC[0], use_cache=use_cache)
        results.append(decoding.beam_search(step_fn, state, bos_id=3, eos_id=2, beam_width=3, max_len=8))
    assert [tokens for tokens, _ in results[0]] == [tokens for tokens, _ in results[1]]
    np.testing.assert_allclose([s for _, s in results[0]], [s for _, s in results[1]], atol=1e-5)


def test_step_beyond_max_len_is_a_clear_error(model):
    memory = transformer_decoding.encode(model, SRC[:1])[0]
    step_fn, state = transformer_decoding.step_fn_for(model, memory, SRC[0])
    for _ in range(10):
        _, state = step_fn(np.array([5]), state)
    with pytest.raises(ValueError, match="max_len"):
        step_fn(np.array([5]), state)


def test_bad_inputs(model):
    with pytest.raises(TypeError, match="build_transformer"):
        transformer_decoding.encode(keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)]), SRC)
    with pytest.raises(ValueError, match="src_ids"):
        transformer_decoding.encode(model, SRC[0])
    with pytest.raises(ValueError, match="src_ids"):
        transformer_decoding.encode(model, SRC.astype(float))
    with pytest.raises(ValueError, match="batch_size"):
        transformer_decoding.encode(model, SRC, batch_size=0)
    memory = transformer_decoding.encode(model, SRC[:1])[0]
    with pytest.raises(ValueError, match="memory and src_ids"):
        transformer_decoding.step_fn_for(model, memory, SRC[0, :4])
    with pytest.raises(TypeError, match="use_cache"):
        transformer_decoding.step_fn_for(model, memory, SRC[0], use_cache="yes")
