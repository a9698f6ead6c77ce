import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nnutils import plot  # noqa: E402

pytestmark = pytest.mark.backend_independent  # no Keras computation here: one backend (TensorFlow in CI) is enough


def test_plot_history_draws_train_and_validation():
    fig = plot.plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.5, 0.8]},
                            metrics=("loss", "accuracy"), title="MLP")
    loss_ax, acc_ax = fig.axes
    assert len(loss_ax.lines) == 2 and len(acc_ax.lines) == 1
    assert loss_ax.get_title() == "MLP: loss" and loss_ax.get_xlabel() == "epoch"


def test_plot_history_bad_input():
    with pytest.raises(ValueError, match=r"metrics \['accuracy'\] not in history"):
        plot.plot_history({"loss": [1.0]}, metrics="accuracy")
    with pytest.raises(TypeError, match="history must be"):
        plot.plot_history([1, 2])


def test_show_images_grid_and_labels():
    fig = plot.show_images(np.zeros((5, 28, 28)), labels=list("abcde"), ncols=3, title="digits")
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes[:5]] == list("abcde")


def test_show_images_bad_input():
    with pytest.raises(ValueError, match="images must have shape"):
        plot.show_images(np.zeros((28, 28)))
    with pytest.raises(ValueError, match="labels must have one entry per image"):
        plot.show_images(np.zeros((2, 4, 4)), labels=[1])
    with pytest.raises(ValueError, match="ncols"):
        plot.show_images(np.zeros((2, 4, 4)), ncols=0)


def test_show_source_rejects_non_functions():
    with pytest.raises(TypeError, match="functions must be functions or classes"):
        plot.show_source("mlp_forward")


def test_show_source_displays_the_code(monkeypatch):
    import IPython.display

    from nnutils import mlp

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    plot.show_source(mlp.relu, mlp.softmax)
    assert len(shown) == 2
    assert shown[0].data.startswith("```python\ndef relu(z):") and "np.exp" in shown[1].data


def test_plot_attention_labels_rows_and_columns():
    weights = np.full((2, 3), 1 / 3)
    fig = plot.plot_attention(weights, ["hola", "tom", "."], ["hi", "tom"], title="es-en")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hola", "tom", "."]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hi", "tom"]
    assert ax.get_title() == "es-en" and ax.get_xlabel() and ax.get_ylabel()


def test_plot_attention_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        plot.plot_attention(np.zeros(3), ["a"], ["b"])
    with pytest.raises(ValueError, match="source_tokens"):
        plot.plot_attention(np.zeros((2, 3)), ["a", "b"], ["c", "d"])


def test_epoch_axes_have_integer_ticks_only():
    history = {"loss": [1.0, 0.7, 0.6], "val_loss": [1.1, 0.8, 0.75]}
    for fig in (plot.plot_history(history), plot.plot_error_curves({"plain": [0.5, 0.3, 0.2]})):
        ax = fig.axes[0]
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
