"""beam_search and greedy_decode against exhaustive search on small random models (issue 5 contract)."""

import itertools

import keras
import numpy as np
import pytest

from nnutils import decoding

VOCAB, BOS, EOS = 5, 4, 1  # ids 0..4; the model never predicts BOS, EOS = 1


class RandomModel:
    """A tiny random recurrent model: the next-token distribution depends on the whole prefix."""

    def __init__(self, seed, hidden=6, scale=2.5):
        rng = np.random.default_rng(seed)
        self.embed = rng.normal(0, scale, (VOCAB, hidden))
        self.w = rng.normal(0, scale / np.sqrt(hidden), (hidden, hidden))
        self.out = rng.normal(0, scale, (hidden, VOCAB))
        self.banned = [BOS]  # never generate <bos>
        self.calls = []

    def step(self, tokens, state):
        tokens = np.asarray(tokens)
        self.calls.append(len(tokens))
        h = np.tanh(state @ self.w + self.embed[tokens])
        logits = h @ self.out
        logits[:, self.banned] = -1e9
        logits = logits - logits.max(axis=1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(axis=1, keepdims=True)), h

    def initial_state(self):
        return np.zeros((1, self.w.shape[0]))

    def sequence_log_prob(self, tokens):
        state, last, total = self.initial_state(), BOS, 0.0
        for token in tokens:
            log_probs, state = self.step(np.array([last]), state)
            total += log_probs[0, token]
            last = token
        return total


def exhaustive(model, max_len, length_penalty):
    """Every finished sequence (ends in EOS, or reaches max_len) with its score, best first."""
    results = []
    for length in range(1, max_len + 1):
        for prefix in itertools.product([t for t in range(VOCAB) if t not in (BOS, EOS)], repeat=length - 1):
            ends = [list(prefix) + [EOS]] + ([list(prefix) + [t] for t in range(VOCAB) if t not in (BOS, EOS)]
                                             if length == max_len else [])
            for tokens in ends:
                results.append((tokens, model.sequence_log_prob(tokens) / len(tokens) ** length_penalty))
    return sorted(results, key=lambda pair: -pair[1])


@pytest.mark.parametrize("seed", range(8))
def test_beam_width_one_is_exactly_greedy(seed):
    model = RandomModel(seed)
    greedy = decoding.greedy_decode(model.step, model.initial_state(), BOS, EOS, max_len=6)
    [(tokens, score)] = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=1, max_len=6)
    assert (tokens, score) == greedy
    assert greedy[1] == pytest.approx(model.sequence_log_prob(greedy[0]), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("length_penalty", [0.0, 0.6, 1.0])
def test_a_beam_that_keeps_everything_is_exhaustive_search(seed, length_penalty):
    model, max_len = RandomModel(seed), 4
    best = exhaustive(model, max_len, length_penalty)
    found = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=VOCAB ** max_len,
                                 max_len=max_len, length_penalty=length_penalty)
    assert found[0][0] == best[0][0]
    assert found[0][1] == pytest.approx(best[0][1], abs=1e-9)
    assert [t for t, _ in found[:5]] == [t for t, _ in best[:5]]


@pytest.mark.parametrize("seed", range(6))
def test_narrow_beams_are_sorted_scored_and_vectorised(seed):
    model, width, max_len = RandomModel(seed), 3, 7
    found = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=width, max_len=max_len,
                                 length_penalty=0.7)
    calls = list(model.calls)
    assert 1 <= len(found) <= width
    scores = [score for _, score in found]
    assert scores == sorted(scores, reverse=True)
    for tokens, score in found:
        assert BOS not in tokens and 1 <= len(tokens) <= max_len
        assert EOS not in tokens[:-1] and (tokens[-1] == EOS or len(tokens) == max_len)
        assert score == pytest.approx(model.sequence_log_prob(tokens) / len(tokens) ** 0.7, abs=1e-9)
    # one call per time step, with every live hypothesis at once
    assert len(calls) <= max_len and max(calls) <= width and calls[0] == 1


def test_without_eos_hypotheses_finish_at_max_len():
    model = RandomModel(0)
    model.banned = [BOS, EOS]  # EOS is never likely
    found = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=2, max_len=3)
    assert len(found) == 2 and all(len(tokens) == 3 and EOS not in tokens for tokens, _ in found)
    tokens, _ = decoding.greedy_decode(model.step, model.initial_state(), BOS, EOS, max_len=3)
    assert len(tokens) == 3


def test_early_stop_with_no_length_penalty_matches_a_full_search():
    for seed in range(6):
        model = RandomModel(seed)
        wide = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=VOCAB ** 4, max_len=4)
        narrow = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=4, max_len=4)
        assert narrow[0][1] <= wide[0][1] + 1e-12


def test_nested_and_keras_tensor_states_follow_their_hypotheses():
    model = RandomModel(3)

    def step_nested(tokens, state):
        log_probs, h = model.step(tokens, keras.ops.convert_to_numpy(state["h"]))
        assert state["pair"][0].shape[0] == len(tokens)
        return log_probs, {"h": keras.ops.convert_to_tensor(h), "pair": (h, h[:, :2])}

    init = {"h": keras.ops.zeros((1, 6), dtype="float64"), "pair": (np.zeros((1, 6)), np.zeros((1, 2)))}
    nested = decoding.beam_search(step_nested, init, BOS, EOS, beam_width=3, max_len=5)
    plain = decoding.beam_search(model.step, model.initial_state(), BOS, EOS, beam_width=3, max_len=5)
    assert [t for t, _ in nested] == [t for t, _ in plain]


def test_state_none_is_allowed():
    table = np.log(np.array([[0.1, 0.6, 0.2, 0.1]]))  # a unigram model: EOS (id 1) is most likely
    step = lambda tokens, state: (np.repeat(table, len(tokens), axis=0), None)  # noqa: E731
    assert decoding.greedy_decode(step, None, 3, 1, 5) == ([1], pytest.approx(np.log(0.6)))
    found = decoding.beam_search(step, None, 3, 1, beam_width=2, max_len=5)
    assert found[0][0] == [1] and found[1][0] == [2, 1]


@pytest.mark.parametrize("call, error, word", [
    (lambda m: decoding.beam_search(m.step, m.initial_state(), BOS, EOS, 0, 5), ValueError, "beam_width"),
    (lambda m: decoding.beam_search(m.step, m.initial_state(), BOS, EOS, 2.0, 5), TypeError, "beam_width"),
    (lambda m: decoding.beam_search(m.step, m.initial_state(), BOS, EOS, 2, 0), ValueError, "max_len"),
    (lambda m: decoding.greedy_decode(m.step, m.initial_state(), BOS, EOS, 0), ValueError, "max_len"),
    (lambda m: decoding.beam_search(m.step, m.initial_state(), BOS, EOS, 2, 5, -1.0), ValueError, "length_penalty"),
    (lambda m: decoding.beam_search(m.step, m.initial_state(), BOS, EOS, 2, 5, True), ValueError, "length_penalty"),
    (lambda m: decoding.beam_search("model", None, BOS, EOS, 2, 5), TypeError, "step_fn"),
    (lambda m: decoding.greedy_decode(m.step, m.initial_state(), -1, EOS, 5), ValueError, "bos_id"),
    (lambda m: decoding.greedy_decode(m.step, m.initial_state(), BOS, 1.5, 5), ValueError, "eos_id"),
    (lambda m: decoding.greedy_decode(lambda t, s: (np.zeros(5), s), None, BOS, EOS, 5), ValueError, "step_fn"),
])
def test_bad_input_names_the_argument(call, error, word):
    with pytest.raises(error, match=word):
        call(RandomModel(0))


def test_ties_go_to_the_lower_token_id_as_in_argmax():
    uniform = np.log(np.full((1, 6), 1 / 6))
    step = lambda tokens, state: (np.repeat(uniform, len(tokens), axis=0), None)  # noqa: E731
    found = decoding.beam_search(step, None, bos_id=5, eos_id=4, beam_width=3, max_len=1)
    assert [tokens for tokens, _ in found] == [[0], [1], [2]]
    assert decoding.greedy_decode(step, None, bos_id=5, eos_id=4, max_len=1)[0] == [0]
