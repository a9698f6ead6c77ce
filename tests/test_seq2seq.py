"""nnutils.seq2seq: attention against Keras's AdditiveAttention, masking, and the NumPy step function."""

import keras
import numpy as np
import pytest

from nnutils import decoding, seq2seq


def random_batch(seed=0, batch=3, t_q=4, t_k=5, d=6):
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(batch, t_q, d)).astype("float32")
    k = rng.normal(size=(batch, t_k, d)).astype("float32")
    v = rng.normal(size=(batch, t_k, 2 * d)).astype("float32")
    mask = np.ones((batch, t_k), bool)
    mask[0, 3:] = False
    mask[2, 1:] = False
    return q, k, v, mask


def test_additive_attention_equals_keras_builtin_on_projected_inputs():
    q, k, v, mask = random_batch()
    ours = seq2seq.AdditiveAttention(8)
    context, weights = ours(q, k, v, key_mask=mask)
    builtin = keras.layers.AdditiveAttention(use_scale=True)
    pq, pk = ours.query_dense(q), ours.key_dense(k)  # Keras's layer expects projected queries and keys
    builtin([pq, v, pk], mask=[None, mask])
    builtin.scale.assign(keras.ops.convert_to_numpy(ours.score_dense.kernel)[:, 0])
    ref_context, ref_weights = builtin([pq, v, pk], mask=[None, mask], return_attention_scores=True)
    np.testing.assert_allclose(*map(keras.ops.convert_to_numpy, (context, ref_context)), atol=1e-5)
    np.testing.assert_allclose(*map(keras.ops.convert_to_numpy, (weights, ref_weights)), atol=1e-6)


def test_attention_weights_are_a_distribution_over_real_keys():
    q, k, v, mask = random_batch(1)
    context, weights = seq2seq.AdditiveAttention(8)(q, k, key_mask=mask)
    weights = keras.ops.convert_to_numpy(weights)
    assert context.shape == (3, 4, 6) and weights.shape == (3, 4, 5)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, atol=1e-6)
    assert np.all(weights[~np.broadcast_to(mask[:, None, :], weights.shape)] < 1e-8)
    np.testing.assert_allclose(weights[2, :, 0], 1.0, atol=1e-6)  # a single real key gets all the weight


def small_model(attention, seed=0):
    keras.utils.set_random_seed(seed)
    return seq2seq.build_seq2seq(11, 13, embed_dim=8, units=12, attention=attention)


def padded_example(seed=0):
    rng = np.random.default_rng(seed)
    src = rng.integers(1, 11, (2, 6)).astype("int32")
    src[1, 4:] = 0
    tgt_in = rng.integers(1, 13, (2, 5)).astype("int32")
    return src, tgt_in


@pytest.mark.parametrize("attention", [False, True])
def test_extra_source_padding_changes_nothing(attention):
    model = small_model(attention)
    src, tgt_in = padded_example()
    logits = model.predict([src, tgt_in], verbose=0)
    more_pads = np.concatenate([src, np.zeros((2, 3), "int32")], axis=1)
    np.testing.assert_allclose(model.predict([more_pads, tgt_in], verbose=0), logits, atol=1e-5)
    assert logits.shape == (2, 5, 13)


def test_only_the_attention_model_has_attention_and_it_round_trips(tmp_path):
    plain, attn = small_model(False), small_model(True)
    assert "attention" not in {layer.name for layer in plain.layers}
    assert plain.count_params() < attn.count_params()
    attn.compile(optimizer="adam", loss=seq2seq.masked_loss, metrics=[seq2seq.masked_accuracy])
    path = tmp_path / "attention.keras"
    attn.save(path)
    reloaded = keras.saving.load_model(path)
    src, tgt_in = padded_example()
    np.testing.assert_allclose(reloaded.predict([src, tgt_in], verbose=0), attn.predict([src, tgt_in], verbose=0),
                               atol=1e-6)


def test_masked_loss_and_accuracy_ignore_padding():
    rng = np.random.default_rng(0)
    y = np.array([[3, 4, 0, 0], [5, 0, 0, 0]], "int32")
    logits = rng.normal(size=(2, 4, 7)).astype("float32")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    real = y != 0
    expected = -np.mean([log_p[i, j, y[i, j]] for i, j in zip(*np.nonzero(real))])
    assert float(seq2seq.masked_loss(y, logits)) == pytest.approx(expected, rel=1e-5)
    changed = logits.copy()
    changed[~real] = rng.normal(size=changed[~real].shape) * 10  # padded positions may hold anything
    assert float(seq2seq.masked_loss(y, changed)) == pytest.approx(expected, rel=1e-5)
    logits[0, 0, 3], logits[0, 1, 4], logits[1, 0, 5] = 50.0, 50.0, -50.0
    assert float(seq2seq.masked_accuracy(y, logits)) == pytest.approx(2 / 3)


@pytest.mark.parametrize("attention", [False, True])
def test_numpy_step_function_reproduces_teacher_forcing(attention):
    model = small_model(attention, seed=1)
    src, tgt_in = padded_example(1)
    log_probs = keras.ops.convert_to_numpy(keras.ops.log_softmax(model.predict([src, tgt_in], verbose=0), axis=-1))
    enc_outputs, enc_states = seq2seq.encode(model, src)
    for i in range(2):
        step_fn, state = seq2seq.step_fn_for(model, enc_outputs[i], enc_states[i], src[i])
        for t in range(tgt_in.shape[1]):
            step_log_probs, state = step_fn(tgt_in[i, t:t + 1], state)
            np.testing.assert_allclose(step_log_probs[0], log_probs[i, t], atol=1e-4)


def test_encode_in_batches_equals_one_batch_and_the_keras_encoder():
    model = small_model(True, seed=3)
    src = np.random.default_rng(0).integers(1, 11, (5, 4)).astype("int32")
    src[1, 2:] = 0
    outputs, states = seq2seq.encode(model, src)
    split_outputs, split_states = seq2seq.encode(model, src, batch_size=2)
    np.testing.assert_allclose(split_outputs, outputs, atol=1e-6)
    np.testing.assert_allclose(split_states, states, atol=1e-6)
    encoder = keras.Model(model.get_layer("src_ids").output, model.get_layer("encoder").output)
    ref_outputs, ref_states = encoder.predict(src, verbose=0)
    assert outputs.shape == (5, 4, ref_outputs.shape[-1]) and isinstance(outputs, np.ndarray)
    np.testing.assert_allclose(outputs, ref_outputs, atol=1e-5)
    np.testing.assert_allclose(states, ref_states, atol=1e-5)


def test_step_function_drives_beam_search():
    model = small_model(True, seed=2)
    src, _ = padded_example(2)
    enc_outputs, enc_states = seq2seq.encode(model, src[:1])
    step_fn, state = seq2seq.step_fn_for(model, enc_outputs[0], enc_states[0], src[0])
    greedy = decoding.greedy_decode(step_fn, state, bos_id=3, eos_id=2, max_len=6)
    [(tokens, score)] = decoding.beam_search(step_fn, state, bos_id=3, eos_id=2, beam_width=1, max_len=6)
    assert (tokens, score) == greedy
    beams = decoding.beam_search(step_fn, state, bos_id=3, eos_id=2, beam_width=4, max_len=6)
    assert len(beams) >= 1 and all(0 <= t < 13 for tokens, _ in beams for t in tokens)


@pytest.mark.parametrize("call, error, word", [
    (lambda: seq2seq.AdditiveAttention(0), ValueError, "units"),
    (lambda: seq2seq.build_seq2seq(0, 5), ValueError, "src_vocab_size"),
    (lambda: seq2seq.build_seq2seq(5, 5, units=2.5), TypeError, "units"),
    (lambda: seq2seq.build_seq2seq(5, 5, attention="yes"), TypeError, "attention"),
    (lambda: seq2seq.encode("model", np.zeros((1, 3), int)), TypeError, "model"),
    (lambda: seq2seq.encode(small_model(False), np.zeros(3, int)), ValueError, "src_ids"),
    (lambda: seq2seq.encode(small_model(False), np.zeros((0, 3), int)), ValueError, "src_ids"),
    (lambda: seq2seq.encode(small_model(False), np.zeros((2, 3))), ValueError, "src_ids"),
    (lambda: seq2seq.encode(small_model(False), np.zeros((2, 3), int), batch_size=0), ValueError, "batch_size"),
    (lambda: seq2seq.step_fn_for(small_model(False), np.zeros((4, 12)), np.zeros(5), np.ones(4, int)),
     ValueError, "enc_state"),
])
def test_bad_input_names_the_argument(call, error, word):
    with pytest.raises(error, match=word):
        call()


@pytest.mark.parametrize("scaled", [False, True])
def test_dot_product_scores_give_the_weights_and_outputs_of_keras_attention(scaled):
    rng = np.random.default_rng(4)
    q, k, v = (rng.normal(size=(2, t, 6)).astype("float32") for t in (3, 5, 5))
    scores = seq2seq.dot_product_scores(q, k, scaled=scaled)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    builtin = keras.layers.Attention(use_scale=False, score_mode="dot")
    out, ref_weights = builtin([q / np.sqrt(6) if scaled else q, v, k], return_attention_scores=True)
    np.testing.assert_allclose(weights, keras.ops.convert_to_numpy(ref_weights), atol=1e-6)
    np.testing.assert_allclose(weights @ v, keras.ops.convert_to_numpy(out), atol=1e-5)
    if scaled:  # the Transformer's fused op applies 1/sqrt(d) itself
        fused = keras.ops.dot_product_attention(q[:, :, None], k[:, :, None], v[:, :, None])[:, :, 0]
        np.testing.assert_allclose(weights @ v, keras.ops.convert_to_numpy(fused), atol=1e-5)
    assert not np.allclose(seq2seq.dot_product_scores(q, k, scaled=not scaled), scores)


@pytest.mark.parametrize("args, error, word", [
    ((np.zeros((2, 3, 4)), np.zeros((2, 5, 3))), ValueError, "same d"),
    ((np.zeros(4), np.zeros(4)), ValueError, "query"),
    ((np.zeros((3, 4)), np.zeros((5, 4)), 1), TypeError, "scaled"),
])
def test_dot_product_scores_bad_input(args, error, word):
    with pytest.raises(error, match=word):
        seq2seq.dot_product_scores(*args)
