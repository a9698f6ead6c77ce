"""Text as ids: vocabularies, language-model and fill-in-the-blank windows, sentence normalisation (notebook 04).

Moved out of nnutils.data, which still exposes these names for the notebooks that use them from there.
WordVectorizer (notebook 06) is TextVectorization in NumPy; PaddedBatches (notebook 07) feeds ids to Keras on every
backend.
"""

import re
import string

import keras
import numpy as np

from nnutils import _args


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

        _args.iterable("tokens", tokens, "a string or an iterable of string tokens", allow_str=True)
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
        _args.iterable("tokens", tokens, "a string or an iterable of string tokens", allow_str=True)
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


class WordVectorizer:
    """Words to padded ids as keras.layers.TextVectorization does it, in NumPy, so on every backend (notebook 06).

    `adapt(texts)` standardizes each text (ASCII letters lower-cased, Keras's punctuation set removed), splits it
    on ASCII whitespace and keeps the max_tokens - 2 most frequent words, ties broken by the word's UTF-8 bytes in
    reverse order, as Keras sorts them. Id 0 is padding (""), 1 out-of-vocabulary ("[UNK]"). Calling it on a list
    of texts gives an int64 array (texts, sequence_length): each text's ids, cut or padded with 0 to that length.
    """

    PUNCTUATION = re.compile(r'[!"#$%&()\*\+,\-\./:;<=>?@\[\\\]^_`{|}~\']')  # TextVectorization's set
    SPACE = re.compile(r"[ \t\n\v\f\r]+")
    LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)  # tf.strings.lower: ASCII only

    def __init__(self, max_tokens, sequence_length):
        self.max_tokens = _args.positive_int("max_tokens", max_tokens)
        if self.max_tokens < 3:
            raise ValueError(f"max_tokens must be >= 3 (padding, [UNK] and one word), got {max_tokens}")
        self.sequence_length = _args.positive_int("sequence_length", sequence_length)
        self.vocabulary = None

    def words(self, text):
        """One text's words: lower-cased, punctuation removed, split on whitespace."""
        if not isinstance(text, str):
            raise TypeError(f"texts must hold strings, got a {type(text).__name__}: {text!r}")
        return [w for w in self.SPACE.split(self.PUNCTUATION.sub("", text.translate(self.LOWER))) if w]

    def adapt(self, texts):
        """Build the vocabulary from texts (the training texts only)."""
        from collections import Counter

        counts = Counter(w for t in _texts(texts) for w in self.words(t))
        ranked = sorted(counts, key=lambda w: (counts[w], w.encode()), reverse=True)
        self.vocabulary = ["", "[UNK]"] + ranked[:self.max_tokens - 2]
        self.index = {w: i for i, w in enumerate(self.vocabulary)}
        return self

    def __call__(self, texts):
        if self.vocabulary is None:
            raise ValueError("call adapt(texts) first: the vocabulary is learned from the training texts")
        out = np.zeros((len(texts := _texts(texts)), self.sequence_length), np.int64)
        for row, t in enumerate(texts):
            ids = [self.index.get(w, 1) for w in self.words(t)[:self.sequence_length]]
            out[row, :len(ids)] = ids
        return out


def _texts(texts):
    return list(_args.iterable("texts", texts, "a list of strings"))


class PaddedBatches(keras.utils.PyDataset):
    """Batches of token-id sequences padded with 0 to the longest in each batch, for model.fit on every backend (notebook 07).

    `columns` is a tuple of equally long lists: a list of 1-D id sequences is padded batch by batch, a list of
    numbers (labels) is stacked. `to_batch(*arrays)` turns one batch's arrays into what the model takes
    (default: the tuple). With `buckets` (increasing lengths b0 < b1 < ...), an example goes to the bucket of
    its length (its longest sequence): below b0, [b0, b1), ..., from the last on; a bucket's examples, in the
    epoch's order, form its batches, so short sentences are not padded to long ones (notebook 08). With
    `shuffle`, every epoch of fit draws a new order from (seed, epoch); without it, the examples keep theirs.
    Give model.fit `batches.keras_input()`.
    """

    def __init__(self, columns, batch_size, *, shuffle=False, seed=0, buckets=None, drop_remainder=False,
                 to_batch=None):
        super().__init__()
        if not isinstance(columns, (tuple, list)) or not columns or len({len(c) for c in columns}) != 1:
            raise ValueError("columns must be a non-empty tuple of equally long lists (one entry per example)")
        if not len(columns[0]):
            raise ValueError("columns must hold at least one example")
        self.columns = [self._column(c) for c in columns]
        self.batch_size = _args.positive_int("batch_size", batch_size)
        if buckets is not None:
            buckets = np.asarray(buckets)
            if buckets.ndim != 1 or not buckets.size or not np.issubdtype(buckets.dtype, np.integer) \
                    or np.any(np.diff(buckets) <= 0):
                raise ValueError(f"buckets must be increasing ints (bucket boundaries), got {buckets.tolist()}")
        if to_batch is not None and not callable(to_batch):
            raise TypeError(f"to_batch must be callable, got {type(to_batch).__name__}")
        self.shuffle, self.seed, self.drop_remainder = bool(shuffle), seed, bool(drop_remainder)
        self.to_batch = to_batch or (lambda *arrays: arrays)
        lengths = [np.array([len(s) for s in c]) for c in self.columns if isinstance(c, list)]
        self.lengths = np.max(lengths, axis=0) if lengths else np.ones(len(columns[0]), int)
        self.bucket_of = np.zeros(len(self.lengths), int) if buckets is None else np.searchsorted(
            buckets, self.lengths, side="right")
        self.epoch, self._served, self._counting = 0, 0, False
        self.batches = self._batches()
        if not self.batches:
            raise ValueError(f"no batch: every bucket holds fewer than batch_size={batch_size} examples "
                             "and drop_remainder=True")

    @staticmethod
    def _column(column):
        if isinstance(column[0], (str, bytes)) or not np.ndim(column[0]) in (0, 1):
            raise ValueError("each column must hold id sequences (1-D) or numbers, "
                             f"got an entry {column[0]!r}")
        if np.ndim(column[0]) == 0:
            return np.asarray(column)
        return [np.asarray(s, dtype=np.int32) for s in column]

    def _batches(self):
        """This epoch's batches, each an array of example indices, in the order a bucket fills them."""
        n = len(self.lengths)
        order = np.random.default_rng([self.seed, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        open_, batches = {}, []
        for i in order:
            bucket = open_.setdefault(self.bucket_of[i], [])
            bucket.append(i)
            if len(bucket) == self.batch_size:
                batches.append(np.array(bucket))
                bucket.clear()
        if not self.drop_remainder:  # the partly filled batches close the epoch, by bucket
            batches += [np.array(b) for _, b in sorted(open_.items()) if b]
        return batches

    def __len__(self):
        return len(self.batches)  # the same every epoch: each bucket's examples do not change

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = self.batches[index]
        self._served += self._counting
        arrays = []
        for column in self.columns:
            if isinstance(column, list):
                padded = np.zeros((len(rows), max(len(column[i]) for i in rows)), np.int32)
                for r, i in enumerate(rows):
                    padded[r, :len(column[i])] = column[i]
                arrays.append(padded)
            else:
                arrays.append(column[rows])
        return self.to_batch(*arrays)

    def on_epoch_begin(self):
        """Keras calls this as each epoch starts: after an epoch that served every batch, a new order is drawn."""
        if self._served >= len(self):  # not after a batch Keras only peeked at (JAX does, to build the model)
            self.epoch += 1
            if self.shuffle:
                self.batches = self._batches()
        self._served, self._counting = 0, True

    def on_epoch_end(self):
        self._counting = False

    def keras_input(self):
        """What model.fit, evaluate and predict take: these batches, their lengths free to vary on every backend.

        On TensorFlow, Keras fixes every batch's shape to what its first two batches share; a tf.data pipeline
        over the same batches, with every dimension left open, avoids that. Each pass over it is an epoch.
        """
        if keras.backend.backend() != "tensorflow":
            return self
        import tensorflow as tf

        def one_epoch():
            self.on_epoch_begin()
            yield from (self[i] for i in range(len(self)))

        signature = keras.tree.map_structure(lambda a: tf.TensorSpec([None] * np.ndim(a), tf.as_dtype(a.dtype)),
                                             self[0])
        dataset = tf.data.Dataset.from_generator(one_epoch, output_signature=signature)
        return dataset.apply(tf.data.experimental.assert_cardinality(len(self)))
