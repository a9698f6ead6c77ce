"""next_token_probs and sample (notebook 09 contract): temperature, top-k, top-p, and agreement with greedy."""

import numpy as np
import pytest

from nnutils import decoding

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def softmax(z):
    e = np.exp(z - np.max(z, axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class MarkovChain:
    """A fixed first-order Markov chain as a step function: the state is unused, the last token is everything."""

    def __init__(self, transition):
        self.log_p = np.log(np.asarray(transition, dtype=np.float64))
        self.calls = 0

    def step(self, tokens, state):
        self.calls += 1
        return self.log_p[np.asarray(tokens)], state


def random_chain(seed, vocab=6, sharpness=3.0):
    rng = np.random.default_rng(seed)
    return MarkovChain(softmax(rng.normal(0, sharpness, (vocab, vocab))))


LOGITS = np.array([[2.0, -1.0, 0.5, 3.0, 0.0, -2.5, 1.0],
                   [0.1, 0.2, 0.3, -5.0, 4.0, 4.0, -np.inf]])


# --- next_token_probs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"temperature": 0.3}, {"top_k": 3}, {"top_p": 0.6},
                                    {"temperature": 2.0, "top_k": 4, "top_p": 0.9}])
def test_rows_are_distributions(kwargs):
    p = decoding.next_token_probs(LOGITS, **kwargs)
    assert p.shape == LOGITS.shape and p.dtype == np.float64
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_one_dimensional_logits_give_one_row():
    p = decoding.next_token_probs(LOGITS[0])
    assert p.shape == (1, LOGITS.shape[1])
    np.testing.assert_allclose(p[0], softmax(LOGITS[0]), rtol=1e-12)


@pytest.mark.parametrize("temperature", [0.05, 0.5, 1.0, 1.7, 10.0])
def test_temperature_is_softmax_of_scaled_logits(temperature):
    p = decoding.next_token_probs(LOGITS, temperature=temperature)
    np.testing.assert_allclose(p, softmax(LOGITS / temperature), rtol=1e-12, atol=1e-300)


def test_softmax_is_stable_for_huge_logits_and_tiny_temperatures():
    p = decoding.next_token_probs(np.array([1000.0, 999.0, -1000.0]))
    np.testing.assert_allclose(p[0], softmax(np.array([1.0, 0.0, -2000.0])), rtol=1e-12)
    cold = decoding.next_token_probs(np.array([1.0, 3.0, 2.0]), temperature=1e-6)
    np.testing.assert_array_equal(cold[0], [0.0, 1.0, 0.0])


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_top_k_keeps_exactly_the_k_largest(k):
    rng = np.random.default_rng(k)
    logits = rng.normal(0, 2, (20, 11))
    p = decoding.next_token_probs(logits, top_k=k)
    for row, probs in zip(logits, p):
        kept = np.flatnonzero(probs)
        assert len(kept) == k
        assert set(kept) == set(np.argsort(-row)[:k])
        np.testing.assert_allclose(probs[kept], softmax(row[kept]), rtol=1e-12)  # renormalised, ratios kept


def test_top_k_ties_keep_exactly_k_lower_ids_first():
    p = decoding.next_token_probs(np.array([1.0, 5.0, 5.0, 5.0, 0.0]), top_k=2)
    np.testing.assert_allclose(p[0], [0.0, 0.5, 0.5, 0.0, 0.0])
    p = decoding.next_token_probs(np.array([5.0, 5.0, 5.0]), top_k=1)
    np.testing.assert_array_equal(p[0], [1.0, 0.0, 0.0])  # as np.argmax


def test_top_k_beyond_the_vocabulary_keeps_everything():
    np.testing.assert_allclose(decoding.next_token_probs(LOGITS, top_k=100), softmax(LOGITS), rtol=1e-12)


PROBS = np.array([0.05, 0.5, 0.15, 0.3])  # sorted: 0.5 (id 1), 0.3 (id 3), 0.15 (id 2), 0.05 (id 0)


@pytest.mark.parametrize("top_p, kept", [
    (0.4, [1]),            # 0.5 alone reaches 0.4
    (0.5, [1]),            # exactly reached by the first token: no second one
    (0.7, [1, 3]),         # 0.5 < 0.7 <= 0.8: the token that crosses top_p is kept, nothing after it
    (0.8, [1, 3]),         # exactly reached (up to rounding): keeping "running sum <= top_p, plus one" fails
    (0.80001, [1, 2, 3]),
    (0.96, [0, 1, 2, 3]),
    (1.0, [0, 1, 2, 3]),
])
def test_top_p_keeps_the_smallest_set_that_reaches_it(top_p, kept):
    p = decoding.next_token_probs(np.log(PROBS), top_p=top_p)[0]
    assert list(np.flatnonzero(p)) == kept
    np.testing.assert_allclose(p[kept], PROBS[kept] / PROBS[kept].sum(), rtol=1e-12)


def test_top_p_is_row_by_row():
    p = decoding.next_token_probs(np.log(np.array([PROBS, PROBS[::-1]])), top_p=0.7)
    assert list(np.flatnonzero(p[0])) == [1, 3] and list(np.flatnonzero(p[1])) == [0, 2]


@pytest.mark.parametrize("top_p", [1e-9, 0.01])
def test_top_p_always_keeps_the_most_probable_token(top_p):
    p = decoding.next_token_probs(LOGITS, top_p=top_p)
    np.testing.assert_array_equal(p, np.eye(LOGITS.shape[1])[[3, 4]])  # row 1: tie 4/5 goes to the lower id


def test_top_p_applies_to_the_top_k_renormalised_distribution():
    # after top_k=2 the kept probabilities are 0.5/0.8 = 0.625 and 0.375: top_p=0.6 needs only the first
    p = decoding.next_token_probs(np.log(PROBS), top_k=2, top_p=0.6)[0]
    np.testing.assert_array_equal(p, [0.0, 1.0, 0.0, 0.0])
    p = decoding.next_token_probs(np.log(PROBS), top_k=2, top_p=0.63)[0]
    np.testing.assert_allclose(p, [0.0, 0.625, 0.0, 0.375], rtol=1e-12)


@pytest.mark.parametrize("kwargs, error, word", [
    ({"temperature": 0}, ValueError, "temperature"),
    ({"temperature": -1.0}, ValueError, "temperature"),
    ({"temperature": np.inf}, ValueError, "temperature"),
    ({"temperature": "hot"}, ValueError, "temperature"),
    ({"top_k": 0}, ValueError, "top_k"),
    ({"top_k": 2.0}, ValueError, "top_k"),
    ({"top_k": True}, ValueError, "top_k"),
    ({"top_p": 0.0}, ValueError, "top_p"),
    ({"top_p": 1.01}, ValueError, "top_p"),
    ({"top_p": np.nan}, ValueError, "top_p"),
    ({"logits": np.array(["a", "b"])}, TypeError, "logits"),
    ({"logits": np.array([True, False])}, TypeError, "logits"),
    ({"logits": [[1.0, 2.0], [3.0]]}, TypeError, "logits"),
    ({"logits": np.zeros((2, 3, 4))}, ValueError, "logits"),
    ({"logits": np.float64(1.0)}, ValueError, "logits"),
    ({"logits": np.zeros((2, 0))}, ValueError, "logits"),
    ({"logits": np.array([1.0, np.nan])}, ValueError, "logits"),
    ({"logits": np.array([[0.0, 1.0], [-np.inf, -np.inf]])}, ValueError, "logits"),
])
def test_bad_arguments_name_themselves(kwargs, error, word):
    kwargs = {"logits": LOGITS, **kwargs}
    with pytest.raises(error, match=word):
        decoding.next_token_probs(**kwargs)


# --- sample -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_top_k_one_is_greedy_decoding(seed):
    chain = random_chain(seed)
    greedy, _ = decoding.greedy_decode(chain.step, None, bos_id=0, eos_id=1, max_len=12)
    for sampling_seed in range(3):
        tokens = decoding.sample(chain.step, None, bos_id=0, max_len=12, top_k=1, eos_id=1, seed=sampling_seed)
        assert tokens == greedy
    assert decoding.sample(chain.step, None, 0, 12, temperature=0.1, top_k=1, top_p=0.3, eos_id=1) == greedy


def test_tiny_top_p_is_greedy_decoding_too():
    chain = random_chain(7)
    greedy, _ = decoding.greedy_decode(chain.step, None, bos_id=2, eos_id=5, max_len=15)
    assert decoding.sample(chain.step, None, bos_id=2, max_len=15, top_p=1e-6, eos_id=5, seed=3) == greedy


def test_same_seed_same_tokens_other_seeds_differ():
    chain = MarkovChain(np.full((10, 10), 0.1))  # uniform: 10 ** 30 equally likely sequences
    runs = [decoding.sample(chain.step, None, bos_id=0, max_len=30, seed=seed) for seed in (0, 0, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2] and runs[0] != runs[3] and runs[2] != runs[3]
    assert all(len(tokens) == 30 and all(isinstance(t, int) for t in tokens) for tokens in runs)
    generator = np.random.default_rng(5)
    assert decoding.sample(chain.step, None, 0, 30, seed=generator) == \
        decoding.sample(chain.step, None, 0, 30, seed=np.random.default_rng(5))


def test_frequencies_follow_the_filtered_distribution():
    logits = np.log(np.array([0.4, 0.25, 0.2, 0.1, 0.05]))
    chain = MarkovChain(np.tile(np.exp(logits), (5, 1)))  # every step: the same distribution
    for kwargs in ({}, {"temperature": 0.5}, {"top_k": 3}, {"top_p": 0.7}, {"temperature": 2.0, "top_p": 0.9}):
        expected = decoding.next_token_probs(logits, **kwargs)[0]
        tokens = decoding.sample(chain.step, None, bos_id=0, max_len=8_000, seed=11, **kwargs)
        frequencies = np.bincount(tokens, minlength=5) / len(tokens)
        np.testing.assert_allclose(frequencies, expected, atol=0.02)
        assert np.all(frequencies[expected == 0] == 0)
    np.testing.assert_allclose(decoding.next_token_probs(logits, temperature=0.5)[0], softmax(2 * logits),
                               rtol=1e-12)  # so the first two cases are truly different distributions


def test_eos_stops_and_is_included():
    # 0 (bos) -> 2 -> 3 -> 1 (eos) for sure, and after eos the chain would go on to 4
    transition = np.full((5, 5), 1e-12)
    for a, b in [(0, 2), (2, 3), (3, 1), (1, 4), (4, 4)]:
        transition[a, b] = 1.0
    chain = MarkovChain(transition / transition.sum(axis=1, keepdims=True))
    assert decoding.sample(chain.step, None, bos_id=0, max_len=10, eos_id=1, seed=0) == [2, 3, 1]
    assert chain.calls == 3
    assert decoding.sample(chain.step, None, bos_id=0, max_len=2, eos_id=1, seed=0) == [2, 3]
    assert decoding.sample(chain.step, None, bos_id=0, max_len=6, seed=0) == [2, 3, 1, 4, 4, 4]  # no eos_id


def test_state_is_threaded_through_the_steps():
    seen = []

    def step(tokens, state):
        seen.append(state)
        return np.log(np.full((1, 3), 1 / 3)), state + 1

    decoding.sample(step, 10, bos_id=0, max_len=4, seed=0)
    assert seen == [10, 11, 12, 13]


CHAIN = random_chain(0)


@pytest.mark.parametrize("kwargs, error, word", [
    ({"step_fn": "not callable"}, TypeError, "step_fn"),
    ({"bos_id": -1}, ValueError, "bos_id"),
    ({"bos_id": 1.0}, ValueError, "bos_id"),
    ({"eos_id": -2}, ValueError, "eos_id"),
    ({"max_len": 0}, ValueError, "max_len"),
    ({"temperature": 0.0}, ValueError, "temperature"),
    ({"top_k": 0}, ValueError, "top_k"),
    ({"top_p": 1.5}, ValueError, "top_p"),
    ({"step_fn": lambda tokens, state: (np.zeros(6), state)}, ValueError, "step_fn"),
])
def test_bad_sample_arguments_name_themselves(kwargs, error, word):
    kwargs = {"step_fn": CHAIN.step, "initial_state": None, "bos_id": 0, "max_len": 5, **kwargs}
    with pytest.raises(error, match=word):
        decoding.sample(**kwargs)


def test_arguments_are_checked_before_the_model_runs():
    chain = random_chain(1)
    with pytest.raises(ValueError, match="top_p"):
        decoding.sample(chain.step, None, bos_id=0, max_len=5, top_p=0.0)
    assert chain.calls == 0


def test_greedy_decode_still_requires_an_eos_id():
    with pytest.raises(ValueError, match="eos_id"):
        decoding.greedy_decode(CHAIN.step, None, bos_id=0, eos_id=None, max_len=5)
