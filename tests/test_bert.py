"""nnutils.bert (notebook 09): the embedding and encoder (post-LN and pre-LN), the masked-LM head tied to the token
embedding, the classifier, pretraining (loss, checkpoints, exact resumption), held-out accuracy, checkpoint files
and fetching. The text helpers (masking, packing, batches, WordPiece) are tested in test_bert_text.py."""

import hashlib
import json
import math
from pathlib import Path

import keras
import numpy as np
import pytest

from nnutils import bert, bert_text, data
from nnutils.bert_text import CLS_ID, MASK_ID, PAD_ID, SEP_ID

# The training tests compile their step on JAX, where jit_compile=False runs it op by op (slow);
# TensorFlow's graph without XLA is quick to build and fast enough for these tiny models.
JIT_ON_JAX = keras.backend.backend() == "jax"

REPO = Path(__file__).resolve().parent.parent


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _layer_norm(layer, z):
    mean, var = z.mean(-1, keepdims=True), z.var(-1, keepdims=True)
    return _np(layer.gamma) * (z - mean) / np.sqrt(var + layer.epsilon) + _np(layer.beta)


def _gelu(z):
    return 0.5 * z * (1.0 + np.vectorize(math.erf)(z / math.sqrt(2.0)))


# ---------------------------------------------------------------- the encoder
def _randomise(model, seed=0):
    rng = np.random.default_rng(seed)
    model.set_weights([(1.0 if "gamma" in w.path else 0.0) + 0.2 * rng.normal(size=w.shape).astype("float32")
                       for w in model.weights])


def test_bert_embedding_is_token_plus_segment_plus_position_then_layer_norm():
    layer = bert.BertEmbedding(11, 8, 16, dropout=0.3)
    tokens = np.random.default_rng(0).integers(0, 11, (2, 6)).astype(np.int32)
    segments = np.array([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 1, 0]], np.int32)
    layer(tokens, segments)
    _randomise(layer)
    out = _np(layer(tokens, segments, training=False))
    x = (_np(layer.token.embeddings)[tokens] + _np(layer.segment.embeddings)[segments]
         + _np(layer.position.embeddings)[:6][None])
    expected = (_np(layer.norm.gamma) * (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-12)
                + _np(layer.norm.beta))
    assert out.shape == (2, 6, 16)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)
    assert not np.allclose(_np(layer(tokens, segments, training=True)), out)  # dropout in training only


def _encoder(**kwargs):
    keras.utils.set_random_seed(0)
    args = dict(vocab_size=11, max_len=16, d_model=16, num_layers=2, num_heads=2, d_ff=32, dropout=0.1)
    args.update(kwargs)
    return bert.build_bert_encoder(**args)


def test_encoder_padding_changes_nothing_at_real_positions():
    encoder = _encoder()
    _randomise(encoder)
    short = {"token_ids": np.array([[CLS_ID, 5, 6, 7, SEP_ID]]), "segment_ids": np.array([[0, 0, 0, 0, 0]])}
    padded = {"token_ids": np.array([[CLS_ID, 5, 6, 7, SEP_ID, 0, 0, 0], [CLS_ID, 8, SEP_ID, 9, 10, SEP_ID, 0, 0]]),
              "segment_ids": np.array([[0] * 8, [0, 0, 0, 1, 1, 1, 0, 0]])}
    a, b = encoder(short), encoder(padded)
    assert _np(b["sequence"]).shape == (2, 8, 16) and _np(b["pooled"]).shape == (2, 16)
    np.testing.assert_allclose(_np(a["sequence"])[0], _np(b["sequence"])[0, :5], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(a["pooled"])[0], _np(b["pooled"])[0], rtol=1e-4, atol=1e-5)
    alone = encoder({"token_ids": padded["token_ids"][1:, :6], "segment_ids": padded["segment_ids"][1:, :6]})
    np.testing.assert_allclose(_np(alone["pooled"])[0], _np(b["pooled"])[1], rtol=1e-4, atol=1e-5)
    pooled = _np(b["sequence"])[:, 0] @ _np(encoder.get_layer("pooler").kernel) + _np(encoder.get_layer("pooler").bias)
    np.testing.assert_allclose(_np(b["pooled"]), np.tanh(pooled), rtol=1e-4, atol=1e-5)
    other_segments = dict(padded, segment_ids=1 - padded["segment_ids"])
    assert not np.allclose(_np(encoder(other_segments)["pooled"]), _np(b["pooled"]), atol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_padding_changes_nothing_with_either_norm(norm_first):
    encoder = _encoder(norm_first=norm_first)
    _randomise(encoder)
    short = {"token_ids": np.array([[CLS_ID, 8, 9, SEP_ID]]), "segment_ids": np.zeros((1, 4), int)}
    padded = {"token_ids": np.array([[CLS_ID, 8, 9, SEP_ID] + [PAD_ID] * 6, [CLS_ID] + [5] * 8 + [SEP_ID]]),
              "segment_ids": np.zeros((2, 10), int)}
    a, b = encoder(short), encoder(padded)
    np.testing.assert_allclose(_np(a["sequence"])[0], _np(b["sequence"])[0, :4], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(_np(a["pooled"])[0], _np(b["pooled"])[0], rtol=1e-4, atol=1e-5)
    assert not np.allclose(_np(b["sequence"])[0, :4], _np(b["sequence"])[1, :4], atol=1e-3)  # rows do differ


def test_pre_ln_encoder_has_pre_ln_blocks_and_a_final_norm():
    encoder = _encoder(norm_first=True, dropout=0.0)
    _randomise(encoder)
    assert all(encoder.get_layer(f"encoder_{i}").norm_first for i in range(2))
    final = encoder.get_layer("final_norm")
    assert isinstance(final, keras.layers.LayerNormalization)
    inputs = {"token_ids": np.array([[CLS_ID, 5, 6, 7, SEP_ID, 0]]), "segment_ids": np.zeros((1, 6), int)}
    last_block = keras.Model(encoder.input, encoder.get_layer("encoder_1").output)
    np.testing.assert_allclose(_np(encoder(inputs)["sequence"]), _layer_norm(final, _np(last_block(inputs))),
                               rtol=1e-4, atol=1e-4)
    post = _encoder(norm_first=False)
    assert not any(layer.name == "final_norm" for layer in post.layers)
    assert not any(post.get_layer(f"encoder_{i}").norm_first for i in range(2))
    assert len(encoder.weights) == len(post.weights) + 2  # the final norm's gamma and beta
    for bad in (1, "yes", None):
        with pytest.raises(TypeError, match="norm_first"):
            _encoder(norm_first=bad)


# ---------------------------------------------------------------- the masked-LM head, tied to the token embedding
VOCAB, D = 13, 16


def _mlm_inputs():
    return {"token_ids": np.array([[CLS_ID, 5, MASK_ID, 7, SEP_ID, 8, 9, SEP_ID],
                                   [CLS_ID, MASK_ID, 6, SEP_ID, 10, MASK_ID, 12, SEP_ID]], np.int32),
            "mask_positions": np.array([[2, 6, 0], [1, 5, 4]], np.int32)}


def _masked_lm(norm_first=True):
    model = bert.MaskedLM(_encoder(vocab_size=VOCAB, d_model=D, dropout=0.0, norm_first=norm_first))
    model(_mlm_inputs())
    _randomise(model)
    return model


def _expected_logits(model, inputs):
    """The head in NumPy: LayerNorm(gelu(h W + b)) E^T + bias at the positions, E the token embedding table."""
    sequence = _np(model.encoder({"token_ids": inputs["token_ids"],
                                  "segment_ids": np.zeros_like(inputs["token_ids"])})["sequence"])
    h = np.take_along_axis(sequence, inputs["mask_positions"][..., None], axis=1)
    h = _layer_norm(model.norm, _gelu(h @ _np(model.transform.kernel) + _np(model.transform.bias)))
    table = _np(model.encoder.get_layer("embedding").token.embeddings)
    return h @ table.T + _np(model.output_bias)


def test_masked_lm_logits_are_the_tied_head_at_the_positions():
    model = _masked_lm()
    inputs = _mlm_inputs()
    logits = _np(model(inputs))
    assert logits.shape == (2, 3, VOCAB)
    np.testing.assert_allclose(logits, _expected_logits(model, inputs), rtol=1e-4, atol=1e-4)
    reversed_positions = dict(inputs, mask_positions=inputs["mask_positions"][:, ::-1])
    np.testing.assert_allclose(_np(model(reversed_positions)), logits[:, ::-1], rtol=1e-4, atol=1e-4)
    # the table is the output layer: new values in it give the NumPy logits of the new table
    table = model.encoder.get_layer("embedding").token.embeddings
    table.assign(np.random.default_rng(5).normal(size=(VOCAB, D)).astype("float32"))
    changed = _np(model(inputs))
    assert not np.allclose(changed, logits, atol=1e-2)
    np.testing.assert_allclose(changed, _expected_logits(model, inputs), rtol=1e-4, atol=1e-4)
    model.output_bias.assign(np.arange(VOCAB, dtype="float32"))
    np.testing.assert_allclose(_np(model(inputs)), _expected_logits(model, inputs), rtol=1e-4, atol=1e-4)


def test_masked_lm_adds_no_output_matrix_of_its_own():
    model = _masked_lm()
    table = model.encoder.get_layer("embedding").token.embeddings
    assert [w.path for w in model.weights if tuple(w.shape) == (VOCAB, D)] == [table.path]
    assert not any(tuple(w.shape) == (D, VOCAB) for w in model.weights)
    assert model.count_params() == model.encoder.count_params() + D * D + D + 2 * D + VOCAB


def test_untied_masked_lm_has_its_own_output_matrix():
    model = bert.MaskedLM(_encoder(vocab_size=VOCAB, d_model=D, dropout=0.0, norm_first=True), tie_weights=False)
    inputs = _mlm_inputs()
    model(inputs)
    _randomise(model)
    assert model.count_params() == model.encoder.count_params() + D * D + D + 2 * D + VOCAB + VOCAB * D
    h = _np(model.encoder({"token_ids": inputs["token_ids"], "segment_ids": np.zeros_like(inputs["token_ids"])})[
        "sequence"])
    h = np.take_along_axis(h, inputs["mask_positions"][..., None], axis=1)
    dense = model.transform
    z = h @ _np(dense.kernel) + _np(dense.bias)
    z = 0.5 * z * (1 + np.vectorize(math.erf)(z / math.sqrt(2)))
    expected = _layer_norm(model.norm, z) @ _np(model.output_matrix).T + _np(model.output_bias)
    np.testing.assert_allclose(_np(model(inputs)), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="tie_weights"):
        bert.MaskedLM(_encoder(), tie_weights="no")


def test_masked_lm_gradients_reach_the_table_from_the_output_side():
    model = _masked_lm()
    inputs = _mlm_inputs()
    table = model.encoder.get_layer("embedding").token.embeddings
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    labels = np.array([[6, 9, 7], [5, 10, 12]])
    unseen = 11  # a token id that is neither an input nor a label: its row only moves through the tied output
    before = _np(table).copy()
    model.train_on_batch(inputs, labels)
    moved = np.abs(_np(table) - before).max(axis=1)
    assert moved[unseen] > 0


# ---------------------------------------------------------------- fine-tuning
def _classifier_inputs():
    short = {"token_ids": np.array([[CLS_ID, 5, 6, 7, SEP_ID], [CLS_ID, 9, 8, 10, SEP_ID]]),
             "segment_ids": np.zeros((2, 5), int)}
    padded = {"token_ids": np.array([[CLS_ID, 5, 6, 7, SEP_ID, 0, 0, 0], [CLS_ID, 9, 8, 10, SEP_ID, 0, 0, 0],
                                     [CLS_ID, 5, SEP_ID, 0, 0, 0, 0, 0]]), "segment_ids": np.zeros((3, 8), int)}
    return short, padded


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_classifier_padding_changes_nothing_and_reads_its_features(pooling):
    encoder = _encoder(norm_first=True)
    classifier = bert.build_classifier(encoder, num_classes=3, dropout=0.5, pooling=pooling)
    _randomise(classifier)
    assert classifier.get_layer(encoder.name) is encoder  # fine-tuning trains the pretrained encoder itself
    short, padded = _classifier_inputs()
    logits = _np(classifier(padded))
    assert logits.shape == (3, 3)
    np.testing.assert_allclose(_np(classifier(short)), logits[:2], rtol=1e-4, atol=1e-4)
    out = encoder(padded)
    if pooling == "cls":
        features = _np(out["pooled"])
    else:
        real = (padded["token_ids"] != PAD_ID)[..., None]
        features = (_np(out["sequence"]) * real).sum(axis=1) / real.sum(axis=1)
    dense = classifier.get_layer("classes")
    np.testing.assert_allclose(logits, features @ _np(dense.kernel) + _np(dense.bias), rtol=1e-4, atol=1e-4)
    assert not np.allclose(_np(classifier(padded, training=True)), logits, atol=1e-4)  # dropout in training


def test_classifier_mean_and_cls_pooling_differ_and_bad_arguments():
    encoder = _encoder()
    _, padded = _classifier_inputs()
    mean, cls = bert.build_classifier(encoder, 2), bert.build_classifier(encoder, 2, pooling="cls")
    mean.get_layer("classes").set_weights(cls.get_layer("classes").get_weights())
    assert not np.allclose(_np(mean(padded)), _np(cls(padded)), atol=1e-4)
    with pytest.raises(ValueError, match="pooling"):
        bert.build_classifier(encoder, 2, pooling="max")
    with pytest.raises(ValueError, match="num_classes"):
        bert.build_classifier(encoder, 0)


# ---------------------------------------------------------------- pretraining
def _synthetic_blocks(max_len=16, n_sentences=1500, seed=0):
    """Packed blocks of a repetitive text: four fixed sentences of ids 5 to 18 in a random order."""
    templates = [[5, 6, 7, 8], [9, 10, 11], [12, 13, 14, 15, 16], [17, 18]]
    order = np.random.default_rng(seed).integers(0, len(templates), n_sentences)
    return bert_text.pack_blocks([templates[i] for i in order], max_len)


def _pretrainer(steps, d_model=32, d_ff=64, peak_lr=1e-2, seed=0):
    keras.utils.set_random_seed(seed)
    encoder = bert.build_bert_encoder(30, max_len=16, d_model=d_model, num_layers=1, num_heads=2, d_ff=d_ff,
                                      dropout=0.0, norm_first=True)
    return bert.make_pretrainer(encoder, steps, peak_lr=peak_lr, jit_compile=JIT_ON_JAX)


def test_pretrain_lowers_the_loss_and_checkpoints_at_the_requested_steps(capsys):
    blocks = _synthetic_blocks()
    assert 300 < len(blocks) < 600
    model = _pretrainer(60)
    calls = []
    log = bert.pretrain(model, blocks, 60, batch_size=16, log_every=10, checkpoints=[20, 60],
                        on_checkpoint=lambda step, seconds: calls.append((step, seconds)))
    assert log["step"] == [10, 20, 30, 40, 50, 60]
    assert len(log["loss"]) == len(log["accuracy"]) == len(log["seconds"]) == 6
    assert np.all(np.diff(log["seconds"]) >= 0) and np.isfinite(log["loss"]).all()
    assert log["loss"][-1] < log["loss"][0] - 0.25, log["loss"]  # ln 30 = 3.40 at the start; ln 14 = 2.64 unigram
    assert [step for step, _ in calls] == [20, 60]
    assert calls[0][1] <= log["seconds"][1] and calls[1][1] <= log["seconds"][-1] + 1e-6
    assert int(_np(model.optimizer.iterations)) == 60
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("step")]
    assert len(printed) == 6 and printed[-1].split()[:2] == ["step", "60"]


def test_pretrain_resumed_at_a_step_continues_exactly():
    blocks = _synthetic_blocks(n_sentences=400)
    whole, halves = _pretrainer(12, d_model=16, d_ff=32), _pretrainer(12, d_model=16, d_ff=32)
    for model in (whole, halves):
        model(bert_text.MLMBatches(blocks, 8, 30, steps=1)[0][0])
    for a, b in zip(whole.get_weights(), halves.get_weights()):
        np.testing.assert_array_equal(a, b)  # the same start
    whole_log = bert.pretrain(whole, blocks, 12, batch_size=8, log_every=6, verbose=False)
    first = bert.pretrain(halves, blocks, 6, batch_size=8, log_every=6, verbose=False)
    second = bert.pretrain(halves, blocks, 12, batch_size=8, start=6, log_every=6, verbose=False)
    assert first["loss"] + second["loss"] == pytest.approx(whole_log["loss"], rel=1e-5)
    assert second["step"] == [12.0]
    for a, b in zip(whole.get_weights(), halves.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("jit_compile", [True, False, "auto"])
def test_make_pretrainer_passes_jit_compile_to_keras(jit_compile, keras_auto_jit):
    model = bert.make_pretrainer(_encoder(vocab_size=30), 20, jit_compile=jit_compile)
    assert model.jit_compile is (keras_auto_jit if jit_compile == "auto" else jit_compile)


@pytest.mark.parametrize("jit_compile", ["yes", 1, None])
def test_make_pretrainer_refuses_a_bad_jit_compile(jit_compile):
    with pytest.raises(TypeError, match='jit_compile must be True, False or "auto"'):
        bert.make_pretrainer(_encoder(vocab_size=30), 20, jit_compile=jit_compile)


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(steps=25), ValueError, "log_every"),  # 25 is no multiple of 10
    (dict(steps=0), ValueError, "steps"),
    (dict(steps=20.0), TypeError, "steps"),
    (dict(start=20), ValueError, "start"),  # nothing left to do
    (dict(start=30), ValueError, "start"),
    (dict(start=-10), ValueError, "start"),
    (dict(log_every=0), ValueError, "log_every"),
    (dict(log_every=15), ValueError, "log_every"),
    (dict(checkpoints=[15]), ValueError, "checkpoints"),
    (dict(checkpoints=[30]), ValueError, "checkpoints"),  # after the last step
    (dict(checkpoints=[0]), ValueError, "checkpoints"),
    (dict(start=10, checkpoints=[10]), ValueError, "checkpoints"),  # the start itself is not a step of this call
])
def test_pretrain_bad_arguments(kwargs, error, word):
    model = bert.make_pretrainer(_encoder(vocab_size=30), 20, jit_compile=False)
    args = {**dict(steps=20, batch_size=4, log_every=10), **kwargs}
    with pytest.raises(error, match=word):
        bert.pretrain(model, _synthetic_blocks(n_sentences=60), verbose=False, **args)
    assert int(_np(model.optimizer.iterations)) == 0  # refused before any training


# ---------------------------------------------------------------- held-out accuracy
class _Stub:
    """A stand-in for a MaskedLM whose logits at every position favour one token, or the right one (oracle)."""

    def __init__(self, vocab_size, token=None, answers=None):
        self.vocab_size, self.token, self.answers = vocab_size, token, answers

    def __call__(self, x, training=False):
        assert training is False
        positions = x["mask_positions"]
        logits = np.zeros(positions.shape + (self.vocab_size,), np.float32)
        favoured = np.full(positions.shape, self.token) if self.answers is None else self.answers[positions]
        np.put_along_axis(logits, favoured[..., None], 1.0, axis=-1)
        return logits


def test_most_frequent_token_ignores_the_special_tokens():
    blocks = np.array([[CLS_ID, 7, 7, MASK_ID, SEP_ID], [CLS_ID, 9, 7, MASK_ID, SEP_ID],
                       [CLS_ID, MASK_ID, MASK_ID, PAD_ID, PAD_ID]])  # 7: 3 times; [CLS] 3, [MASK] 4, [PAD] 2
    assert bert.most_frequent_token(blocks) == 7
    blocks = _synthetic_blocks()
    counts = np.bincount(blocks.ravel(), minlength=30)
    counts[[PAD_ID, CLS_ID, SEP_ID, MASK_ID]] = -1
    assert bert.most_frequent_token(blocks) == int(np.argmax(counts))


def test_mlm_accuracy_of_a_constant_guess_is_the_unigram_baseline():
    blocks = _synthetic_blocks(n_sentences=600)
    token = bert.most_frequent_token(blocks)
    accuracy, unigram = bert.mlm_accuracy(_Stub(30, token), blocks, 30, token, batch_size=32, seed=3)
    # the unigram baseline counted directly over the same masked positions
    batches = bert_text.MLMBatches(blocks, 32, 30, steps=len(blocks) // 32, seed=3)
    hits = total = 0.0
    for i in range(len(batches)):
        _, labels, weights = batches[i]
        hits, total = hits + ((labels == token) * weights).sum(), total + weights.sum()
    assert total >= len(batches) * 32  # every block of the one pass, 1 or 2 positions in each
    assert unigram == pytest.approx(hits / total) and accuracy == pytest.approx(unigram)
    assert 0.03 < unigram < 0.2
    never = bert.mlm_accuracy(_Stub(30, 25), blocks, 30, token, batch_size=32, seed=3)  # 25 is not in the text
    assert never == (0.0, pytest.approx(unigram))
    other = 17 if token < 17 else 5  # a token of another sentence
    assert bert.mlm_accuracy(_Stub(30, other), blocks, 30, other, batch_size=32, seed=3)[0] == pytest.approx(
        (np.isin(np.stack([batches[i][1] for i in range(len(batches))]), [other])
         * np.stack([batches[i][2] for i in range(len(batches))])).sum() / total)


def test_mlm_accuracy_of_an_oracle_is_one():
    row = np.array([CLS_ID] + list(range(5, 19)) + [SEP_ID])
    blocks = np.tile(row, (40, 1))  # every block alike, so the answer at a position is row[position]
    accuracy, unigram = bert.mlm_accuracy(_Stub(30, answers=row), blocks, 30, 5, batch_size=16)
    assert accuracy == 1.0 and 0 < unigram < 0.25
    shifted = _Stub(30, answers=np.roll(row, 1))  # the right token, one position off
    assert bert.mlm_accuracy(shifted, blocks, 30, 5, batch_size=16)[0] == 0.0


def test_heldout_report_by_source_and_all():
    heldout = {"a": _synthetic_blocks(n_sentences=300, seed=1), "b": _synthetic_blocks(n_sentences=700, seed=2)}
    token = bert.most_frequent_token(heldout["b"])
    report = bert.heldout_report(_Stub(30, token), heldout, 30, token)
    assert list(report) == ["a", "b", "all"]
    assert report["all"]["blocks"] == len(heldout["a"]) + len(heldout["b"])
    for name, blocks in (("a", heldout["a"]), ("b", heldout["b"])):
        assert report[name]["blocks"] == len(blocks)
        _, unigram = bert.mlm_accuracy(_Stub(30, token), blocks, 30, token, seed=11)
        assert report[name] == {"mlm_accuracy": round(unigram, 4), "unigram_baseline": round(unigram, 4),
                                "blocks": len(blocks)}


def test_pretraining_blocks_by_source_and_copies():
    pytest.importorskip("tokenizers")
    sources = {"cats": ["the cat sat on the mat", "a cat and a dog", "the cat saw the dog"] * 10,
               "dogs": ["the dog sat on the log", "dogs and cats sat"] * 12}
    tokenizer = bert_text.train_wordpiece([s for texts in sources.values() for s in texts], vocab_size=60,
                                          min_frequency=1)
    blocks, counts = bert.pretraining_blocks(tokenizer, sources, 12, copies={"cats": 3}, seed=4)
    alone = {name: bert_text.pack_blocks([e.ids for e in tokenizer.encode_batch(texts, add_special_tokens=False)],
                                         12) for name, texts in sources.items()}
    assert counts == {"cats": 3 * len(alone["cats"]), "dogs": len(alone["dogs"])}
    assert blocks.shape == (sum(counts.values()), 12) and blocks.dtype == np.int32
    rows = {tuple(r) for r in blocks}
    assert {tuple(r) for r in alone["cats"]} <= rows and {tuple(r) for r in alone["dogs"]} <= rows
    again, _ = bert.pretraining_blocks(tokenizer, sources, 12, copies={"cats": 3}, seed=4)
    np.testing.assert_array_equal(again, blocks)
    first = len(alone["cats"])
    assert not np.array_equal(blocks[:first], alone["cats"])  # shuffled
    with pytest.raises(ValueError, match="copies"):
        bert.pretraining_blocks(tokenizer, sources, 12, copies={"cats": 0})


# ---------------------------------------------------------------- checkpoint files
SIZES = dict(max_len=16, d_model=16, num_layers=1, num_heads=2, d_ff=32, norm_first=True)
TINY_VOCAB = list(bert_text.SPECIAL_TOKENS) + ["the", "cat", "sat", "on", "mat", "##s", "dog", "é"]


def _saved_checkpoint(path):
    keras.utils.set_random_seed(1)
    model = bert.MaskedLM(bert.build_bert_encoder(len(TINY_VOCAB), dropout=0.0, **SIZES))
    model({"token_ids": np.zeros((1, 4), np.int32), "mask_positions": np.zeros((1, 1), np.int32)})
    _randomise(model, seed=2)
    provenance = {"command": "python -m nnutils.bert pretrain --minutes 1", "seed": 0, "steps": 50,
                  "heldout": {"all": {"mlm_accuracy": 0.25}}}
    bert.save_checkpoint(str(path), model, TINY_VOCAB, SIZES, provenance)
    return model, provenance


def _checkpoint_inputs():
    return {"token_ids": np.array([[CLS_ID, 5, MASK_ID, 7, SEP_ID, 9, MASK_ID, SEP_ID]], np.int32),
            "mask_positions": np.array([[2, 6]], np.int32)}


def test_checkpoint_round_trip(tmp_path):
    path = tmp_path / "tiny.npz"
    model, provenance = _saved_checkpoint(path)
    loaded, vocab, loaded_provenance = bert.load_checkpoint(str(path))
    assert vocab == TINY_VOCAB and loaded_provenance == provenance
    assert isinstance(loaded, bert.MaskedLM) and loaded.encoder.get_layer("final_norm") is not None
    assert [tuple(w.shape) for w in loaded.weights] == [tuple(w.shape) for w in model.weights]
    for saved, restored in zip(model.get_weights(), loaded.get_weights()):
        assert restored.dtype == np.float32
        np.testing.assert_array_equal(restored, saved.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(_np(loaded(_checkpoint_inputs())), _np(model(_checkpoint_inputs())),
                               rtol=2e-2, atol=2e-2)
    with np.load(path) as f:
        assert all(f[k].dtype == np.float16 for k in f.files if k.startswith("weight_"))
    assert loaded.encoder.get_layer("embedding").dropout == 0.0
    tuned, _, _ = bert.load_checkpoint(str(path), dropout=0.1)
    assert tuned.encoder.get_layer("embedding").dropout == 0.1
    with pytest.raises(TypeError, match="name_or_path"):
        bert.load_checkpoint(path)


# ---------------------------------------------------------------- fetching shipped checkpoints
@pytest.fixture
def places(tmp_path, monkeypatch):
    """A checkout (its data/ folder) and a Keras cache, both under tmp_path: the repository's data/ is not touched."""
    checkout = tmp_path / "checkout"
    (checkout / "nnutils").mkdir(parents=True)
    monkeypatch.setattr(data, "__file__", str(checkout / "nnutils" / "data.py"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    return checkout / "data", tmp_path / "keras" / "nnutils"


def _files(folder):
    return sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_fetch_checkpoint_unknown_name():
    with pytest.raises(ValueError, match="name") as error:
        data.fetch_checkpoint("no_such_checkpoint")
    assert "no_such_checkpoint" in str(error.value)


def test_fetch_checkpoint_checks_the_sha256(places, monkeypatch):
    checkout, cache = places
    payload = b"a tiny checkpoint\n" * 50
    monkeypatch.setitem(data.CHECKPOINTS, "tiny", ("bert/tiny_test.npz", hashlib.sha256(payload).hexdigest()))
    (cache / "bert").mkdir(parents=True)
    (cache / "bert" / "tiny_test.npz").write_bytes(payload)
    assert data.fetch_checkpoint("tiny") == str(cache / "bert" / "tiny_test.npz")
    (checkout / "bert").mkdir(parents=True)
    (checkout / "bert" / "tiny_test.npz").write_bytes(payload)
    assert data.fetch_checkpoint("tiny") == str(checkout / "bert" / "tiny_test.npz")  # the checkout first
    (checkout / "bert" / "tiny_test.npz").write_bytes(payload + b"tampered")
    with pytest.raises(data.CorruptedDatasetError) as error:
        data.fetch_checkpoint("tiny")
    assert "tiny_test.npz" in str(error.value) and hashlib.sha256(payload).hexdigest() in str(error.value)
    (checkout / "bert" / "tiny_test.npz").unlink()
    monkeypatch.setitem(data.CHECKPOINTS, "tiny", ("bert/tiny_test.npz", "0" * 64))
    with pytest.raises(data.CorruptedDatasetError, match="tiny_test.npz"):
        data.fetch_checkpoint("tiny")
    assert (cache / "bert" / "tiny_test.npz").read_bytes() == payload  # reported, not deleted


def test_fetch_checkpoint_offline_names_the_file_and_the_folders(places, monkeypatch):
    checkout, cache = places
    monkeypatch.setitem(data.CHECKPOINTS, "tiny", ("bert/tiny_test.npz", "1" * 64))
    monkeypatch.setattr(data, "CHECKPOINT_ORIGIN", "http://127.0.0.1:9/")  # connection refused
    with pytest.raises(data.DatasetUnavailableError) as error:
        data.fetch_checkpoint("tiny")
    message = str(error.value)
    assert "tiny_test.npz" in message and str(checkout / "bert") in message and str(cache / "bert") in message
    assert "http://127.0.0.1:9/bert/tiny_test.npz" in message
    assert _files(cache) == [] and _files(checkout) == []


def test_fetch_checkpoint_downloads_verifies_and_caches(places, server, monkeypatch):
    checkout, cache = places
    root, url = server
    payload = b"served checkpoint bytes\n" * 40
    (root / "bert").mkdir()
    (root / "bert" / "tiny_test.npz").write_bytes(payload)
    monkeypatch.setattr(data, "CHECKPOINT_ORIGIN", url)
    monkeypatch.setitem(data.CHECKPOINTS, "tiny", ("bert/tiny_test.npz", hashlib.sha256(payload).hexdigest()))
    assert data.fetch_checkpoint("tiny") == str(cache / "bert" / "tiny_test.npz")
    assert (cache / "bert" / "tiny_test.npz").read_bytes() == payload
    (root / "bert" / "tiny_test.npz").unlink()
    assert data.fetch_checkpoint("tiny") == str(cache / "bert" / "tiny_test.npz")  # from the cache now
    (root / "bert" / "evil.npz").write_bytes(b"tampered")
    monkeypatch.setitem(data.CHECKPOINTS, "evil", ("bert/evil.npz", hashlib.sha256(payload).hexdigest()))
    with pytest.raises(data.DatasetUnavailableError, match="evil.npz"):
        data.fetch_checkpoint("evil")
    assert _files(cache) == [Path("bert/tiny_test.npz")] and _files(checkout) == []


def test_load_checkpoint_by_name_fetches_the_verified_file(places, monkeypatch):
    _, cache = places
    (cache / "bert").mkdir(parents=True)
    model, provenance = _saved_checkpoint(cache / "bert" / "tiny_test.npz")
    sha256 = data.sha256_of(cache / "bert" / "tiny_test.npz")
    monkeypatch.setitem(data.CHECKPOINTS, "tiny_test", ("bert/tiny_test.npz", sha256))
    loaded, vocab, loaded_provenance = bert.load_checkpoint("tiny_test")
    assert vocab == TINY_VOCAB and loaded_provenance == provenance
    np.testing.assert_allclose(_np(loaded(_checkpoint_inputs())), _np(model(_checkpoint_inputs())),
                               rtol=2e-2, atol=2e-2)
    monkeypatch.setitem(data.CHECKPOINTS, "tiny_test", ("bert/tiny_test.npz", "2" * 64))
    with pytest.raises(data.CorruptedDatasetError):
        bert.load_checkpoint("tiny_test")


PROVENANCE_KEYS = {"command", "git_commit", "seed", "steps", "tokens", "seconds", "machine", "heldout"}


def test_every_shipped_checkpoint_is_in_data_with_its_sha256_and_provenance():
    """Passes with no checkpoint registered yet; checks each entry of data.CHECKPOINTS once there are some."""
    for name, (relative, sha256) in sorted(data.CHECKPOINTS.items()):
        path = REPO / "data" / relative
        assert path.is_file(), f"{name}: {path} is missing"
        assert data.sha256_of(path) == sha256, f"{name}: {path} does not have the registered sha256"
        assert data.fetch_checkpoint(name) == str(path)
        if path.suffix == ".json":  # a shipped measurement (tools/bert_recipe.py), not weights
            record = json.loads(path.read_text())
            assert {"command", "git_commit", "machine", "variants"} <= set(record)
            for row in record["variants"].values():
                assert row["heldout"]["all"]["unigram_baseline"] < 1 and row["steps"] * row["batch_size"] > 0
            continue
        provenance = json.loads(path.with_suffix(".json").read_text())
        assert PROVENANCE_KEYS <= set(provenance), f"{name}: missing {PROVENANCE_KEYS - set(provenance)}"
        model, vocab, stored = bert.load_checkpoint(name)
        assert stored == provenance and vocab[:5] == list(bert_text.SPECIAL_TOKENS)
        assert model.encoder.get_layer("embedding").vocab_size == len(vocab)
        assert stored["tokens"] > 0 and stored["steps"] > 0 and 0 < stored["heldout"]["all"]["mlm_accuracy"] < 1
