"""Every data set of the course, fetched through Keras's cache and verified by sha256 (notebook 01).

Online, files are downloaded once into ``$KERAS_HOME/datasets`` (default ``~/.keras/datasets``).
Offline, the same folder must already hold them: run ``make data`` once while online, or copy a
filled Keras cache there. ``python -m nnutils.data`` fetches everything.
"""

import gzip
import hashlib
import os
from pathlib import Path

import numpy as np

from ._args import non_negative_int
from .text import PaddedBatches, Vocab, WordVectorizer, blank_windows, lm_windows, normalize_sentence  # noqa: F401 (notebooks 04-09 use data.*)

# name -> (file name in the cache, public origin URL, sha256, sub-folder of the cache)
_MNIST_ORIGIN = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_FASHION_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
FILES = {
    "mnist-train-images": ("train-images-idx3-ubyte.gz", _MNIST_ORIGIN,
                           "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", "datasets/mnist-idx"),
    "mnist-train-labels": ("train-labels-idx1-ubyte.gz", _MNIST_ORIGIN,
                           "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", "datasets/mnist-idx"),
    "mnist-test-images": ("t10k-images-idx3-ubyte.gz", _MNIST_ORIGIN,
                          "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", "datasets/mnist-idx"),
    "mnist-test-labels": ("t10k-labels-idx1-ubyte.gz", _MNIST_ORIGIN,
                          "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", "datasets/mnist-idx"),
    "fashion-train-images": ("train-images-idx3-ubyte.gz", _FASHION_ORIGIN,
                             "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", "datasets/fashion-mnist"),
    "fashion-train-labels": ("train-labels-idx1-ubyte.gz", _FASHION_ORIGIN,
                             "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", "datasets/fashion-mnist"),
    "fashion-test-images": ("t10k-images-idx3-ubyte.gz", _FASHION_ORIGIN,
                            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", "datasets/fashion-mnist"),
    "fashion-test-labels": ("t10k-labels-idx1-ubyte.gz", _FASHION_ORIGIN,
                            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", "datasets/fashion-mnist"),
    "tinyshakespeare": ("tinyshakespeare.txt",
                        "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/",
                        "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed", "datasets"),
    "rt-polaritydata": ("rt-polaritydata.tar.gz", "https://www.cs.cornell.edu/people/pabo/movie-review-data/",
                        "a05befe52aafda71d458d188a1c54506a998b1308613ba76bbda2e5029409ce9", "datasets"),
}

# sha256 of the two members of rt-polaritydata.tar.gz that load_movie_reviews reads (MANIFEST.md)
_MOVIE_REVIEW_MEMBERS = {
    "pos": ("rt-polaritydata/rt-polarity.pos", "d79ef14009bbf87cd6be21f91c3ea1a3cbcb73b34dfb4231aef7bbcd7677abc4"),
    "neg": ("rt-polaritydata/rt-polarity.neg", "4af43bf489620b498a0852c5a8c6a535155dec7985fdfea782b8f7756b957ccc"),
}

MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


class DatasetUnavailableError(FileNotFoundError):
    """A data set file is neither in the Keras cache nor downloadable (offline)."""


class CorruptedDatasetError(ValueError):
    """A cached data set file does not have the sha256 it should have."""


def check_sha256(path, sha256, fix):
    """Raise CorruptedDatasetError naming path, both hashes and how to fix it, unless path has this sha256 (notebook 01)."""
    actual = sha256_of(path)
    if actual != sha256:
        raise CorruptedDatasetError(f"{path} is corrupted: its sha256 is {actual}, expected {sha256}. {fix}")


def cache_dir():
    """The Keras cache folder that get_file uses: $KERAS_HOME, else ~/.keras (/tmp/.keras if not writable)."""
    base = Path(os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))))
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError:
        pass
    return base if os.access(base, os.W_OK) else Path("/tmp/.keras")


def sha256_of(path):
    """The sha256 hex digest of a file, read in chunks (notebook 01)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(name):
    """Path of one data set file from FILES, verified by sha256; downloads it when online (notebook 01)."""
    if name not in FILES:
        raise ValueError(f"name must be one of {sorted(FILES)}, got {name!r}")
    fname, origin, sha256, subdir = FILES[name]
    folder = cache_dir() / subdir
    path = folder / fname
    if path.exists():
        check_sha256(path, sha256, f"Delete it and run again while online (it will be downloaded from {origin + fname}), "
                     "or copy a good file there (`make data` on a machine with a network).")
        return str(path)
    import keras

    try:
        return keras.utils.get_file(fname, origin=origin + fname, file_hash=sha256, hash_algorithm="sha256",
                                    cache_dir=str(cache_dir()), cache_subdir=subdir)
    except Exception as error:
        if path.exists():  # never leave a partial or unverified download behind
            path.unlink()
        raise _unavailable(repr(fname), folder, origin + fname, error,
                           f"datasets/{subdir.removeprefix('datasets').strip('/')}") from error


# notebook 09's pretrained BERT checkpoints, shipped in the repository's data/ folder (provenance in the .json
# beside each): name -> (path under data/, sha256). Online without a checkout they come from the release tag.
CHECKPOINTS = {
    "bert-mlm-010min": ("bert/bert_mlm_010min.npz", "32e6b4edd7f0fbb30abcdbdf06a58fc1835089200f651c36897aee5abdfd64b4"),
    "bert-mlm-030min": ("bert/bert_mlm_030min.npz", "f3324a5c60b255b123368fb25b363830856cbb0b1677d99d9a0c1830bd1d121e"),
    "bert-mlm-060min": ("bert/bert_mlm_060min.npz", "b3e52664db04d9c4ae2ebdfb4f9f2febf17584d5d10f764891d8f8c0bff02642"),
    "bert-mlm-120min": ("bert/bert_mlm_120min.npz", "e26da16e5c17913b1b1ad551213cda7d8301edd9cf957c4f425dc00d3e294f67"),
    # tools/bert_recipe.py's measurement of the recipe's choices (a JSON record, not weights)
    "bert-recipe-ablation": ("bert/recipe_ablation.json",
                             "c3a41e2663412343178c748475995f7d76fb3d66e89ad5cee5885f3f03085425"),
}
CHECKPOINT_ORIGIN = "https://raw.githubusercontent.com/dl-course/keras-dl-course/v0.1.0/data/"


def fetch_checkpoint(name):
    """Path of a shipped checkpoint, verified by sha256: from the checkout's data/, else the cache or a download (notebook 09)."""
    if name not in CHECKPOINTS:
        raise ValueError(f"name must be one of {sorted(CHECKPOINTS)}, got {name!r}")
    relative, sha256 = CHECKPOINTS[name]
    candidates = [Path(__file__).resolve().parent.parent / "data" / relative, cache_dir() / "nnutils" / relative]
    for path in candidates:
        if path.exists():
            check_sha256(path, sha256, f"Restore it with `git checkout -- data/{relative}`, or delete it and run again online.")
            return str(path)
    import keras

    folder = candidates[1].parent
    try:
        return keras.utils.get_file(candidates[1].name, origin=CHECKPOINT_ORIGIN + relative, file_hash=sha256,
                                    hash_algorithm="sha256", cache_dir=str(cache_dir()),
                                    cache_subdir=str(Path("nnutils") / Path(relative).parent))
    except Exception as error:
        if candidates[1].exists():  # never leave a partial or unverified download behind
            candidates[1].unlink()
        raise DatasetUnavailableError(
            f"Checkpoint file {relative!r} is neither in this checkout nor cached, and could not be downloaded.\n"
            f"  looked in: {candidates[0].parent} and {folder}\n  origin:    {CHECKPOINT_ORIGIN + relative}\n"
            f"  error:     {error}\n"
            "Fix it: run from a clone of the course repository (the file is in its data/ folder), or go online "
            "once, or copy the file into one of the folders above.") from error


def _unavailable(what, looked_in, origin, error, cached_path):
    """The error for a file that is neither cached nor downloadable: names it, where we looked, and both fixes."""
    return DatasetUnavailableError(
        f"Data file {what} is not in the Keras cache and could not be downloaded.\n"
        f"  looked in: {looked_in}\n  origin:    {origin}\n  error:     {error}\n"
        "Fix it in one of two ways:\n"
        "  1. go online once and run again (or `make data`), which fills the cache;\n"
        f"  2. copy a filled Keras cache (a folder with {cached_path}) to ~/.keras or point $KERAS_HOME at it.")


def read_idx(path):
    """Read a gzipped IDX file (the MNIST format) into a uint8 array of its stored shape (notebook 01)."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"path {path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"path {path} holds {data.size} bytes of data, its header says {shape}")
    return data.reshape(shape)


def _subset(argument, n, total):
    if n is None:
        return total
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= total:
        raise ValueError(f"{argument} must be an int in [1, {total}] or None, got {n!r}")
    return int(n)


def load_mnist(n_train=None, n_test=None):
    """MNIST from the original LeCun IDX files: ((x_train, y_train), (x_test, y_test)), uint8 (notebook 01)."""
    x_train, y_train = read_idx(fetch("mnist-train-images")), read_idx(fetch("mnist-train-labels"))
    x_test, y_test = read_idx(fetch("mnist-test-images")), read_idx(fetch("mnist-test-labels"))
    n_train, n_test = _subset("n_train", n_train, len(x_train)), _subset("n_test", n_test, len(x_test))
    return (x_train[:n_train], y_train[:n_train]), (x_test[:n_test], y_test[:n_test])


def load_fashion_mnist(n_train=None, n_test=None):
    """Fashion-MNIST through keras.datasets, its cached files checked by sha256 first (notebook 02)."""
    import keras

    for part in ("train-images", "train-labels", "test-images", "test-labels"):
        fetch(f"fashion-{part}")  # Keras's own loader checks no hash, so verify (or download) first
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    n_train, n_test = _subset("n_train", n_train, len(x_train)), _subset("n_test", n_test, len(x_test))
    return (x_train[:n_train], y_train[:n_train]), (x_test[:n_test], y_test[:n_test])


def load_shakespeare():
    """Tiny Shakespeare (Karpathy's char-rnn corpus) as one string of 1,115,394 characters (notebook 04)."""
    return Path(fetch("tinyshakespeare")).read_bytes().decode("utf-8")


def shakespeare_split(text=None, train_fraction=0.9):
    """(train, validation) strings: first 90% and last 10% of tiny Shakespeare, as nanoGPT splits it (notebook 04)."""
    text = load_shakespeare() if text is None else text
    if not isinstance(text, str) or len(text) < 2:
        raise TypeError(f"text must be a string of at least 2 characters or None, got {type(text).__name__}")
    if isinstance(train_fraction, bool) or not isinstance(train_fraction, (int, float)) or not 0 < train_fraction < 1:
        raise ValueError(f"train_fraction must be a number in (0, 1), got {train_fraction!r}")
    n = min(max(int(len(text) * train_fraction), 1), len(text) - 1)
    return text[:n], text[n:]


def load_movie_reviews():
    """Movie Review polarity (Pang & Lee 2005): texts (10662,) str, labels (10662,) int32, 1 = positive (notebook 06).

    The 5,331 positive snippets come first, then the 5,331 negative ones. The files are Windows-1252
    (cp1252): decoded with Latin-1, byte 0x85 ("...") would become U+0085, which str.splitlines() takes
    for a line break, so lines are split on "\\n" only. Trailing spaces are stripped. The members are read
    straight from the hash-verified archive (nothing is extracted) and checked by sha256.
    """
    import tarfile

    texts, labels = [], []
    with tarfile.open(fetch("rt-polaritydata"), "r:gz") as archive:
        for label, part in ((1, "pos"), (0, "neg")):
            member, sha256 = _MOVIE_REVIEW_MEMBERS[part]
            raw = archive.extractfile(member).read()
            if hashlib.sha256(raw).hexdigest() != sha256:
                raise CorruptedDatasetError(f"{member} inside rt-polaritydata.tar.gz does not have sha256 {sha256}")
            lines = raw.decode("cp1252").split("\n")
            if lines and lines[-1] == "":
                lines.pop()  # the file ends with a newline
            texts += [line.strip() for line in lines]
            labels += [label] * len(lines)
    counts = (labels.count(1), labels.count(0))
    if counts != (5331, 5331):
        raise CorruptedDatasetError(f"expected 5,331 positive and 5,331 negative snippets, read {counts}")
    return np.array(texts, dtype=str), np.array(labels, dtype=np.int32)


def train_test_split(x, y, test_fraction=0.1, seed=0):
    """Fixed, seeded shuffle and split: ((x_train, y_train), (x_test, y_test)), test = round(n * test_fraction) (notebook 06)."""
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 0 or len(x) < 2:
        raise ValueError(f"x must be an array of at least 2 examples, got shape {x.shape}")
    if y.ndim == 0 or len(y) != len(x):
        raise ValueError(f"y must have one entry per example of x ({len(x)}), got shape {y.shape}")
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    n_test = min(max(int(round(len(x) * test_fraction)), 1), len(x) - 1)
    order = np.random.default_rng(seed).permutation(len(x))
    test, train = order[:n_test], order[n_test:]
    return (x[train], y[train]), (x[test], y[test])


# --- notebook 07: Spanish-English sentence pairs ---
SPA_ENG_ORIGIN = "http://storage.googleapis.com/download.tensorflow.org/data/spa-eng.zip"
# The zip's bytes differ between copies, so the extracted text is what is verified (MANIFEST.md).
SPA_TXT_SHA256 = "6ec60e212f812ee3430f7568ea6f33b6fb080e32193c5952e8da0ee8ba45574c"


def spa_eng_path():
    """Path of spa-eng/spa.txt in the Keras cache, extracted from spa-eng.zip and verified by sha256 (notebook 07)."""
    folder = cache_dir() / "datasets"
    text_path = folder / "spa-eng" / "spa.txt"
    if text_path.exists():
        check_sha256(text_path, SPA_TXT_SHA256, f"Delete it (and {folder / 'spa-eng.zip'}) and run again while online, "
                     "or copy a good file there.")
        return str(text_path)
    zip_path, downloaded = folder / "spa-eng.zip", False
    if not zip_path.exists():
        zip_path, downloaded = Path(_download_spa_eng(folder)), True
    import zipfile

    try:
        with zipfile.ZipFile(zip_path) as archive:
            raw = archive.read("spa-eng/spa.txt")
    except (zipfile.BadZipFile, KeyError) as error:
        raw, problem = b"", f"cannot read spa-eng/spa.txt from it ({error})"
    else:
        problem = f"its spa-eng/spa.txt has sha256 {hashlib.sha256(raw).hexdigest()}, expected {SPA_TXT_SHA256}"
    if raw and hashlib.sha256(raw).hexdigest() == SPA_TXT_SHA256:
        text_path.parent.mkdir(parents=True, exist_ok=True)
        partial = text_path.with_suffix(".partial")
        partial.write_bytes(raw)
        os.replace(partial, text_path)  # appears whole or not at all
        return str(text_path)
    if downloaded:
        zip_path.unlink()  # never keep an unverified download
    raise CorruptedDatasetError(f"{zip_path} is not the Tatoeba spa-eng archive: {problem}. "
                                f"Delete it and run again while online ({SPA_ENG_ORIGIN}).")


def _download_spa_eng(folder):
    import keras

    try:
        return keras.utils.get_file("spa-eng.zip", origin=SPA_ENG_ORIGIN, cache_dir=str(folder.parent),
                                    cache_subdir="datasets")
    except Exception as error:
        if (folder / "spa-eng.zip").exists():
            (folder / "spa-eng.zip").unlink()
        raise _unavailable("'spa-eng.zip' (which holds spa-eng/spa.txt)",
                           f"{folder} (for spa-eng/spa.txt and spa-eng.zip)", SPA_ENG_ORIGIN, error,
                           "datasets/spa-eng/spa.txt") from error


def load_spa_eng():
    """The 118,964 Tatoeba pairs as two lists of strings, (spanish, english), in file order (notebook 07)."""
    with open(spa_eng_path(), encoding="utf-8") as f:
        lines = f.read().split("\n")
    pairs = [line.split("\t") for line in lines if line]
    bad = next((i for i, pair in enumerate(pairs) if len(pair) != 2), None)
    if bad is not None:
        raise CorruptedDatasetError(f"line {bad + 1} of spa.txt is not 'english<TAB>spanish'")
    return [spa for _, spa in pairs], [eng for eng, _ in pairs]


def split_pairs(source, target, n_val, n_test, seed=0):
    """Seeded train/validation/test split of sentence pairs; a source sentence never spans two splits (notebook 07).

    Tatoeba often translates one sentence several ways. Splitting pairs at random would put some test
    sentences in the training data, so whole groups of pairs sharing a source sentence are assigned
    together: each of validation and test gets at least the asked number of pairs (a few more, at most one
    group's worth), training gets the rest. Returns ((src, tgt) train, (src, tgt) val, (src, tgt) test).
    """
    if not isinstance(source, (list, tuple)) or not isinstance(target, (list, tuple)):
        raise TypeError("source and target must be lists of strings")
    if len(source) != len(target):
        raise ValueError(f"source and target must have the same length, got {len(source)} and {len(target)}")
    n_val, n_test = non_negative_int("n_val", n_val), non_negative_int("n_test", n_test)
    if n_val + n_test >= len(source):
        raise ValueError(f"n_val + n_test must leave pairs for training, got {n_val} + {n_test} of {len(source)}")
    groups = {}
    for i, sentence in enumerate(source):
        groups.setdefault(sentence, []).append(i)
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    parts, wanted, current = [[], [], []], [n_test, n_val], 0
    for k in order:
        while current < 2 and len(parts[current]) >= wanted[current]:
            current += 1
        parts[current].extend(groups[keys[k]])
    test, val, train = (sorted(part) for part in parts)
    pick = lambda idx: ([source[i] for i in idx], [target[i] for i in idx])  # noqa: E731
    return pick(train), pick(val), pick(test)


def fetch_all():
    """Fetch and verify every data set file of the course (`make data`)."""
    for name in FILES:
        path = fetch(name)
        print(f"ok  {name:22s} {path}")
    print(f"ok  {'spa-eng':22s} {spa_eng_path()}")


if __name__ == "__main__":
    fetch_all()
