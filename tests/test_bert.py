"""mask_tokens (notebook 09 contract): BERT's choice of positions and its 80/10/10 replacement rule."""

import numpy as np
import pytest

from nnutils import bert

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
    inputs, labels, weights = bert.mask_tokens(ids, MASK, 50, SPECIAL, seed=0)
    assert inputs.shape == labels.shape == weights.shape == ids.shape
    assert inputs.dtype == np.int32 and labels.dtype == np.int32 and weights.dtype == np.float32
    np.testing.assert_array_equal(labels, ids)  # every position, chosen or not
    np.testing.assert_array_equal(ids, original)  # ids are not modified in place
    assert set(np.unique(weights)) <= {0.0, 1.0}


def test_special_and_mask_positions_are_never_chosen():
    ids = batch(1)
    for seed in range(5):
        _, _, weights = bert.mask_tokens(ids, MASK, 50, SPECIAL, rate=0.9, seed=seed)
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
        _, _, weights = bert.mask_tokens(ids, MASK, 10, SPECIAL, rate=0.25, seed=seed)
        assert list(weights.sum(axis=1)) == [3, 4, 1, 1, 0, 4]


def test_count_per_row_for_the_default_rate():
    ids = batch(2)
    eligible = (~np.isin(ids, SPECIAL + (MASK,))).sum(axis=1)
    _, _, weights = bert.mask_tokens(ids, MASK, 50, SPECIAL, seed=3)
    expected = np.where(eligible > 0, np.maximum(1, np.floor(0.15 * eligible + 0.5)), 0)
    np.testing.assert_array_equal(weights.sum(axis=1), expected)


def test_the_chosen_positions_are_spread_uniformly():
    ids = np.full((4000, 10), 5)
    _, _, weights = bert.mask_tokens(ids, MASK, 10, SPECIAL, rate=0.2, seed=4)
    assert np.all(weights.sum(axis=1) == 2)
    np.testing.assert_allclose(weights.mean(axis=0), 0.2, atol=0.02)  # no position is favoured


def test_80_10_10_over_a_large_batch():
    vocab = 1000  # so that a random replacement rarely equals the original token
    ids = batch(5, shape=(800, 100), vocab=vocab)
    inputs, _, weights = bert.mask_tokens(ids, MASK, vocab, SPECIAL, seed=6)
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
    inputs, _, weights = bert.mask_tokens(ids, MASK, 8, SPECIAL, rate=0.5, seed=7)
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
    inputs, _, weights = bert.mask_tokens(ids, MASK, 50, SPECIAL, rate=0.5, seed=9)
    np.testing.assert_array_equal(inputs[weights == 0], ids[weights == 0])
    assert np.all(inputs[np.isin(ids, SPECIAL)] == ids[np.isin(ids, SPECIAL)])


def test_one_dimensional_ids_give_one_dimensional_outputs():
    ids = [CLS, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, SEP]
    inputs, labels, weights = bert.mask_tokens(ids, MASK, 20, SPECIAL, rate=0.3, seed=0)
    assert inputs.shape == labels.shape == weights.shape == (12,)
    assert weights.sum() == 3 and weights[0] == 0 and weights[-1] == 0
    two_d = bert.mask_tokens([ids], MASK, 20, SPECIAL, rate=0.3, seed=0)
    for one, two in zip((inputs, labels, weights), two_d):
        np.testing.assert_array_equal(one, two[0])


def test_same_seed_same_output_other_seed_differs():
    ids = batch(10)
    first = bert.mask_tokens(ids, MASK, 50, SPECIAL, seed=42)
    again = bert.mask_tokens(ids, MASK, 50, SPECIAL, seed=42)
    other = bert.mask_tokens(ids, MASK, 50, SPECIAL, seed=43)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[2], other[2]) and not np.array_equal(first[0], other[0])


def test_no_special_ids_at_all():
    ids = np.arange(1, 21)[None, :] % 20  # contains 0, which is ordinary here
    inputs, _, weights = bert.mask_tokens(ids, 0, 20, rate=0.5, seed=1)
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
        bert.mask_tokens(**kwargs)
