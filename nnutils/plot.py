"""Plots the notebooks share: training curves, image grids, and showing source code (notebook 01)."""

import inspect

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import MaxNLocator


def plot_history(history, metrics=("loss",), title="Training curves", xlabel="epoch"):
    """Plot train and validation curves of a Keras History (or its dict), one panel per metric (notebook 01)."""
    curves = getattr(history, "history", history)
    if not isinstance(curves, dict):
        raise TypeError(f"history must be a keras History or a dict of lists, got {type(history).__name__}")
    if isinstance(metrics, str):
        metrics = (metrics,)
    missing = [m for m in metrics if m not in curves]
    if missing:
        raise ValueError(f"metrics {missing} not in history; it has {sorted(curves)}")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = np.arange(1, len(curves[metric]) + 1)
        ax.plot(epochs, curves[metric], "o-", label="train")
        if f"val_{metric}" in curves:
            ax.plot(epochs, curves[f"val_{metric}"], "s--", label="validation")
        ax.set(title=f"{title}: {metric}", xlabel=xlabel, ylabel=metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def show_images(images, labels=None, ncols=8, title=None, cmap="gray"):
    """Show a grid of images (N, H, W) or (N, H, W, C) with optional labels (notebook 01)."""
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"images must have shape (N, H, W) or (N, H, W, C) with N > 0, got {images.shape}")
    if labels is not None and len(labels) != len(images):
        raise ValueError(f"labels must have one entry per image ({len(images)}), got {len(labels)}")
    if not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    ncols = min(ncols, len(images))
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.5 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            image = images[i].squeeze() if images.ndim == 4 and images.shape[-1] == 1 else images[i]
            ax.imshow(image, cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_source(*functions):
    """Display the source code of nnutils functions or classes, so a notebook can walk through it (notebook 01)."""
    from IPython.display import Markdown, display

    for function in functions:
        if not (inspect.isfunction(function) or inspect.isclass(function)):
            raise TypeError(f"functions must be functions or classes, got {type(function).__name__}")
        display(Markdown(f"```python\n{inspect.getsource(function).rstrip()}\n```"))


def show_feature_maps(maps, ncols=8, title=None, cmap="viridis", labels=None):
    """Show the channels of one feature map (H, W, C), or of filters (f, f, C), as a grid of small images (notebook 02)."""
    maps = np.asarray(maps)
    if maps.ndim != 3 or 0 in maps.shape:
        raise ValueError(f"maps must have shape (H, W, C) with no empty axis, got {maps.shape}")
    if not isinstance(ncols, int) or isinstance(ncols, bool) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}")
    channels = maps.shape[2]
    if labels is not None and len(labels) != channels:
        raise ValueError(f"labels must have one entry per channel ({channels}), got {len(labels)}")
    ncols = min(ncols, channels)
    nrows = int(np.ceil(channels / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows), squeeze=False)
    for c, ax in enumerate(axes.flat):
        ax.axis("off")
        if c < channels:
            ax.imshow(maps[:, :, c], cmap=cmap)
            ax.set_title(str(labels[c]) if labels is not None else f"{c}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def plot_gradient_norms(norms, title="Gradient norm per layer at initialisation", ax=None):
    """Plot per-layer gradient norms (log scale) of several models, input side on the left (notebook 03)."""
    if not isinstance(norms, dict) or not norms:
        raise TypeError(f"norms must be a non-empty dict of label -> per-layer norms, got {type(norms).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.4))
    for label, values in norms.items():
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or len(values) == 0 or not np.all(values > 0):
            raise ValueError(f"norms[{label!r}] must be a 1-D array of positive numbers")
        ax.semilogy(np.arange(1, len(values) + 1), values, "o-", markersize=3, label=label)
    ax.set(title=title, xlabel="convolution layer (1 = next to the input)", ylabel="‖∂loss/∂kernel‖₂ (log scale)")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def plot_error_curves(curves, title="Training error", ylabel="training error (%)", ax=None):
    """Plot error curves in percent, one per label; dashed for labels containing 'plain' (notebook 03)."""
    if not isinstance(curves, dict) or not curves:
        raise TypeError(f"curves must be a non-empty dict of label -> per-epoch errors, got {type(curves).__name__}")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        if values.ndim != 1 or len(values) == 0:
            raise ValueError(f"curves[{label!r}] must be a non-empty 1-D sequence of errors")
        ax.plot(np.arange(1, len(values) + 1), 100 * values, "--" if "plain" in label else "-", marker="o",
                markersize=3, label=label)
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend()
    ax.figure.tight_layout()
    return ax.figure


def plot_attention(weights, source_tokens, target_tokens, title="Attention weights", ax=None):
    """Heat map of attention weights (target position x source position) with the tokens as labels (notebook 07)."""
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2:
        raise ValueError(f"weights must be a 2-D array (target positions, source positions), got shape {weights.shape}")
    if len(target_tokens) != weights.shape[0] or len(source_tokens) != weights.shape[1]:
        raise ValueError(f"source_tokens and target_tokens must label the {weights.shape[1]} columns and "
                         f"{weights.shape[0]} rows of weights, got {len(source_tokens)} and {len(target_tokens)}")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.45 * weights.shape[1] + 2, 0.4 * weights.shape[0] + 1.5))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(source_tokens)), source_tokens, rotation=60, ha="right")
    ax.set_yticks(range(len(target_tokens)), target_tokens)
    ax.set(title=title, xlabel="source token (attended to)", ylabel="generated token")
    ax.figure.colorbar(image, ax=ax, fraction=0.04, label="attention weight")
    ax.figure.tight_layout()
    return ax.figure
