"""Pictures of training: learning curves and first-layer filters (matplotlib, optional)."""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted
from torch import nn

__all__ = ["plot_history", "plot_filters"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plotting needs matplotlib: pip install 'sklearn-cnn[plot]' "
                          "(or pip install matplotlib).") from None
    return plt


def _final_step(estimator):
    """The fitted CNN estimator itself, or the last step of a fitted Pipeline."""
    estimator = estimator[-1] if hasattr(estimator, "steps") else estimator
    check_is_fitted(estimator, "net_")
    return estimator


def plot_history(estimator, *, axes=None):
    """Train/validation loss and accuracy per epoch.

    Validation curves appear when the estimator held out a validation split
    (``early_stopping=True``).

    Parameters
    ----------
    estimator : CNNClassifier, TransferClassifier or a Pipeline ending in one
        A fitted estimator.
    axes : pair of matplotlib Axes, default=None
        Where to draw loss and accuracy; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the two plots.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_history
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8,), max_epochs=2, early_stopping=True, device="cpu")
    >>> fig = plot_history(clf.fit(X[:300] / 16, y[:300]))
    >>> [ax.get_title() for ax in fig.axes]
    ['Loss', 'Accuracy']
    """
    plt = _pyplot()
    history = _final_step(estimator).history_
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    fig = axes[0].figure
    epochs = history[:, "epoch"]
    for ax, metric, title in [(axes[0], "loss", "Loss"), (axes[1], "acc", "Accuracy")]:
        for split, style in [("train", "-o"), ("valid", "--s")]:
            values = [row.get(f"{split}_{metric}") for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style,
                        label="train" if split == "train" else "validation", markersize=3)
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def plot_filters(estimator, *, max_filters=64, ax=None):
    """The first convolutional layer's filters as a grid of small images.

    RGB filters are shown in colour, others as grayscale (averaged over input channels);
    each filter is scaled to its own range.

    Parameters
    ----------
    estimator : CNNClassifier, TransferClassifier or a Pipeline ending in one
        A fitted estimator.
    max_filters : int, default=64
        Show at most this many filters.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        The figure holding the grid.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_filters
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8,), max_epochs=1, device="cpu").fit(X[:100] / 16, y[:100])
    >>> fig = plot_filters(clf)
    >>> fig.axes[0].get_title()
    'First-layer filters: 8 of 8, 3×3'
    """
    plt = _pyplot()
    module = _final_step(estimator).module_
    conv = next((m for m in module.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise ValueError("The network has no Conv2d layer (a vision transformer, say) to show.")
    weights = conv.weight.detach().float().cpu().numpy()[:max_filters]
    n, channels, kh, kw = weights.shape
    if channels == 3:
        tiles = weights.transpose(0, 2, 3, 1)
    else:
        tiles = weights.mean(axis=1)[..., np.newaxis]
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    tiles = (tiles - low) / np.where(high > low, high - low, 1.0)
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = np.ones((rows * (kh + 1) - 1, cols * (kw + 1) - 1, tiles.shape[-1]))
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        grid[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = tile
    if ax is None:
        _, ax = plt.subplots(figsize=(1 + 0.6 * cols, 1 + 0.6 * rows), layout="constrained")
    ax.imshow(grid if channels == 3 else grid[..., 0], cmap=None if channels == 3 else "gray",
              interpolation="nearest")
    ax.set_title(f"First-layer filters: {n} of {conv.out_channels}, {kh}×{kw}")
    ax.set_axis_off()
    return ax.figure
