import numpy as np
import pytest

from nnutils import checks


def test_check_close_passes_and_prints(capsys):
    checks.check_close("weights", np.ones(3) + 1e-9, np.ones(3))
    assert "weights: correct" in capsys.readouterr().out


def test_check_close_reports_expected_and_received():
    with pytest.raises(AssertionError, match=r"answer: expected .*1\..*received .*2\."):
        checks.check_close("answer", [2.0], [1.0])


def test_check_close_reports_shape_mismatch():
    with pytest.raises(AssertionError, match=r"expected shape \(3,\), received shape \(2,\)"):
        checks.check_close("v", np.zeros(2), np.zeros(3))


def test_check_close_unfilled_exercise_is_explained():
    with pytest.raises(AssertionError, match="received None"):
        checks.check_close("v", None, np.zeros(3))


def test_check_close_rejects_non_numbers():
    with pytest.raises(TypeError, match="received must be array-like numbers"):
        checks.check_close("v", {"a": 1}, np.zeros(3))


def test_check_equal_and_shape():
    checks.check_equal("count", 5, 5)
    checks.check_equal("word", "relu", "relu")
    checks.check_shape("x", np.zeros((2, 3)), (2, 3))
    with pytest.raises(AssertionError, match="expected 6, received 5"):
        checks.check_equal("count", 5, 6)
    with pytest.raises(AssertionError, match=r"expected shape \(3, 2\), received \(2, 3\)"):
        checks.check_shape("x", np.zeros((2, 3)), (3, 2))


def test_check_at_least():
    checks.check_at_least("accuracy", 0.95, 0.9)
    with pytest.raises(AssertionError, match="expected at least 0.9, received 0.8000"):
        checks.check_at_least("accuracy", 0.8, 0.9)


def test_checks_accept_a_layer_output_of_any_backend():
    """A learner may pass a Keras output straight in: on PyTorch it is a tensor that tracks gradients."""
    import keras

    out = keras.layers.Dense(2, kernel_initializer="ones")(np.ones((1, 3), "float32"))
    checks.check_close("layer output", out, [[3.0, 3.0]])
    with pytest.raises(AssertionError, match="layer output"):
        checks.check_close("layer output", out, [[3.0, 4.0]])
