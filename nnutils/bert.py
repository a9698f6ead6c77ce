"""Masked language modelling, BERT's pre-training task: which tokens to hide and predict (notebook 09).

``mask_tokens`` is pure NumPy, so that it can prepare batches for any backend (or a ``tf.data`` pipeline
through ``numpy_function``). The recipe is the one of Devlin et al. (2019): a fraction of the ordinary
tokens is chosen; of those, 80 % are replaced by [MASK], 10 % by a random token and 10 % left as they are,
and the loss is taken at the chosen positions only.
"""

import numpy as np

from nnutils._args import non_negative_int, positive_int


def mask_tokens(ids, mask_id, vocab_size, special_ids=(), rate=0.15, seed=None):
    """BERT's masking of a batch of token ids: (inputs, labels, weights) for masked-LM training (notebook 09).

    In each row, exactly floor(rate * n + 0.5) of its n eligible positions (neither in ``special_ids`` nor
    ``mask_id``) are chosen uniformly without replacement, and at least 1 if n >= 1. Each chosen position
    independently becomes ``mask_id`` with probability 0.8, a token drawn uniformly from the ids that are
    neither special nor ``mask_id`` with probability 0.1 (it may equal the original), and stays unchanged
    otherwise. ``inputs`` and ``labels`` (= ``ids``) are int32, ``weights`` float32 (1.0 where chosen), all
    of the shape of ``ids``: (batch, T), or (T,) for a 1-D sequence. ``seed`` goes to np.random.default_rng.
    """
    vocab_size = positive_int("vocab_size", vocab_size)
    mask_id = non_negative_int("mask_id", mask_id)
    if mask_id >= vocab_size:
        raise ValueError(f"mask_id must be in [0, vocab_size) = [0, {vocab_size}), got {mask_id}")
    special = _special_ids(special_ids, vocab_size)
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)) or not 0 < rate < 1:
        raise ValueError(f"rate must be a number in (0, 1), got {rate!r}")
    ids = _ids(ids, vocab_size)
    ordinary = np.setdiff1d(np.arange(vocab_size), np.array(sorted(special | {mask_id}), dtype=np.int64))
    if ordinary.size == 0:
        raise ValueError(f"vocab_size {vocab_size} leaves no token that is neither mask_id nor a special id, "
                         "so there is nothing to draw a random replacement from")

    rng = np.random.default_rng(seed)
    rows = np.atleast_2d(ids)
    eligible = ~np.isin(rows, list(special | {mask_id}))
    n_eligible = eligible.sum(axis=1)
    n_chosen = np.where(n_eligible > 0, np.maximum(1, np.floor(rate * n_eligible + 0.5)), 0).astype(np.int64)
    keys = np.where(eligible, rng.random(rows.shape), np.inf)  # a random order of the eligible positions
    rank = np.argsort(np.argsort(keys, axis=1, kind="stable"), axis=1, kind="stable")
    chosen = eligible & (rank < n_chosen[:, None])

    action = rng.random(rows.shape)
    inputs = rows.copy()
    inputs[chosen & (action < 0.8)] = mask_id
    randomised = chosen & (action >= 0.8) & (action < 0.9)
    inputs[randomised] = rng.choice(ordinary, size=int(randomised.sum()))
    shape = ids.shape
    return (inputs.reshape(shape).astype(np.int32), ids.astype(np.int32),
            chosen.reshape(shape).astype(np.float32))


def _special_ids(special_ids, vocab_size):
    try:
        values = list(special_ids)
    except TypeError:
        raise TypeError(f"special_ids must be a sequence of token ids, got {type(special_ids).__name__}") from None
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"special_ids must hold int token ids, got {value!r}")
        if not 0 <= value < vocab_size:
            raise ValueError(f"special_ids must be in [0, vocab_size) = [0, {vocab_size}), got {value}")
    return {int(value) for value in values}


def _ids(ids, vocab_size):
    ids = np.asarray(ids)
    if ids.dtype == bool or not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"ids must be an int array of token ids, got dtype {ids.dtype}")
    if ids.ndim not in (1, 2):
        raise ValueError(f"ids must have shape (T,) or (batch, T), got shape {ids.shape}")
    if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"ids must be in [0, vocab_size) = [0, {vocab_size}), got values from {ids.min()} to "
                         f"{ids.max()}")
    return ids
