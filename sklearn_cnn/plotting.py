"""Pictures of training and of what the network learned (matplotlib, optional): learning
curves, first-layer filters, class activation maps, top losses and the learning-rate range
test. :mod:`sklearn_cnn.inspection` computes what they show."""

from __future__ import annotations

import math

import numpy as np
from torch import nn

from ._series import takes_series
from .inspection import class_activation_maps, fitted_estimator, network_images, top_losses

__all__ = ["plot_history", "plot_filters", "plot_class_activation_maps", "plot_top_losses",
           "plot_lr_find"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("Plotting needs matplotlib: pip install 'sklearn-cnn[plot]' "
                          "(or pip install matplotlib).") from None
    return plt




def plot_history(estimator, *, ax=None, axes=None):
    """Train/validation loss and accuracy (R² for regressors) per epoch.

    Validation curves appear when the estimator held out a validation split
    (``validation_fraction``, or ``early_stopping=True``); the epoch whose weights early
    stopping restored is marked.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
        A fitted estimator.
    ax : pair of matplotlib Axes, default=None
        Where to draw loss and accuracy; None makes a new figure. (``ax=`` as in every
        function of this module and in matplotlib.)
    axes : pair of matplotlib Axes, default=None
        The former name of ``ax``, deprecated: it warns.

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
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=5, lr=0.01, early_stopping=True,
    ...                     device="cpu", random_state=0)
    >>> fig = plot_history(clf.fit(X[:300], y[:300]))
    >>> [ax.get_title() for ax in fig.axes]
    ['Loss', 'Accuracy']
    """
    plt = _pyplot()
    history = fitted_estimator(estimator).history_
    if axes is not None:
        import warnings

        warnings.warn("plot_history(axes=...) is now plot_history(ax=...), as in the other "
                      "plotting functions; axes= will be removed in 0.4.", FutureWarning,
                      stacklevel=2)
        ax = axes if ax is None else ax
    axes = ax
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
    fig = axes[0].figure
    epochs = history[:, "epoch"]
    score, name = ("r2", "R²") if "train_r2" in history[-1] else ("acc", "Accuracy")
    for ax, metric, title in [(axes[0], "loss", "Loss"), (axes[1], score, name)]:
        for split, style in [("train", "-o"), ("valid", "--s")]:
            values = [row.get(f"{split}_{metric}") for row in history]
            if any(v is not None for v in values):
                ax.plot(epochs, [np.nan if v is None else v for v in values], style,
                        label="train" if split == "train" else "validation", markersize=3)
        restored = _restored_epoch(history)
        if restored is not None:
            ax.axvline(restored, color="0.4", linestyle=":", linewidth=1.2,
                       label=f"restored (epoch {restored})")
        ax.set(title=title, xlabel="epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    return fig


def _restored_epoch(history) -> int | None:
    """The epoch whose weights early stopping put back: the last best validation loss,
    when training went on after it."""
    best = [row["epoch"] for row in history if row.get("valid_loss_best")]
    if not best or best[-1] == history[-1]["epoch"]:
        return None
    return best[-1]


def plot_filters(estimator, *, max_filters=64, ax=None):
    """The first convolutional layer's filters as a grid of small images.

    RGB filters are shown in colour, others as grayscale (averaged over input channels);
    each filter is scaled to its own range.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
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
    >>> clf = CNNClassifier(filters=(8,), max_epochs=5, lr=0.01, device="cpu", random_state=0)
    >>> clf = clf.fit(X[:200], y[:200])
    >>> fig = plot_filters(clf)
    >>> fig.axes[0].get_title()
    'First-layer filters: 8 of 8, 3×3'
    """
    plt = _pyplot()
    module = fitted_estimator(estimator).module_
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


def _images_for_display(estimator, X) -> np.ndarray:
    """What the network sees, as (n, height, width[, 3]) floats in [0, 1] for imshow."""
    _, tensor = network_images(estimator, X)
    images = tensor.permute(0, 2, 3, 1).numpy()
    low = images.min(axis=(1, 2, 3), keepdims=True)
    high = images.max(axis=(1, 2, 3), keepdims=True)
    if low.min() < 0 or high.max() > 1:  # standardised: each image to its own range
        images = (images - low) / np.where(high > low, high - low, 1.0)
    return images[..., 0] if images.shape[-1] == 1 else images[..., :3]


def _draw(ax, image, heat, title, *, cmap="jet", alpha=0.45, color="black") -> None:
    """One image, its heat map over it (if any), a small title, no axes. The heat map is
    as opaque as it is hot (``alpha`` at its peak): where there is no evidence the image
    shows through unchanged."""
    plt = _pyplot()
    ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
    if heat is not None:
        overlay = plt.get_cmap(cmap)(np.clip(heat, 0, 1))
        overlay[..., 3] = alpha * np.clip(heat, 0, 1)
        ax.imshow(overlay, interpolation="bilinear")
    ax.set_title(title, fontsize=9, color=color)
    ax.set_axis_off()


def _grid(plt, n, size=2.2, columns=None):
    columns = columns or min(n, 4)
    rows = math.ceil(n / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(size * columns, size * rows + 0.3),
                             layout="constrained", squeeze=False)
    for ax in axes.ravel()[n:]:
        fig.delaxes(ax)
    return fig, axes.ravel()[:n]


def plot_class_activation_maps(estimator, X, y=None, *, target=None, layer=None,
                               max_images=16, alpha=0.45, cmap="jet"):
    """A grid of images with their class activation maps (Grad-CAM) laid over them; or of
    series, drawn as lines coloured by their map over time (CAM).

    Each image or series is titled with the predicted label and its probability, and the
    true label when ``y`` is given (red when they differ). Series are drawn z-normalised,
    up to three channels one under the other.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
        Fitted.
    X : array-like of images, or of series
    y : array-like or None, default=None
        True labels, for the titles.
    target, layer : see :func:`sklearn_cnn.inspection.class_activation_maps`
    max_images : int, default=16
        Show at most this many (the first ones).
    alpha : float, default=0.45
        Opacity of the heat map.
    cmap : str, default="jet"
        The heat map's colours.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_class_activation_maps
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=4, device="cpu", random_state=0)
    >>> clf = clf.fit(X[:200], y[:200])
    >>> fig = plot_class_activation_maps(clf, X[:4], y[:4])
    >>> len(fig.axes)
    4
    """
    plt = _pyplot()
    X = X[:max_images]
    maps = class_activation_maps(estimator, X, target=target, layer=layer)
    predictions = _predictions(estimator, X)
    if maps.ndim == 2:  # series
        return _plot_series_maps(plt, estimator, X, y, maps, predictions, target, cmap)
    images = _images_for_display(estimator, X)
    fig, axes = _grid(plt, len(maps))
    for i, (ax, image, heat) in enumerate(zip(axes, images, maps)):
        predicted, text = predictions[i]
        title = f"pred {text}"
        wrong = y is not None and _differs(predicted, np.asarray(y)[i])
        if y is not None:
            title = f"true {_short(np.asarray(y)[i])}\n" + title
        _draw(ax, image, heat, title, cmap=cmap, alpha=alpha, color="red" if wrong else "black")
    fig.suptitle("Where the network looks (Grad-CAM)" + (
        f" for class {target}" if target is not None and np.ndim(target) == 0 else ""))
    return fig


def _series_for_display(estimator, X) -> np.ndarray:
    """The series as the estimator receives them (after a Pipeline's steps), NaN-padded
    (n, channels, longest)."""
    from ._series import to_series_array

    final = fitted_estimator(estimator)
    if hasattr(estimator, "steps") and len(estimator.steps) > 1:
        X = estimator[:-1].transform(X)
    return to_series_array(X, estimator=final)[0]


def _draw_series(plt, ax, series, heat, title, *, cmap="jet", color="black") -> None:
    """One series, each of its first three channels z-normalised and shifted apart, as a
    line coloured by its map over time (if any), as Wang, Yan & Oates drew theirs."""
    from matplotlib.collections import LineCollection

    length = int((~np.isnan(series[0])).sum())
    t = np.arange(length)
    for c, values in enumerate(series[:3, :length]):
        values = (values - values.mean()) / (values.std() or 1.0) - 3 * c
        if heat is None:
            ax.plot(t, values, color="0.2", linewidth=1.2)
            continue
        points = np.stack([t, values], axis=1)[:, None, :]
        ax.add_collection(LineCollection(np.concatenate([points[:-1], points[1:]], axis=1),
                                         colors=plt.get_cmap(cmap)(heat[:max(1, length - 1)]),
                                         linewidth=2))
        ax.autoscale_view()
    ax.set_title(title, fontsize=9, color=color)
    ax.set_yticks([])
    ax.set_xlabel("time", fontsize=8)


def _plot_series_maps(plt, estimator, X, y, maps, predictions, target, cmap):
    """The series of :func:`plot_class_activation_maps`, coloured by their maps."""
    series = _series_for_display(estimator, X)
    fig, axes = _grid(plt, len(maps), size=3.2, columns=min(len(maps), 3))
    for i, ax in enumerate(axes):
        predicted, text = predictions[i]
        title = f"pred {text}"
        wrong = y is not None and _differs(predicted, np.asarray(y)[i])
        if y is not None:
            title = f"true {_short(np.asarray(y)[i])}\n" + title
        _draw_series(plt, ax, series[i], maps[i], title, cmap=cmap,
                     color="red" if wrong else "black")
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=list(axes), shrink=0.8,
                 label="class activation")
    fig.suptitle("When the network finds the evidence (CAM)" + (
        f" for class {target}" if target is not None and np.ndim(target) == 0 else ""))
    return fig


def plot_top_losses(estimator, X, y, k=9, *, with_maps=True):
    """The ``k`` images (or series) with the highest loss, titled predicted / actual / loss /
    probability of the actual class (fastai's ``plot_top_losses``), with their class
    activation maps.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
        Fitted.
    X : array-like of images
    y : array-like of shape (n_images,)
        True labels.
    k : int, default=9
        How many images.
    with_maps : bool, default=True
        Lay the Grad-CAM map of the predicted class over each image.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.plotting import plot_top_losses
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=4, device="cpu", random_state=0)
    >>> clf = clf.fit(X[:200], y[:200])
    >>> fig = plot_top_losses(clf, X[200:300], y[200:300], k=6)
    >>> fig.axes[0].get_title().startswith("pred")
    True
    """
    plt = _pyplot()
    worst = top_losses(estimator, X, y, k=k)
    index = worst.indices
    chosen = X[index] if hasattr(X, "shape") else [X[i] for i in index]
    maps = class_activation_maps(estimator, chosen) if with_maps else None
    series = maps is not None and maps.ndim == 2 or (
        maps is None and takes_series(fitted_estimator(estimator)))
    shown = (_series_for_display if series else _images_for_display)(estimator, chosen)
    fig, axes = _grid(plt, len(index), **({"size": 3.2, "columns": min(len(index), 3)}
                                          if series else {}))
    single_label = "true_probability" in worst
    for i, ax in enumerate(axes):
        title = (f"pred {_short(worst.y_pred[i])} / true {_short(worst.y_true[i])}\n"
                 f"loss {worst.losses[i]:.2f}")
        if single_label:
            title += f" / p(true) {worst.true_probability[i]:.2f}"
        heat = None if maps is None else maps[i]
        if series:
            _draw_series(plt, ax, shown[i], heat, title)
        else:
            _draw(ax, shown[i], heat, title, alpha=0.5)
    fig.suptitle("Top losses: predicted / actual / loss" + (
        " / probability of the actual class" if single_label else ""))
    return fig


def _short(value) -> str:
    """A label, a label set or a target, short enough for a title."""
    array = np.asarray(value)
    if array.dtype.kind == "f":
        return " ".join(f"{v:.3g}" for v in array.ravel())
    if array.ndim == 1:  # a label set: the labels in it
        return "{" + ",".join(str(j) for j in np.flatnonzero(array)) + "}"
    return str(value)


def _differs(predicted, true) -> bool:
    predicted, true = np.asarray(predicted), np.asarray(true)
    if predicted.dtype.kind == "f":
        return False  # a regression's prediction is never simply "wrong"
    return not np.array_equal(predicted, true)


def _predictions(estimator, X) -> list:
    """(prediction, title text) per image: the class and its probability, the label set,
    or the predicted values."""
    final = fitted_estimator(estimator)
    if not hasattr(final, "classes_"):
        values = estimator.predict(X)
        return [(v, _short(v)) for v in values]
    proba = estimator.predict_proba(X)
    if getattr(final, "target_type_", None) == "multilabel-indicator":
        sets = (proba > 0.5).astype(int)
        return [(row, _short(row)) for row in sets]
    classes = final.classes_
    return [(classes[p.argmax()], f"{classes[p.argmax()]} ({p.max():.2f})") for p in proba]


def plot_lr_find(result, *, ax=None):
    """The learning-rate range test's curve: smoothed loss against learning rate (log scale),
    with the suggested rate marked.

    Parameters
    ----------
    result : Bunch
        What :func:`sklearn_cnn.inspection.lr_find` returned.
    ax : matplotlib Axes, default=None
        Where to draw; None makes a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.inspection import lr_find
    >>> from sklearn_cnn.plotting import plot_lr_find
    >>> X, y = load_digits_images()
    >>> found = lr_find(CNNClassifier(filters=(8,), device="cpu"), X[:128], y[:128], steps=20)
    >>> plot_lr_find(found).axes[0].get_xscale()
    'log'
    """
    plt = _pyplot()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.8), layout="constrained")
    ax.plot(result.lrs, result.losses, label="smoothed loss")
    index = int(np.argmin(np.abs(np.log(result.lrs) - np.log(result.suggestion))))
    ax.plot([result.suggestion], [result.losses[index]], "o", color="C3",
            label=f"suggestion: lr={result.suggestion:.2g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="training loss",
           title="Learning-rate range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return ax.figure
