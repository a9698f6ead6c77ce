"""Greedy decoding and beam search (notebook 07) and sampling (notebook 09) for any step-at-a-time model.

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


def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None):
    """softmax(logits / temperature) cut to the top_k tokens, then to the top_p nucleus, renormalised (notebook 09).

    ``logits`` (vocab,) or (n, vocab), -inf allowed; the result has shape (n, vocab), (1, vocab) for 1-D input.
    Tokens are ranked by a stable sort, so ties at the top_k boundary keep exactly k, the lower ids winning
    (top_k=1 is np.argmax); top_k above vocab keeps all. top_p is applied to the top_k-renormalised
    probabilities and keeps the fewest most probable tokens whose sum reaches top_p (to within 1e-12).
    """
    temperature, top_k, top_p = _check_filters(temperature, top_k, top_p)
    try:
        z = np.asarray(logits)
    except (TypeError, ValueError) as error:
        raise TypeError(f"logits must be a numeric array, got {type(logits).__name__}: {error}") from None
    if z.dtype.kind not in "iuf":
        raise TypeError(f"logits must be a numeric (int or float) array, got dtype {z.dtype}")
    if z.ndim not in (1, 2) or z.shape[-1] == 0:
        raise ValueError(f"logits must have shape (vocab,) or (n, vocab) with vocab >= 1, got shape {z.shape}")
    z = np.atleast_2d(z).astype(np.float64)
    if np.isnan(z).any() or np.isposinf(z).any() or not np.isfinite(z).any(axis=1).all():
        raise ValueError("logits must be finite or -inf, with at least one finite value in each row")
    z = (z - z.max(axis=1, keepdims=True)) / temperature  # stable: the largest becomes exp(0) = 1
    order = np.argsort(-z, axis=1, kind="stable")  # most probable first, ties to the lower id
    p = np.exp(z)
    if top_k is not None and top_k < z.shape[1]:
        np.put_along_axis(p, order[:, top_k:], 0.0, axis=1)
    p /= p.sum(axis=1, keepdims=True)
    if top_p is not None:
        cumulative = np.cumsum(np.take_along_axis(p, order, axis=1), axis=1)
        n_keep = 1 + (cumulative < top_p - 1e-12).sum(axis=1)  # the first token whose running sum reaches top_p
        keep = np.zeros(p.shape, dtype=bool)
        np.put_along_axis(keep, order, np.arange(p.shape[1]) < n_keep[:, None], axis=1)
        p = np.where(keep, p, 0.0)
        p /= p.sum(axis=1, keepdims=True)
    return p


def sample(step_fn, initial_state, bos_id, max_len, temperature=1.0, top_k=None, top_p=None, eos_id=None,
           seed=None):
    """Tokens drawn one at a time from next_token_probs of each step, as a list of ints (notebook 09).

    Same step-function protocol and output as greedy_decode's tokens: <bos> excluded, and the list ends in
    <eos> if one was drawn within ``max_len`` tokens (eos_id=None: always ``max_len`` tokens). Draws come
    from ``numpy.random.default_rng(seed)``, so a seed fixes the tokens; top_k=1 is greedy decoding.
    """
    _check_common(step_fn, bos_id, eos_id, max_len, eos_optional=True)
    _check_filters(temperature, top_k, top_p)
    rng = np.random.default_rng(seed)
    tokens, state, last = [], initial_state, np.array([bos_id])
    for _ in range(max_len):
        log_probs, state = _call(step_fn, last, state, 1)
        probs = next_token_probs(log_probs[0], temperature, top_k, top_p)[0]
        token = int(rng.choice(len(probs), p=probs))
        tokens.append(token)
        if token == eos_id:
            break
        last = np.array([token])
    return tokens


def _check_filters(temperature, top_k, top_p):
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)) \
            or not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k must be None or an int >= 1, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float, np.integer, np.floating))
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or a number in (0, 1], got {top_p!r}")
    return float(temperature), None if top_k is None else int(top_k), None if top_p is None else float(top_p)


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


def _check_common(step_fn, bos_id, eos_id, max_len, eos_optional=False):
    if not callable(step_fn):
        raise TypeError(f"step_fn must be callable as step_fn(tokens, state), got {type(step_fn).__name__}")
    ids = [("bos_id", bos_id)] + ([] if eos_optional and eos_id is None else [("eos_id", eos_id)])
    for argument, value in ids:
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
