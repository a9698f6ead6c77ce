"""Notebook 06 helpers: fill-in-the-blank windows (data.blank_windows)."""

import numpy as np
import pytest

from nnutils import data

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def test_blank_windows_hides_the_centre_and_returns_it():
    ids = np.arange(10, 30)
    x, y = data.blank_windows(ids, context=3, mask_id=99)
    assert x.shape == (len(ids) - 6, 7) and y.shape == (len(ids) - 6,)
    assert x.dtype == y.dtype == np.int32
    assert np.all(x[:, 3] == 99)
    np.testing.assert_array_equal(y, ids[3:-3])  # the centre of window i is ids[i + context]
    np.testing.assert_array_equal(x[0, :3], ids[:3])
    np.testing.assert_array_equal(x[0, 4:], ids[4:7])
    np.testing.assert_array_equal(x[-1, 4:], ids[-3:])


def test_blank_windows_stride_and_input_unchanged():
    ids = np.array([5, 6, 7, 8, 9, 10, 11], dtype=np.int64)
    kept = ids.copy()
    x, y = data.blank_windows(ids, context=1, mask_id=0, stride=2)
    np.testing.assert_array_equal(y, [6, 8, 10])
    np.testing.assert_array_equal(x, [[5, 0, 7], [7, 0, 9], [9, 0, 11]])
    np.testing.assert_array_equal(ids, kept)  # the caller's ids are not overwritten by the mask


def test_blank_windows_exactly_one_window():
    x, y = data.blank_windows(np.array([1, 2, 3]), context=1, mask_id=4)
    np.testing.assert_array_equal(x, [[1, 4, 3]])
    np.testing.assert_array_equal(y, [2])


@pytest.mark.parametrize("kwargs, error, argument", [
    (dict(ids=np.zeros((2, 5), dtype=int)), ValueError, "ids"),
    (dict(ids=np.linspace(0, 1, 9)), ValueError, "ids"),
    (dict(ids=np.arange(4)), ValueError, "ids"),
    (dict(context=0), ValueError, "context"),
    (dict(context=1.5), ValueError, "context"),
    (dict(stride=0), ValueError, "stride"),
    (dict(stride=True), ValueError, "stride"),
    (dict(mask_id=-1), ValueError, "mask_id"),
    (dict(mask_id="?"), ValueError, "mask_id"),
])
def test_blank_windows_bad_input(kwargs, error, argument):
    args = dict(ids=np.arange(9), context=2, mask_id=50) | kwargs
    with pytest.raises(error, match=argument):
        data.blank_windows(**args)
