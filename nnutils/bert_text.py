"""BERT's text for notebook 09: masking, WordPiece, packing into blocks, next-sentence pairs, batches.

Everything here is NumPy (and the ``tokenizers`` package), so that it prepares batches for any backend.
The masking is the one of Devlin et al. (2019): a fraction of the ordinary tokens is chosen; of those,
80 % are replaced by [MASK], 10 % by a random token and 10 % left as they are, and the loss is taken at
the chosen positions only.
"""

import keras
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


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0 to 4 in every vocabulary trained here
PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID = range(5)


def train_wordpiece(sentences, vocab_size=8000, min_frequency=2):
    """A lower-cased WordPiece tokenizer trained on ``sentences`` with the tokenizers package (notebook 09).

    Ids 0 to 4 are SPECIAL_TOKENS; ``tokenizer.encode_batch(texts, add_special_tokens=False)`` gives the ids.
    Two trainings on the same text can differ in a few rarely used tokens, so a checkpoint ships its own.
    """
    from tokenizers import BertWordPieceTokenizer

    sentences = _sentences("sentences", sentences)
    tokenizer = BertWordPieceTokenizer(lowercase=True, clean_text=True, strip_accents=True)
    tokenizer.train_from_iterator(sentences, vocab_size=positive_int("vocab_size", vocab_size),
                                  min_frequency=positive_int("min_frequency", min_frequency),
                                  special_tokens=list(SPECIAL_TOKENS), show_progress=False)
    return tokenizer


def tokenizer_from_vocab(vocab):
    """The lower-cased WordPiece tokenizer of a vocabulary list (token i has id i), e.g. a checkpoint's (notebook 09)."""
    from tokenizers import BertWordPieceTokenizer

    vocab = _sentences("vocab", vocab)
    if tuple(vocab[:len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS or len(set(vocab)) != len(vocab):
        raise ValueError(f"vocab must start with {SPECIAL_TOKENS} and hold each token once")
    return BertWordPieceTokenizer({token: i for i, token in enumerate(vocab)}, lowercase=True, clean_text=True,
                                  strip_accents=True)


def _sentences(argument, sentences):
    if isinstance(sentences, str):
        raise TypeError(f"{argument} must be a list of strings, not one string")
    sentences = list(sentences)
    if not sentences or not all(isinstance(s, str) for s in sentences):
        raise TypeError(f"{argument} must be a non-empty list of strings")
    return sentences


def _token_lists(argument, sequences):
    if isinstance(sequences, np.ndarray) or not isinstance(sequences, (list, tuple)) or not sequences:
        raise TypeError(f"{argument} must be a non-empty list of token-id lists")
    try:
        sequences = [list(s) for s in sequences]
    except TypeError:
        raise TypeError(f"{argument} must be a list of token-id lists, not a flat list of ids") from None
    for s in sequences:
        for t in s:
            if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
                raise TypeError(f"{argument} must hold int token ids, got {t!r}")
    return [list(map(int, s)) for s in sequences]


def pack_pair(a, b, max_len):
    """[CLS] a [SEP] b [SEP] (b=None: [CLS] a [SEP]), the longer side cut first: (ids, segments) lists (notebook 09)."""
    max_len = positive_int("max_len", max_len)
    a, b = list(a), (None if b is None else list(b))
    room = max_len - (3 if b is not None else 2)
    if room < (2 if b is not None else 1):
        raise ValueError(f"max_len must leave room for the tokens and the special tokens, got {max_len}")
    while len(a) + (len(b) if b is not None else 0) > room:
        if b is not None and len(b) > len(a):
            b.pop()
        else:
            a.pop()
    ids = [CLS_ID] + a + [SEP_ID]
    segments = [0] * len(ids)
    if b is not None:
        ids += b + [SEP_ID]
        segments += [1] * (len(b) + 1)
    return ids, segments


def next_sentence_pairs(sequences, max_len, seed=0):
    """BERT's next-sentence examples from consecutive sentences, packed to fill max_len (notebook 09).

    Segment A takes consecutive sentences from the stream while they fit half the room (at least one);
    half the time segment B continues with the sentences after A (is_next = 1), otherwise it is taken from
    a random place in the stream (is_next = 0); B fills the rest of the room, and pack_pair cuts what
    overflows. Returns (ids, segments) as lists of lists and is_next as an int32 array.
    """
    sequences = [s for s in _token_lists("sequences", sequences) if s]
    max_len = positive_int("max_len", max_len)
    if len(sequences) < 4:
        raise ValueError(f"sequences must hold at least 4 non-empty sentences, got {len(sequences)}")
    rng = np.random.default_rng(seed)
    room = max_len - 3
    ids, segments, is_next = [], [], []

    def fill(start, budget):
        taken, j = [], start
        while j < len(sequences) and (not taken or len(taken) + len(sequences[j]) <= budget):
            taken += sequences[j]
            j += 1
        return taken, j

    i = 0
    while i < len(sequences) - 1:
        a, after_a = fill(i, room // 2)
        real = after_a < len(sequences) and rng.random() < 0.5
        if real:
            b, i = fill(after_a, room - min(len(a), room // 2))
        else:  # B starts anywhere but in A or right after it: [0, i) or (after_a, end)
            last = min(after_a, len(sequences) - 1)
            n_starts = len(sequences) - (last - i + 1)
            if n_starts == 0:
                break
            start = int(rng.integers(n_starts))
            start += (last - i + 1) if start >= i else 0
            b, _ = fill(start, room - min(len(a), room // 2))
            i = after_a
        pair_ids, pair_segments = pack_pair(a, b, max_len)
        ids.append(pair_ids)
        segments.append(pair_segments)
        is_next.append(int(real))
    return ids, segments, np.array(is_next, dtype=np.int32)


def pad_batch(rows, multiple=8):
    """Right-pad lists of ids with 0 to the longest, rounded up to a multiple: (batch, T) int32 (notebook 09)."""
    rows = _token_lists("rows", rows)
    length = -(-max(len(r) for r in rows) // positive_int("multiple", multiple)) * multiple
    out = np.zeros((len(rows), length), dtype=np.int32)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def masked_positions(weights, max_predictions=None):
    """The chosen positions of mask_tokens' weights (batch, T) as (positions, position_weights), (batch, P) (notebook 09).

    Rows with fewer than P chosen positions are filled with position 0 and weight 0.
    """
    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(f"weights must have shape (batch, T), got {weights.shape}")
    counts = (weights > 0).sum(axis=1)
    p = int(counts.max()) if max_predictions is None else positive_int("max_predictions", max_predictions)
    positions = np.zeros((len(weights), max(p, 1)), dtype=np.int32)
    position_weights = np.zeros((len(weights), max(p, 1)), dtype=np.float32)
    for row in range(len(weights)):
        chosen = np.flatnonzero(weights[row] > 0)[:p]
        positions[row, :len(chosen)] = chosen
        position_weights[row, :len(chosen)] = 1.0
    return positions, position_weights


def encode_sentences(tokenizer, texts, max_len):
    """Single sentences as [CLS] tokens [SEP], cut to max_len and right-padded: (n, max_len) int32 (notebook 09)."""
    texts = _sentences("texts", texts)
    max_len = positive_int("max_len", max_len)
    rows = [pack_pair(e.ids, None, max_len)[0] for e in tokenizer.encode_batch(texts, add_special_tokens=False)]
    out = np.zeros((len(rows), max_len), dtype=np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def pack_blocks(sequences, max_len):
    """Contiguous text in full blocks: [CLS] t1 t2 [SEP] t3 ... [SEP], sentences joined by [SEP] (notebook 09).

    The sentences are read in the given order and cut wherever a block is full (a sentence may continue
    in the next block), as in RoBERTa's FULL-SENTENCES; the incomplete last block is dropped. Returns
    (n_blocks, max_len) int32, with no padding.
    """
    sequences = _token_lists("sequences", sequences)
    max_len = positive_int("max_len", max_len)
    if max_len < 3:
        raise ValueError(f"max_len must be at least 3 ([CLS], one token, [SEP]), got {max_len}")
    stream = np.fromiter((t for s in sequences if s for t in s + [SEP_ID]), dtype=np.int32)
    room = max_len - 2
    n = len(stream) // room
    if n == 0:
        raise ValueError(f"sequences hold {len(stream)} tokens with separators, fewer than one block of {room}")
    blocks = np.empty((n, max_len), dtype=np.int32)
    blocks[:, 0], blocks[:, -1] = CLS_ID, SEP_ID
    blocks[:, 1:-1] = stream[:n * room].reshape(n, room)
    return blocks


class MLMBatches(keras.utils.PyDataset):
    """Masked-LM batches from packed blocks, masked afresh at every visit (dynamic masking) (notebook 09).

    Batch ``i`` depends only on (seed, i): the blocks are visited in a new random order in each pass, and
    the masking of batch i is drawn from its own generator, so a run resumed at step i sees the same data.
    Each item is ({"token_ids", "mask_positions"}, labels at the positions, weights), all (batch, P) but
    token_ids (batch, T); P = round(0.15 * (T - 2)), at least 1, since every block has T - 2 ordinary tokens.
    """

    def __init__(self, blocks, batch_size, vocab_size, steps, start=0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.blocks = np.asarray(blocks, dtype=np.int32)
        if self.blocks.ndim != 2:
            raise ValueError(f"blocks must have shape (n, T), got {self.blocks.shape}")
        self.batch_size, self.vocab_size = positive_int("batch_size", batch_size), positive_int("vocab_size", vocab_size)
        if self.blocks.size and (self.blocks.min() < 0 or self.blocks.max() >= self.vocab_size):
            raise ValueError(f"blocks must hold ids in [0, vocab_size) = [0, {self.vocab_size}), got values from "
                             f"{self.blocks.min()} to {self.blocks.max()}")
        if self.batch_size > len(self.blocks):
            raise ValueError(f"batch_size must be at most the number of blocks, {len(self.blocks)}, got {batch_size}")
        self.steps, self.start = positive_int("steps", steps), non_negative_int("start", start)
        if self.start >= self.steps:
            raise ValueError(f"start must be smaller than steps={self.steps}, got {self.start}")
        self.seed, self.per_pass = non_negative_int("seed", seed), len(self.blocks) // self.batch_size
        self.max_predictions = max(1, int(np.floor(0.15 * (self.blocks.shape[1] - 2) + 0.5)))

    def __len__(self):
        return self.steps - self.start

    def rows(self, step):
        """The block indices of batch ``step``."""
        order = np.random.default_rng([self.seed, step // self.per_pass]).permutation(len(self.blocks))
        j = step % self.per_pass
        return order[j * self.batch_size:(j + 1) * self.batch_size]

    def __getitem__(self, index):
        step = self.start + index
        ids = self.blocks[self.rows(step)]
        inputs, labels, weights = mask_tokens(ids, MASK_ID, self.vocab_size, special_ids=(PAD_ID, CLS_ID, SEP_ID),
                                              seed=np.random.default_rng([self.seed, step, 1]))
        positions, position_weights = masked_positions(weights, self.max_predictions)
        return ({"token_ids": inputs, "mask_positions": positions},
                np.take_along_axis(labels, positions, axis=1), position_weights)
