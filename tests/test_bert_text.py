"""nnutils.bert_text (notebook 09): mask_tokens' choice of positions and its 80/10/10 replacement rule; then
sentence pairs, padding, masked positions, WordPiece, packed blocks and the masked-LM batches."""

import numpy as np
import pytest

from nnutils import bert_text

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIAL = (PAD, CLS, SEP)


def batch(seed, shape=(64, 40), vocab=50):
    """Random ordinary tokens framed as [CLS] ... [SEP] [PAD]..., a few [MASK]s already in them."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(4, vocab, shape)
    lengths = rng.integers(3, shape[1] + 1, shape[0])
    for row, length in zip(ids, lengths):
        row[0], row[length - 1], row[length:] = CLS, SEP, PAD
    ids[rng.random(shape) < 0.03] = MASK
    return ids


def chosen(weights):
    return weights == 1.0


def test_shapes_dtypes_and_labels():
    ids = batch(0)
    original = ids.copy()
    inputs, labels, weights = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, seed=0)
    assert inputs.shape == labels.shape == weights.shape == ids.shape
    assert inputs.dtype == np.int32 and labels.dtype == np.int32 and weights.dtype == np.float32
    np.testing.assert_array_equal(labels, ids)  # every position, chosen or not
    np.testing.assert_array_equal(ids, original)  # ids are not modified in place
    assert set(np.unique(weights)) <= {0.0, 1.0}


def test_special_and_mask_positions_are_never_chosen():
    ids = batch(1)
    for seed in range(5):
        _, _, weights = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, rate=0.9, seed=seed)
        assert not np.any(chosen(weights) & np.isin(ids, SPECIAL + (MASK,)))


def test_exactly_round_half_up_of_rate_times_eligible_per_row():
    rows = [[CLS] + [7] * 10 + [SEP] + [PAD] * 4,        # 10 eligible: 0.25 * 10 = 2.5 -> 3
            [CLS] + [8] * 14 + [SEP],                    # 14: 3.5 -> 4
            [CLS, 9, MASK, 9, SEP] + [PAD] * 11,         # 2 (the MASK is not eligible): 0.5 -> 1
            [CLS, 5, SEP] + [PAD] * 13,                  # 1: 0.25 -> 0, but at least 1
            [CLS, SEP, MASK] + [PAD] * 13,               # 0 eligible: none
            [6] * 16]                                    # 16: 4.0 -> 4
    ids = np.array(rows)
    for seed in range(10):
        _, _, weights = bert_text.mask_tokens(ids, MASK, 10, SPECIAL, rate=0.25, seed=seed)
        assert list(weights.sum(axis=1)) == [3, 4, 1, 1, 0, 4]


def test_count_per_row_for_the_default_rate():
    ids = batch(2)
    eligible = (~np.isin(ids, SPECIAL + (MASK,))).sum(axis=1)
    _, _, weights = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, seed=3)
    expected = np.where(eligible > 0, np.maximum(1, np.floor(0.15 * eligible + 0.5)), 0)
    np.testing.assert_array_equal(weights.sum(axis=1), expected)


def test_the_chosen_positions_are_spread_uniformly():
    ids = np.full((4000, 10), 5)
    _, _, weights = bert_text.mask_tokens(ids, MASK, 10, SPECIAL, rate=0.2, seed=4)
    assert np.all(weights.sum(axis=1) == 2)
    np.testing.assert_allclose(weights.mean(axis=0), 0.2, atol=0.02)  # no position is favoured


def test_80_10_10_over_a_large_batch():
    vocab = 1000  # so that a random replacement rarely equals the original token
    ids = batch(5, shape=(800, 100), vocab=vocab)
    inputs, _, weights = bert_text.mask_tokens(ids, MASK, vocab, SPECIAL, seed=6)
    c = chosen(weights)
    n = c.sum()
    assert n > 4000
    masked = np.mean(inputs[c] == MASK)
    random = np.mean((inputs[c] != MASK) & (inputs[c] != ids[c]))
    unchanged = np.mean(inputs[c] == ids[c])
    assert masked == pytest.approx(0.8, abs=0.02)
    assert random == pytest.approx(0.1 * (1 - 1 / (vocab - 4)), abs=0.015)
    assert unchanged == pytest.approx(0.1 + 0.1 / (vocab - 4), abs=0.015)


def test_random_replacements_are_ordinary_tokens_drawn_uniformly():
    ids = np.full((6000, 12), 4)  # only token 4, so anything else at a chosen position is a random draw
    inputs, _, weights = bert_text.mask_tokens(ids, MASK, 8, SPECIAL, rate=0.5, seed=7)
    c = chosen(weights)
    replaced = inputs[c][inputs[c] != MASK]
    assert set(np.unique(replaced)) == {4, 5, 6, 7}  # never PAD, CLS, SEP or MASK
    drawn = replaced[replaced != 4]
    counts = np.bincount(drawn, minlength=8)[5:]
    np.testing.assert_allclose(counts / counts.sum(), 1 / 3, atol=0.03)
    # the draws are uniform over the 4 ordinary ids: 1 in 4 lands back on 4
    assert np.mean(inputs[c] == 4) == pytest.approx(0.1 + 0.1 / 4, abs=0.01)


def test_unchosen_positions_are_left_as_they_are():
    ids = batch(8)
    inputs, _, weights = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, rate=0.5, seed=9)
    np.testing.assert_array_equal(inputs[weights == 0], ids[weights == 0])
    assert np.all(inputs[np.isin(ids, SPECIAL)] == ids[np.isin(ids, SPECIAL)])


def test_one_dimensional_ids_give_one_dimensional_outputs():
    ids = [CLS, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, SEP]
    inputs, labels, weights = bert_text.mask_tokens(ids, MASK, 20, SPECIAL, rate=0.3, seed=0)
    assert inputs.shape == labels.shape == weights.shape == (12,)
    assert weights.sum() == 3 and weights[0] == 0 and weights[-1] == 0
    two_d = bert_text.mask_tokens([ids], MASK, 20, SPECIAL, rate=0.3, seed=0)
    for one, two in zip((inputs, labels, weights), two_d):
        np.testing.assert_array_equal(one, two[0])


def test_same_seed_same_output_other_seed_differs():
    ids = batch(10)
    first = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, seed=42)
    again = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, seed=42)
    other = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, seed=43)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2]) and not np.array_equal(first[0], other[0])


def test_no_special_ids_at_all():
    ids = np.arange(1, 21)[None, :] % 20  # contains 0, which is ordinary here
    inputs, _, weights = bert_text.mask_tokens(ids, 0, 20, rate=0.5, seed=1)
    assert weights.sum() == 10 and weights[0, -1] == 0  # the last id is 0 = mask_id: never chosen
    assert set(np.unique(inputs[weights == 1])) <= set(range(20))


@pytest.mark.parametrize("kwargs, error, word", [
    ({"rate": 0.0}, ValueError, "rate"),
    ({"rate": 1.0}, ValueError, "rate"),
    ({"rate": -0.1}, ValueError, "rate"),
    ({"rate": "0.15"}, ValueError, "rate"),
    ({"rate": np.nan}, ValueError, "rate"),
    ({"mask_id": 50}, ValueError, "mask_id"),
    ({"mask_id": -1}, ValueError, "mask_id"),
    ({"mask_id": 3.0}, TypeError, "mask_id"),
    ({"vocab_size": 0}, ValueError, "vocab_size"),
    ({"vocab_size": 50.0}, TypeError, "vocab_size"),
    ({"vocab_size": 4}, ValueError, "ids"),  # ids up to 49 no longer fit
    ({"ids": np.full((2, 5), 50)}, ValueError, "ids"),
    ({"ids": np.full((2, 5), -1)}, ValueError, "ids"),
    ({"ids": np.full((2, 5), 5.0)}, TypeError, "ids"),
    ({"ids": np.ones((2, 5), dtype=bool)}, TypeError, "ids"),
    ({"ids": np.full((2, 3, 4), 5)}, ValueError, "ids"),
    ({"ids": np.int64(5)}, ValueError, "ids"),
    ({"special_ids": (0, 1.5)}, TypeError, "special_ids"),
    ({"special_ids": (0, 50)}, ValueError, "special_ids"),
    ({"special_ids": 3}, TypeError, "special_ids"),
    ({"ids": np.full((2, 5), 1), "vocab_size": 4}, ValueError, "vocab_size"),  # only specials and mask
])
def test_bad_input_names_the_argument(kwargs, error, word):
    kwargs = {"ids": batch(11, shape=(2, 10)), "mask_id": MASK, "vocab_size": 50, "special_ids": SPECIAL,
              **kwargs}
    with pytest.raises(error, match=word):
        bert_text.mask_tokens(**kwargs)


# ---------------------------------------------------------------- pairs, padding and positions (notebook 09)
CLS_ID, SEP_ID, MASK_ID, PAD_ID = bert_text.CLS_ID, bert_text.SEP_ID, bert_text.MASK_ID, bert_text.PAD_ID


def _split(ids):
    """[CLS] a [SEP] b [SEP] -> (a, b) for ids without other [SEP]s."""
    assert ids[0] == CLS_ID and ids[-1] == SEP_ID
    seps = [i for i, t in enumerate(ids) if t == SEP_ID]
    assert len(seps) == 2
    return ids[1:seps[0]], ids[seps[0] + 1:-1]


def test_pack_pair_layout_and_segments():
    ids, segments = bert_text.pack_pair([5, 6, 7], [8, 9], max_len=10)
    assert ids == [CLS_ID, 5, 6, 7, SEP_ID, 8, 9, SEP_ID]
    assert segments == [0, 0, 0, 0, 0, 1, 1, 1]
    ids, segments = bert_text.pack_pair([5, 6, 7], None, max_len=10)
    assert ids == [CLS_ID, 5, 6, 7, SEP_ID] and segments == [0] * 5


def test_pack_pair_cuts_the_longer_side_first():
    a, b = list(range(10, 20)), [20, 21, 22]
    ids, segments = bert_text.pack_pair(a, b, max_len=10)  # room 7: a is cut to 4, b kept
    assert ids == [CLS_ID, 10, 11, 12, 13, SEP_ID, 20, 21, 22, SEP_ID] and len(segments) == 10
    ids, _ = bert_text.pack_pair([5, 6], list(range(30, 40)), max_len=10)  # b is cut to 5
    assert ids == [CLS_ID, 5, 6, SEP_ID, 30, 31, 32, 33, 34, SEP_ID]
    ids, _ = bert_text.pack_pair(list(range(10, 20)), list(range(30, 40)), max_len=11)  # equal: both to 4
    assert _split(ids) == ([10, 11, 12, 13], [30, 31, 32, 33])
    ids, segments = bert_text.pack_pair(list(range(10, 30)), None, max_len=6)
    assert ids == [CLS_ID, 10, 11, 12, 13, SEP_ID] and segments == [0] * 6
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = list(rng.integers(5, 50, rng.integers(1, 30))), list(rng.integers(5, 50, rng.integers(1, 30)))
        max_len = int(rng.integers(5, 40))
        ids, segments = bert_text.pack_pair(a, b, max_len)
        kept_a, kept_b = _split(ids)
        assert len(ids) == len(segments) <= max_len
        assert len(ids) == min(max_len, len(a) + len(b) + 3)
        assert kept_a == a[:len(kept_a)] and kept_b == b[:len(kept_b)]  # cut at the end
        assert len(kept_a) >= 1 and len(kept_b) >= 1
        assert (len(kept_a) < len(a) and len(kept_b) < len(b)) <= (abs(len(kept_a) - len(kept_b)) <= 1)
        assert segments == [0] * (len(kept_a) + 2) + [1] * (len(kept_b) + 1)


def test_pack_pair_bad_arguments():
    with pytest.raises(ValueError, match="max_len"):
        bert_text.pack_pair([5], [6], max_len=4)
    with pytest.raises(ValueError, match="max_len"):
        bert_text.pack_pair([5], None, max_len=2)
    with pytest.raises(TypeError, match="max_len"):
        bert_text.pack_pair([5], [6], max_len=8.0)


def _stream_sentences(n, max_len, seed=0):
    """n sentences of consecutive, unique ids (so a token tells its place in the stream), none longer than
    half the room, so pack_pair never has to cut."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, (max_len - 3) // 2 + 1, n)
    starts = 5 + np.concatenate([[0], np.cumsum(lengths)[:-1]])
    return [list(range(s, s + l)) for s, l in zip(starts, lengths)], set(starts)


def test_next_sentence_pairs_real_and_random_b():
    max_len = 32
    sentences, starts = _stream_sentences(2000, max_len)
    ids, segments, is_next = bert_text.next_sentence_pairs(sentences, max_len, seed=1)
    assert len(ids) == len(segments) == len(is_next) and is_next.dtype == np.int32
    assert set(np.unique(is_next)) == {0, 1}
    assert 0.4 < is_next.mean() < 0.6
    for pair, segment, real in zip(ids, segments, is_next):
        assert len(pair) == len(segment) <= max_len
        a, b = _split(pair)
        assert segment == [0] * (len(a) + 2) + [1] * (len(b) + 1)
        assert a[0] in starts and b[0] in starts  # both sides start at a sentence
        assert np.all(np.diff(a) == 1) and np.all(np.diff(b) == 1)  # consecutive sentences
        if real:
            assert b[0] == a[-1] + 1  # B is what follows A in the stream
        else:
            assert b[0] != a[-1] + 1 and not a[0] <= b[0] <= a[-1]
    firsts = [_split(pair)[0][0] for pair in ids]
    assert firsts == sorted(firsts) and firsts[0] == 5  # A walks through the stream in order


def test_next_sentence_pairs_fill_the_room_and_cut_long_sentences():
    rng = np.random.default_rng(2)
    sentences = [list(rng.integers(5, 100, rng.integers(1, 40))) for _ in range(300)]
    ids, segments, is_next = bert_text.next_sentence_pairs(sentences, 24, seed=0)
    assert all(len(pair) <= 24 for pair in ids)
    assert np.mean([len(pair) for pair in ids]) > 0.75 * 24


def test_next_sentence_pairs_same_seed_same_output():
    sentences, _ = _stream_sentences(200, 32, seed=3)
    first = bert_text.next_sentence_pairs(sentences, 32, seed=4)
    again = bert_text.next_sentence_pairs(sentences, 32, seed=4)
    other = bert_text.next_sentence_pairs(sentences, 32, seed=5)
    assert first[0] == again[0] and first[1] == again[1]
    np.testing.assert_array_equal(first[2], again[2])
    assert first[0] != other[0]


class _Hang(Exception):
    pass


def test_next_sentence_pairs_terminates_when_a_covers_every_sentence(monkeypatch):
    """A guard turns an endless search for a random B into a quick failure (_Hang) instead of a hang."""
    real_rng = np.random.default_rng

    class Guarded:
        def __init__(self, seed):
            self.rng, self.draws = real_rng(seed), 0

        def random(self, *args, **kwargs):
            return self.rng.random(*args, **kwargs)

        def integers(self, *args, **kwargs):
            self.draws += 1
            if self.draws > 10_000:
                raise _Hang("next_sentence_pairs drew 10,000 random starts without finding one")
            return self.rng.integers(*args, **kwargs)

    monkeypatch.setattr(bert_text.np.random, "default_rng", Guarded)
    try:  # four 1-token sentences fit half of the room of 64 tokens: A takes them all
        ids, _, is_next = bert_text.next_sentence_pairs([[5], [6], [7], [8]], 64, seed=0)
    except ValueError:
        return  # refusing such a stream with a clear error would do as well
    assert all(len(pair) <= 64 for pair in ids) and len(ids) == len(is_next)


def test_next_sentence_pairs_bad_arguments():
    with pytest.raises(ValueError, match="sequences"):
        bert_text.next_sentence_pairs([[5], [6], [7]], 16)
    with pytest.raises(ValueError, match="sequences"):
        bert_text.next_sentence_pairs([[5], [6], [], [7]], 16)  # empty sentences do not count
    with pytest.raises(TypeError, match="sequences"):
        bert_text.next_sentence_pairs(np.ones((5, 3), int), 16)
    with pytest.raises(TypeError, match="sequences"):
        bert_text.next_sentence_pairs([], 16)
    with pytest.raises(ValueError, match="max_len"):
        bert_text.next_sentence_pairs([[5]] * 10, 0)


def test_pad_batch_rounds_up_and_pads_with_zeros():
    out = bert_text.pad_batch([[1, 2, 3], [4] * 9])
    assert out.shape == (2, 16) and out.dtype == np.int32
    np.testing.assert_array_equal(out[0], [1, 2, 3] + [0] * 13)
    np.testing.assert_array_equal(out[1], [4] * 9 + [0] * 7)
    assert bert_text.pad_batch([[1, 2, 3], [4] * 8]).shape == (2, 8)  # already a multiple
    assert bert_text.pad_batch([[1, 2, 3], [4] * 5], multiple=1).shape == (2, 5)
    assert bert_text.pad_batch([[7]], multiple=3).shape == (1, 3)
    with pytest.raises(ValueError, match="multiple"):
        bert_text.pad_batch([[1]], multiple=0)
    with pytest.raises(TypeError, match="rows"):
        bert_text.pad_batch([])
    with pytest.raises(TypeError, match="rows"):
        bert_text.pad_batch(np.ones((2, 3), int))


def test_masked_positions_recover_the_weights():
    ids = batch(20, shape=(16, 30))
    _, _, weights = bert_text.mask_tokens(ids, MASK, 50, SPECIAL, seed=1)
    positions, position_weights = bert_text.masked_positions(weights)
    counts = weights.sum(axis=1).astype(int)
    assert positions.shape == position_weights.shape == (16, counts.max())
    assert positions.dtype == np.int32 and position_weights.dtype == np.float32
    rebuilt = np.zeros_like(weights)
    for row in range(16):
        k = counts[row]
        np.testing.assert_array_equal(position_weights[row], [1.0] * k + [0.0] * (len(positions[row]) - k))
        np.testing.assert_array_equal(positions[row, :k], np.flatnonzero(weights[row]))  # in order
        np.testing.assert_array_equal(positions[row, k:], 0)
        rebuilt[row, positions[row, :k]] = position_weights[row, :k]
    np.testing.assert_array_equal(rebuilt, weights)
    wide, wide_weights = bert_text.masked_positions(weights, max_predictions=10)
    assert wide.shape == (16, 10) and wide_weights.sum() == weights.sum()
    narrow, narrow_weights = bert_text.masked_positions(weights, max_predictions=2)
    np.testing.assert_array_equal(narrow, positions[:, :2])
    np.testing.assert_array_equal(narrow_weights, np.minimum(position_weights[:, :2], 1.0))
    none, none_weights = bert_text.masked_positions(np.zeros((3, 5)))
    assert none.shape == (3, 1) and none_weights.sum() == 0
    with pytest.raises(ValueError, match="weights"):
        bert_text.masked_positions(np.ones(5))
    with pytest.raises(ValueError, match="max_predictions"):
        bert_text.masked_positions(weights, max_predictions=0)


# ---------------------------------------------------------------- WordPiece
def test_train_wordpiece():
    pytest.importorskip("tokenizers")
    sentences = ["The cat sat on the mat.", "The dog sat on the log.", "A cat and a dog met on the mat.",
                 "The dog saw the cat sitting."] * 5
    tokenizer = bert_text.train_wordpiece(sentences, vocab_size=120, min_frequency=2)
    for i, token in enumerate(bert_text.SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == i
    assert tokenizer.get_vocab_size() <= 120
    encoding = tokenizer.encode("The Dog sat on the mat.", add_special_tokens=False)
    assert not set(encoding.ids) & set(range(5))  # no [UNK], no special token
    assert tokenizer.decode(encoding.ids) == "the dog sat on the mat."
    batch_ids = [e.ids for e in tokenizer.encode_batch(["the cat", "the dog"], add_special_tokens=False)]
    assert batch_ids[0][0] == batch_ids[1][0] == tokenizer.token_to_id("the")
    with pytest.raises(TypeError, match="sentences"):
        bert_text.train_wordpiece("the cat sat")
    with pytest.raises(TypeError, match="sentences"):
        bert_text.train_wordpiece([])
    with pytest.raises(ValueError, match="vocab_size"):
        bert_text.train_wordpiece(sentences, vocab_size=0)


def test_encode_sentences_wraps_cuts_and_pads():
    pytest.importorskip("tokenizers")
    sentences = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"] * 5
    tokenizer = bert_text.train_wordpiece(sentences, vocab_size=100, min_frequency=1)
    out = bert_text.encode_sentences(tokenizer, ["the cat sat", "the dog sat on the log"], 6)
    assert out.shape == (2, 6) and out.dtype == np.int32
    words = [tokenizer.token_to_id(w) for w in "the cat sat".split()]
    np.testing.assert_array_equal(out[0], [bert_text.CLS_ID] + words + [bert_text.SEP_ID, 0])
    assert out[1, 0] == bert_text.CLS_ID and out[1, -1] == bert_text.SEP_ID and (out[1] != 0).all()  # cut to fit
    with pytest.raises(TypeError, match="texts"):
        bert_text.encode_sentences(tokenizer, "the cat", 6)
    with pytest.raises(ValueError, match="max_len"):
        bert_text.encode_sentences(tokenizer, ["the cat"], 0)


def test_special_tokens_have_ids_0_to_4():
    assert bert_text.SPECIAL_TOKENS == ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
    ids = (bert_text.PAD_ID, bert_text.UNK_ID, bert_text.CLS_ID, bert_text.SEP_ID, bert_text.MASK_ID)
    assert [bert_text.SPECIAL_TOKENS[i] for i in ids] == list(bert_text.SPECIAL_TOKENS)


def test_tokenizer_from_vocab_round_trips_a_trained_tokenizer():
    pytest.importorskip("tokenizers")
    sentences = ["The cat sat on the mat.", "The dog sat on the log.", "A cat and a dog met on the mat.",
                 "Café owners saw the cats sitting."] * 5
    trained = bert_text.train_wordpiece(sentences, vocab_size=120, min_frequency=2)
    vocab = [trained.id_to_token(i) for i in range(trained.get_vocab_size())]
    rebuilt = bert_text.tokenizer_from_vocab(vocab)
    assert rebuilt.get_vocab_size() == len(vocab)
    texts = sentences[:4] + ["THE CAT, unseen words: zebra quokka!", "café CAFE cafe", ""]
    ours = [e.ids for e in rebuilt.encode_batch(texts, add_special_tokens=False)]
    theirs = [e.ids for e in trained.encode_batch(texts, add_special_tokens=False)]
    assert ours == theirs
    assert bert_text.UNK_ID in ours[4]  # the unseen words really go through the [UNK] path
    assert rebuilt.decode(ours[0]) == trained.decode(theirs[0])
    with pytest.raises(ValueError, match="vocab"):
        bert_text.tokenizer_from_vocab(vocab[1:])  # the special tokens are not at ids 0 to 4
    with pytest.raises(ValueError, match="vocab"):
        bert_text.tokenizer_from_vocab(vocab[:3] + vocab[4:5] + vocab[3:4] + vocab[5:])  # [SEP] and [MASK] swapped
    with pytest.raises(ValueError, match="vocab"):
        bert_text.tokenizer_from_vocab(vocab + [vocab[10]])  # a token twice
    with pytest.raises(TypeError, match="vocab"):
        bert_text.tokenizer_from_vocab("[PAD] [UNK]")
    with pytest.raises(TypeError, match="vocab"):
        bert_text.tokenizer_from_vocab([])


# ---------------------------------------------------------------- packed blocks and masked-LM batches
def test_pack_blocks_layout():
    blocks = bert_text.pack_blocks([[5, 6, 7], [8, 9], [], [10, 11, 12, 13], [14]], max_len=6)
    # the stream 5 6 7 | 8 9 | 10 11 12 13 | 14 | (| = [SEP]) in rooms of 4; "14 |" is the tail that is dropped
    np.testing.assert_array_equal(blocks, [[CLS_ID, 5, 6, 7, SEP_ID, SEP_ID],
                                           [CLS_ID, 8, 9, SEP_ID, 10, SEP_ID],
                                           [CLS_ID, 11, 12, 13, SEP_ID, SEP_ID]])  # 10 11 12 13 continues
    assert blocks.dtype == np.int32
    exact = bert_text.pack_blocks(((5, 6, 7), (8, 9, 10)), max_len=6)  # a tuple of tuples; no tail to drop
    np.testing.assert_array_equal(exact, [[CLS_ID, 5, 6, 7, SEP_ID, SEP_ID], [CLS_ID, 8, 9, 10, SEP_ID, SEP_ID]])
    assert not (blocks == PAD_ID).any()


def test_pack_blocks_keep_the_stream_in_order():
    rng = np.random.default_rng(0)
    sentences = [list(rng.integers(5, 50, rng.integers(0, 20))) for _ in range(300)]
    stream = [t for s in sentences if s for t in s + [SEP_ID]]
    for max_len in (3, 8, 33, 64):
        blocks = bert_text.pack_blocks(sentences, max_len)
        room = max_len - 2
        assert blocks.shape == (len(stream) // room, max_len) and blocks.dtype == np.int32
        assert (blocks[:, 0] == CLS_ID).all() and (blocks[:, -1] == SEP_ID).all()
        np.testing.assert_array_equal(blocks[:, 1:-1].ravel(), stream[:len(blocks) * room])
    np.testing.assert_array_equal(bert_text.pack_blocks([np.arange(5, 25)], 12)[0, 1:-1], np.arange(5, 15))


@pytest.mark.parametrize("sequences, max_len, error, word", [
    ([[5, 6, 7, 8]], 2, ValueError, "max_len"),
    ([[5, 6, 7, 8]], 0, ValueError, "max_len"),
    ([[5, 6, 7, 8]], 6.0, TypeError, "max_len"),
    ([[5, 6]], 8, ValueError, "sequences"),  # 3 tokens with the [SEP]: less than one block of 6
    ([[], []], 4, ValueError, "sequences"),
    ([], 4, TypeError, "sequences"),
    (np.ones((3, 4), int), 4, TypeError, "sequences"),
    ([5, 6, 7, 8], 4, TypeError, "sequences"),  # a flat list of ids, not a list of sentences
    ([[5, "a", 7]], 4, TypeError, "sequences"),
    ([[5, 6.5, 7]], 4, TypeError, "sequences"),
    (["the cat sat"], 4, TypeError, "sequences"),
])
def test_pack_blocks_bad_arguments(sequences, max_len, error, word):
    with pytest.raises(error, match=word):
        bert_text.pack_blocks(sequences, max_len)


def _unique_blocks(n, max_len, vocab=50, seed=0):
    """n packed-looking blocks of random ordinary tokens with a few inner [SEP]s, all rows different."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(5, vocab, (n, max_len)).astype(np.int32)
    blocks[rng.random(blocks.shape) < 0.08] = SEP_ID
    blocks[:, 0], blocks[:, -1] = CLS_ID, SEP_ID
    assert len(np.unique(blocks, axis=0)) == n
    return blocks


def _same_batch(a, b):
    (xa, ya, wa), (xb, yb, wb) = a, b
    return all(np.array_equal(p, q) for p, q in ((xa["token_ids"], xb["token_ids"]),
                                                 (xa["mask_positions"], xb["mask_positions"]), (ya, yb), (wa, wb)))


def test_mlm_batch_depends_only_on_seed_and_step():
    blocks = _unique_blocks(40, 16)
    first = bert_text.MLMBatches(blocks, 8, 50, steps=20, seed=3)
    assert len(first) == 20
    for k in (1, 5, 7, 13):
        resumed = bert_text.MLMBatches(blocks, 8, 50, steps=20, start=k, seed=3)
        assert len(resumed) == 20 - k
        for index in (0, 1, len(resumed) - 1):
            assert _same_batch(resumed[index], first[k + index])
            np.testing.assert_array_equal(resumed.rows(k + index), first.rows(k + index))
    assert _same_batch(first[4], first[4])  # asking twice gives the same batch
    assert _same_batch(first[4], bert_text.MLMBatches(blocks, 8, 50, steps=5, seed=3)[4])  # steps only sets len
    other = bert_text.MLMBatches(blocks, 8, 50, steps=20, seed=4)
    assert not _same_batch(first[4], other[4])


def test_mlm_batches_use_every_block_once_per_pass_and_mask_afresh():
    blocks = _unique_blocks(48, 16)
    batches = bert_text.MLMBatches(blocks, 8, 50, steps=30, seed=0)
    passes = [np.concatenate([batches.rows(6 * p + j) for j in range(6)]) for p in range(3)]
    for rows in passes:
        np.testing.assert_array_equal(np.sort(rows), np.arange(48))
    assert not np.array_equal(passes[0], passes[1])  # a new order in each pass
    # the same block met in two passes is masked afresh (dynamic masking)
    chosen = [{}, {}]
    for p in range(2):
        for step in range(6 * p, 6 * p + 6):
            _, _, weights = batches[step]
            for row, block in enumerate(batches.rows(step)):
                chosen[p][int(block)] = tuple(batches[step][0]["mask_positions"][row][weights[row] > 0])
    assert sum(chosen[0][b] == chosen[1][b] for b in range(48)) < 10
    # 50 blocks in batches of 8: 6 batches a pass, 48 different blocks, 2 left out (a different 2 each pass)
    uneven = bert_text.MLMBatches(_unique_blocks(50, 16), 8, 50, steps=12, seed=0)
    for p in range(2):
        rows = np.concatenate([uneven.rows(6 * p + j) for j in range(6)])
        assert len(rows) == len(set(rows.tolist())) == 48


@pytest.mark.parametrize("max_len, p", [(5, 1), (6, 1), (12, 2), (16, 2), (32, 5), (64, 9)])
def test_mlm_batches_predict_round_15_percent_of_the_ordinary_tokens(max_len, p):
    assert p == max(1, int(np.floor(0.15 * (max_len - 2) + 0.5)))
    blocks = bert_text.pack_blocks([list(range(5, 45))] * 20, max_len)  # [SEP]s only between sentences
    batches = bert_text.MLMBatches(blocks, 4, 50, steps=3)
    x, labels, weights = batches[2]
    assert x["token_ids"].shape == (4, max_len) and x["mask_positions"].shape == labels.shape == (4, p)
    assert weights.shape == (4, p) and batches.max_predictions == p


def test_mlm_batch_weights_and_labels_match_the_blocks():
    blocks = _unique_blocks(32, 20)
    batches = bert_text.MLMBatches(blocks, 8, 50, steps=8, seed=1)
    p = int(np.floor(0.15 * 18 + 0.5))
    masked = total = 0
    for step in range(8):
        x, labels, weights = batches[step]
        original = blocks[batches.rows(step)]
        assert x["token_ids"].dtype == x["mask_positions"].dtype == labels.dtype == np.int32
        assert weights.dtype == np.float32 and labels.shape == weights.shape == (8, p)
        for row in range(8):
            eligible = int((~np.isin(original[row], [CLS_ID, SEP_ID])).sum())
            k = int(weights[row].sum())
            assert k == max(1, int(np.floor(0.15 * eligible + 0.5)))  # mask_tokens' count of this block
            np.testing.assert_array_equal(weights[row], [1.0] * k + [0.0] * (p - k))
            chosen = x["mask_positions"][row, :k]
            assert np.all(np.diff(chosen) > 0)
            assert not np.isin(original[row, chosen], [PAD_ID, CLS_ID, SEP_ID, MASK_ID]).any()
            np.testing.assert_array_equal(labels[row, :k], original[row, chosen])
            unchosen = np.setdiff1d(np.arange(20), chosen)
            np.testing.assert_array_equal(x["token_ids"][row, unchosen], original[row, unchosen])
            masked += int((x["token_ids"][row, chosen] == MASK_ID).sum())
            total += k
    assert 0.65 < masked / total < 0.95  # 80 % of the chosen positions read [MASK]


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(blocks=np.arange(5, 25)), ValueError, "blocks"),
    (dict(blocks=np.full((10, 8), 50)), ValueError, "blocks"),  # ids beyond vocab_size
    (dict(blocks=np.full((10, 8), -1)), ValueError, "blocks"),
    (dict(batch_size=11), ValueError, "batch_size"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(batch_size=2.0), TypeError, "batch_size"),
    (dict(vocab_size=0), ValueError, "vocab_size"),
    (dict(steps=0), ValueError, "steps"),
    (dict(start=-1), ValueError, "start"),
    (dict(start=6), ValueError, "start"),
    (dict(start=9), ValueError, "start"),
    (dict(seed=-1), ValueError, "seed"),
])
def test_mlm_batches_bad_arguments(kwargs, error, word):
    args = {**dict(blocks=_unique_blocks(10, 8), batch_size=4, vocab_size=50, steps=6), **kwargs}
    with pytest.raises(error, match=word):
        bert_text.MLMBatches(**args)
