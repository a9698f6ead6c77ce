"""Greedy decoding and beam search for any model that can take one step at a time (notebook 07).

A model is seen through a *step function*: ``step_fn(tokens, state) -> (log_probs, new_state)``.
``tokens`` holds the last token of each of n live hypotheses, shape (n,); every array in ``state``
(an array, a list/tuple/dict of arrays, or None) has leading dimension n; ``log_probs`` has shape
(n, vocab) and holds normalised log-probabilities of the next token. Decoding starts from one
hypothesis, so the arrays of ``initial_state`` have leading dimension 1.
"""

import numpy as np

from ._args import positive_int


def greedy_decode(step_fn, initial_state, bos_id, eos_id, max_len):
    """The most probable next token at every step: (tokens, summed log-probability) (notebook 07).

    ``tokens`` excludes <bos> and ends in <eos> if one was produced within ``max_len`` tokens.
    """
    _check_common(step_fn, bos_id, eos_id, max_len)
    tokens, score, state = [], 0.0, initial_state
    last = np.array([bos_id])
    for _ in range(max_len):
        log_probs, state = _call(step_fn, last, state, 1)
        token = int(np.argmax(log_probs[0]))
        tokens.append(token)
        score += float(log_probs[0, token])
        if token == eos_id:
            break
        last = np.array([token])
    return tokens, score


def beam_search(step_fn, initial_state, bos_id, eos_id, beam_width, max_len, length_penalty=0.0):
    """The ``beam_width`` best hypotheses, as (tokens, score) pairs, best first (notebook 07).

    Each step extends every live hypothesis by every token with one call of ``step_fn`` and keeps the
    ``beam_width`` best extensions (all have the same length, so their summed log-probabilities rank
    them). An extension that ends in <eos> is finished and leaves the beam; one that reaches ``max_len``
    tokens is finished there. The search stops when no hypothesis is live or when ``beam_width`` finished
    hypotheses all score at least as well as the best live one could (exact for ``length_penalty=0``,
    where extending never raises a score). ``score`` = sum of log-probabilities / len(tokens) ** length_penalty.
    ``beam_width=1`` is greedy decoding; a beam that keeps every hypothesis is exhaustive search.
    """
    _check_common(step_fn, bos_id, eos_id, max_len)
    beam_width = positive_int("beam_width", beam_width)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, (int, float, np.floating)) \
            or not np.isfinite(length_penalty) or length_penalty < 0:
        raise ValueError(f"length_penalty must be a finite number >= 0, got {length_penalty!r}")

    def normalised(total, length):
        return total / length ** length_penalty

    live_tokens, live_scores, state = [[]], np.zeros(1), initial_state
    last = np.array([bos_id])
    finished = []
    for t in range(1, max_len + 1):
        log_probs, state = _call(step_fn, last, state, len(live_tokens))
        candidates = (live_scores[:, None] + log_probs).ravel()  # every live hypothesis times every token
        vocab = log_probs.shape[1]
        best = _top(candidates, beam_width)
        keep = []
        for flat in best:
            parent, token = divmod(int(flat), vocab)
            tokens = live_tokens[parent] + [token]
            if token == eos_id or t == max_len:
                finished.append((tokens, normalised(float(candidates[flat]), t)))
            else:
                keep.append((parent, tokens, float(candidates[flat])))
        if not keep:
            break
        parents = np.array([p for p, _, _ in keep])
        live_tokens = [tokens for _, tokens, _ in keep]
        live_scores = np.array([score for _, _, score in keep])
        last = np.array([tokens[-1] for tokens in live_tokens])
        state = _select(state, parents)
        if len(finished) >= beam_width:
            kth = sorted((score for _, score in finished), reverse=True)[beam_width - 1]
            if kth >= normalised(live_scores.max(), t):
                break
    finished.sort(key=lambda pair: -pair[1])  # sort is stable: ties keep the order they were found in
    return finished[:beam_width]


def _top(scores, k):
    """Indices of the k largest scores, best first; ties go to the lower index (so k = 1 is np.argmax)."""
    if k == 1:
        return np.array([np.argmax(scores)])
    if k < len(scores):
        part = np.argpartition(-scores, k - 1)[:k]
        threshold = scores[part].min()
        part = np.flatnonzero(scores >= threshold)  # every index tied at the boundary, lowest ones win below
    else:
        part = np.arange(len(scores))
    return part[np.lexsort((part, -scores[part]))][:k]


def _check_common(step_fn, bos_id, eos_id, max_len):
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable as step_fn(tokens, state), got {type(step_fn).__name__}")
    for argument, value in (("bos_id", bos_id), ("eos_id", eos_id)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{argument} must be a token id (an int >= 0), got {value!r}")
    if isinstance(max_len, bool) or not isinstance(max_len, (int, np.integer)) or max_len < 1:
        raise ValueError(f"max_len must be an int >= 1, got {max_len!r}")


def _call(step_fn, tokens, state, n):
    log_probs, new_state = step_fn(tokens, state)
    log_probs = np.asarray(log_probs, dtype=np.float64)
    if log_probs.ndim != 2 or log_probs.shape[0] != n:
        raise ValueError(f"step_fn must return log_probs of shape ({n}, vocab) for {n} live hypotheses, "
                         f"got shape {log_probs.shape}")
    return log_probs, new_state


def _select(state, rows):
    """The rows of every array in a (nested) state, for the hypotheses that survive a step."""
    if state is None:
        return None
    if isinstance(state, dict):
        return {key: _select(value, rows) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_select(value, rows) for value in state)
    if isinstance(state, np.ndarray):
        return state[rows]
    import keras

    return keras.ops.take(state, keras.ops.convert_to_tensor(rows), axis=0)
