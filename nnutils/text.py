"""Text as ids: vocabularies, language-model and fill-in-the-blank windows, sentence normalisation (notebook 04).

Moved out of nnutils.data, which still exposes these names for the notebooks that use them from there.
"""

import numpy as np


class Vocab:
    """Token <-> id mapping with reserved tokens <pad> = 0, <unk> = 1, <eos> = 2, and <bos> = 3 if bos=True (notebook 04).

    `Vocab(tokens)` counts the tokens (a string counts as its characters) and gives ids 3, 4, ... to those
    seen at least min_freq times, most frequent first, ties in sorted order; max_size caps their number.
    <pad> sits at id 0 so that Keras's masking (Embedding(mask_zero=True)) and zero padding agree with it;
    unknown tokens encode to <unk>; <eos> ends a sequence when encode(..., add_eos=True). A decoder that
    generates text (notebook 07) also needs <bos>, the token it starts from: Vocab(..., bos=True).
    """

    PAD, UNK, EOS, BOS = "<pad>", "<unk>", "<eos>", "<bos>"
    RESERVED = (PAD, UNK, EOS)
    pad_id, unk_id, eos_id = 0, 1, 2

    def __init__(self, tokens, min_freq=1, max_size=None, bos=False):
        from collections import Counter

        if isinstance(tokens, (bytes, bytearray)) or not hasattr(tokens, "__iter__"):
            raise TypeError(f"tokens must be a string or an iterable of string tokens, got {type(tokens).__name__}")
        tokens = list(tokens)
        if not all(isinstance(t, str) for t in tokens):
            bad = next(t for t in tokens if not isinstance(t, str))
            raise TypeError(f"tokens must hold strings, got a {type(bad).__name__}: {bad!r}")
        if isinstance(min_freq, bool) or not isinstance(min_freq, (int, np.integer)) or min_freq < 1:
            raise ValueError(f"min_freq must be a positive int, got {min_freq!r}")
        if max_size is not None and (isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer))
                                     or max_size < 0):
            raise ValueError(f"max_size must be a non-negative int or None, got {max_size!r}")
        if not isinstance(bos, bool):
            raise TypeError(f"bos must be True or False, got {bos!r}")
        self.reserved = self.RESERVED + ((self.BOS,) if bos else ())
        self.bos_id = 3 if bos else None
        counts = Counter(t for t in tokens if t not in self.reserved and t != self.BOS)
        kept = sorted((t for t, n in counts.items() if n >= min_freq), key=lambda t: (-counts[t], t))
        self.itos = list(self.reserved) + kept[:max_size]
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.counts = counts  # every token's count in the data, kept or not

    def __len__(self):
        return len(self.itos)

    def __contains__(self, token):
        return token in self.stoi

    def __getitem__(self, token):
        return self.stoi.get(token, self.unk_id)

    def __repr__(self):
        first = self.itos[len(self.reserved):len(self.reserved) + 5]
        return f"Vocab(size={len(self)}, first={first}{', bos=True' if self.bos_id is not None else ''})"

    def encode(self, tokens, add_eos=False, add_bos=False):
        """Ids (int32 array) of a sequence of tokens (a string counts as its characters), unknown -> <unk> (notebook 04)."""
        if isinstance(tokens, (bytes, bytearray)) or not hasattr(tokens, "__iter__"):
            raise TypeError(f"tokens must be a string or an iterable of string tokens, got {type(tokens).__name__}")
        if add_bos and self.bos_id is None:
            raise ValueError("add_bos=True needs a vocabulary built with bos=True")
        ids = [self.stoi.get(t, self.unk_id) if isinstance(t, str) else _not_a_token(t) for t in tokens]
        ids = ([self.bos_id] if add_bos else []) + ids + ([self.eos_id] if add_eos else [])
        return np.array(ids, dtype=np.int32)

    def decode(self, ids, sep=None, skip_reserved=False):
        """Tokens of a 1-D sequence of ids, as a list, or joined by sep (e.g. "" for characters) (notebook 04)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"ids must be a 1-D sequence of ints, got shape {ids.shape} and dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), got values in [{ids.min()}, {ids.max()}]")
        tokens = [self.itos[i] for i in ids.tolist() if not (skip_reserved and i < len(self.reserved))]
        return tokens if sep is None else sep.join(tokens)

    def one_hot(self, ids):
        """One-hot float32 array (..., len(vocab)) of an int array of ids (notebook 04)."""
        ids = np.asarray(ids)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must hold ints, got dtype {ids.dtype}")
        if ids.size and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"ids must lie in [0, {len(self)}), got values in [{ids.min()}, {ids.max()}]")
        return np.eye(len(self), dtype=np.float32)[ids.astype(np.int64)]


def _not_a_token(token):
    raise TypeError(f"tokens must hold strings, got a {type(token).__name__}: {token!r}")


def lm_windows(ids, seq_len, stride=None):
    """Language-model pairs from one id sequence: x[i] = ids[s:s+seq_len], y[i] = ids[s+1:s+seq_len+1] (notebook 04).

    Windows start every `stride` ids (default seq_len, non-overlapping); both arrays are int32 (n, seq_len).
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D array of ints, got shape {ids.shape} and dtype {ids.dtype}")
    for argument, value in (("seq_len", seq_len), ("stride", seq_len if stride is None else stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{argument} must be a positive int, got {value!r}")
    stride = seq_len if stride is None else stride
    if len(ids) < seq_len + 1:
        raise ValueError(f"ids must hold at least seq_len + 1 = {seq_len + 1} ids, got {len(ids)}")
    starts = np.arange(0, len(ids) - seq_len, stride)
    index = starts[:, None] + np.arange(seq_len)[None, :]
    return ids[index].astype(np.int32), ids[index + 1].astype(np.int32)


def normalize_sentence(text):
    """Lower case, one Unicode form, spaces around punctuation: '¿Qué tal?' -> '¿ qué tal ?' (notebook 07)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    import re
    import unicodedata

    text = unicodedata.normalize("NFC", text).lower()
    text = re.sub(r'([.,!?¿¡;:"])', r" \1 ", text)
    return " ".join(text.split())  # also turns non-breaking and narrow spaces into plain ones


def blank_windows(ids, context, mask_id, stride=1):
    """Fill-in-the-blank pairs: x[i] = a window of 2*context+1 ids with its centre set to mask_id, y[i] = that centre id (notebook 06).

    Windows start every `stride` ids; x is int32 (n, 2*context+1), y is int32 (n,). mask_id should be an id that never
    occurs in the data (e.g. len(vocab)), so that the model can tell the blank from a real token.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"ids must be a 1-D array of ints, got shape {ids.shape} and dtype {ids.dtype}")
    for argument, value in (("context", context), ("stride", stride)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{argument} must be a positive int, got {value!r}")
    if isinstance(mask_id, bool) or not isinstance(mask_id, (int, np.integer)) or mask_id < 0:
        raise ValueError(f"mask_id must be a non-negative int, got {mask_id!r}")
    width = 2 * context + 1
    if len(ids) < width:
        raise ValueError(f"ids must hold at least 2 * context + 1 = {width} ids, got {len(ids)}")
    starts = np.arange(0, len(ids) - width + 1, stride)
    x = ids[starts[:, None] + np.arange(width)[None, :]].astype(np.int32)
    y = x[:, context].copy()
    x[:, context] = mask_id
    return x, y
