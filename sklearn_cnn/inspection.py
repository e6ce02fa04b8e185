"""Looking inside a network, like :mod:`sklearn.inspection` for models: the layer summary,
where the network looks (Grad-CAM), what it gets most wrong, and which learning rate to use.

The pictures of these (and of training curves and filters) are drawn by
:mod:`sklearn_cnn.plotting`, which depends on this module (never the reverse).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from sklearn.base import is_regressor
from skorch.callbacks import Callback
from torch import nn

from ._base import BaseCNNEstimator
from ._data import to_compact_tensor, to_float_batch
from ._series import takes_series
from ._validation import final_step, last_step, validate_images
from .networks import ModelSummary, eval_mode, probe

__all__ = ["summary", "class_activation_maps", "top_losses", "lr_find", "network_images"]

_WHAT = "a fitted sklearn-cnn estimator (CNNClassifier, TransferClassifier, ...)"


# ------------------------------------------------------------------- shared helpers
def fitted_estimator(model) -> BaseCNNEstimator:
    """The fitted sklearn-cnn estimator that ``model`` is or ends in (a Pipeline)."""
    return final_step(model, expected=BaseCNNEstimator, what=_WHAT)


def _final_and_inputs(model, X):
    """The fitted estimator (a Pipeline's last step) and ``X`` transformed by the steps
    before it, as ``predict`` would."""
    final = fitted_estimator(model)
    if hasattr(model, "steps") and len(model.steps) > 1:
        X = model[:-1].transform(X)
    return final, X


def network_images(model, X) -> tuple:
    """The images as the network sees them: after a Pipeline's steps, uint8 scaled to
    [0, 1], as a float32 (N, C, H, W) tensor in channels-last memory.

    Parameters
    ----------
    model : sklearn-cnn estimator or a Pipeline ending in one
        Fitted.
    X : array-like of images
        What ``predict`` takes.

    Returns
    -------
    estimator : the fitted sklearn-cnn estimator (a Pipeline's last step)
    images : torch.Tensor of shape (N, C, H, W)

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.inspection import network_images
    >>> from sklearn_cnn.preprocessing import ImageResizer
    >>> X = np.random.default_rng(0).integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    >>> model = make_pipeline(ImageResizer(size=8), CNNClassifier(max_epochs=1, verbose=0))
    >>> estimator, images = network_images(model.fit(X, np.arange(8) % 2), X[:2])
    >>> type(estimator).__name__, tuple(images.shape), bool(images.max() <= 1)
    ('CNNClassifier', (2, 3, 8, 8), True)
    """
    final, Xt = _final_and_inputs(model, X)
    images, _ = validate_images(final, Xt, fitting=False)
    tensor = to_float_batch(to_compact_tensor(np.asarray(images)))
    return final, tensor.contiguous(memory_format=torch.channels_last)


def _task_kind(final) -> str:
    """"regression", "multilabel" or "classification"."""
    if is_regressor(final):
        return "regression"
    if getattr(final, "target_type_", None) == "multilabel-indicator":
        return "multilabel"
    return "classification"


def _output_indices(final, target, n: int) -> np.ndarray:
    """The network output to explain for each of ``n`` images: a class label's (single-
    label), a label's or an output's index (label sets, regressors)."""
    if _task_kind(final) == "classification":
        return _class_indices(final, target, n)
    outputs = len(final.classes_) if hasattr(final, "classes_") else final.n_outputs_
    index = np.asarray(target)
    if index.ndim == 0:
        index = np.full(n, index.item())
    if len(index) != n or index.dtype.kind not in "iu" or index.min() < 0 or (
            index.max() >= outputs):
        what = "a label" if _task_kind(final) == "multilabel" else "an output"
        raise ValueError(f"target must be the index of {what}, 0..{outputs - 1} (one for all "
                         f"images or one per image), got {target!r}.")
    return index


def _class_indices(final, labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim == 0:
        labels = np.full(n, labels.item(), dtype=labels.dtype)
    if len(labels) != n:
        raise ValueError(f"Got {len(labels)} labels for {n} images.")
    classes = final.classes_
    unknown = np.setdiff1d(labels, classes)
    if unknown.size:
        raise ValueError(f"{unknown.tolist()} are not among the classes {classes.tolist()}.")
    return np.searchsorted(classes, labels)


# -------------------------------------------------------------- class activation maps
def _layer_outputs(module: nn.Module, input_shape) -> list[tuple[str, tuple]]:
    """(name, output shape) of every leaf layer, in the order the forward pass runs them."""
    names = {m: n for n, m in module.named_modules()}
    calls: list[tuple[str, tuple]] = []

    def record(layer, _, out):
        if isinstance(out, torch.Tensor):
            calls.append((names[layer], tuple(out.shape)))

    probe(module, input_shape, [m for m in module.modules() if not list(m.children())], record)
    return calls


def _default_layer(module: nn.Module, input_shape) -> str:
    """The last layer that outputs a spatial map (4-D, at least 2×2): the end of the last
    convolutional block, where Grad-CAM has the most meaning and some resolution left."""
    calls = [(name, shape) for name, shape in _layer_outputs(module, input_shape)
             if len(shape) == 4]
    if not calls:
        raise ValueError("The network has no layer with a spatial output to explain.")
    spatial = [name for name, shape in calls if min(shape[2:]) >= 2]
    return (spatial or [calls[-1][0]])[-1]


def class_activation_maps(estimator, X, *, target=None, layer=None, method="auto",
                          batch_size=32) -> np.ndarray:
    """Where in each image (or when in each series) the network finds the evidence for a
    class: Grad-CAM, or CAM over time for series.

    Grad-CAM weighs each channel of a convolutional layer's output by the mean gradient of
    the class score with respect to it, sums the weighted channels, keeps the positive
    part and scales it up to the image: bright where the evidence for the class is. For
    single labels the class score is its logit minus the mean of the other classes' (what
    the softmax depends on: with two classes, a class recognised by the absence of the
    other's evidence would otherwise get an empty map); for label sets and regressors, the
    output itself.

    For the time-series estimators the default is Wang, Yan & Oates' class activation map
    (CAM, 2017): the last convolutional block's channels over time, weighed by the output
    layer's weights of the class (for single labels, against the mean of the other
    classes' weights, as Grad-CAM's score here; Grad-CAM where ``hidden_units`` put dense
    layers between the pooled features and the outputs).

    Written here rather than taken from captum (``LayerGradCam``) or pytorch-grad-cam: it is
    a few lines of forward hooks and one ``torch.autograd.grad``, and it must see the
    estimator's own preprocessing, frozen layers and input adaptation, which those
    packages' wrappers would have to be taught.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
        Fitted (a classifier or a regressor). A Pipeline's steps are applied to ``X`` first,
        as in ``predict``.
    X : array-like of images, or of series
        What ``predict`` takes.
    target : label, array-like of labels or None, default=None
        The class to explain (one for all images, or one per image); None explains each
        image's predicted class. For a model fitted on label sets, the label's index
        (None: each image's most probable label); for a regressor, the output's index
        (None: the first), whose increase the map explains.
    layer : str or None, default=None
        Name of the layer whose output is explained (``dict(module_.named_modules())``);
        None takes the last layer with a spatial output of at least 2×2, the end of the last
        convolutional block. Images only: series are explained at their network's last
        block.
    method : {"auto", "gradcam", "cam"}, default="auto"
        "gradcam"; or "cam", for series only, whose network must end in one linear layer.
        "auto" is "gradcam" for images and "cam" for series where it applies.
    batch_size : int, default=32
        Images per forward and backward pass.

    Returns
    -------
    ndarray of shape (n_images, height, width) or (n_series, n_timepoints)
        Maps in [0, 1] (each scaled from its minimum to its maximum; 0 where a map is
        flat), at the size of the images the estimator receives, or over the series' time
        points (NaN after the end of a series shorter than the longest); float32.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.inspection import class_activation_maps
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(0, 0.2, size=(40, 8, 8)).astype(np.float32)
    >>> y = np.array([0, 1] * 20)
    >>> X[y == 1, :4, :4] += 0.8        # class 1: a bright top-left quadrant
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=10, lr=0.01, device="cpu",
    ...                     random_state=0).fit(X, y)
    >>> maps = class_activation_maps(clf, X[y == 1][:4])
    >>> maps.shape, float(maps.min()) >= 0, float(maps.max()) <= 1
    ((4, 8, 8), True, True)
    """
    from torch.nn import functional as F

    if method not in ("auto", "gradcam", "cam"):
        raise ValueError(f"method={method!r} is not known; use 'auto', 'gradcam' or 'cam'.")
    final, Xt = _final_and_inputs(estimator, X)
    softmax = _task_kind(final) == "classification"
    if target is None and _task_kind(final) == "regression":
        target = 0
    wanted = None if target is None else _output_indices(final, target, len(Xt))
    if takes_series(final):
        from ._series_maps import series_activation_maps

        if layer is not None:
            raise ValueError(f"layer={layer!r}: series are explained at the network's last "
                             "convolutional block, which CAM is defined on; leave layer=None.")
        return series_activation_maps(final, Xt, wanted=wanted, method=method,
                                      softmax=softmax, batch_size=batch_size)
    if method == "cam":
        raise ValueError("method='cam' is for the time-series estimators; images get "
                         "method='gradcam'.")
    final, images = network_images(final, Xt)
    module = final.module_
    device = next(module.parameters()).device
    with eval_mode(module):
        input_shape = (*images.shape[2:], images.shape[1])
        name = layer if layer is not None else _default_layer(module, input_shape)
        try:
            target_layer = module.get_submodule(name)
        except AttributeError:
            candidates = [n for n, _ in _layer_outputs(module, input_shape)][-8:]
            raise ValueError(f"The network has no layer {name!r}; the last layers it runs are "
                             f"{candidates}.") from None
        maps = []
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size].to(device)
            maps.append(_gradcam(module, target_layer, x, softmax, None if wanted is None else
                                 torch.as_tensor(wanted[start:start + batch_size],
                                                 device=device)))
        cams = torch.cat(maps)
        cams = F.interpolate(cams, size=tuple(images.shape[-2:]), mode="bilinear",
                             align_corners=False)[:, 0]
        # Each map from its own minimum to its maximum, as pytorch-grad-cam scales them: an
        # image full of its class's evidence (a petal texture) has a map high everywhere,
        # and only its relative differences say where the evidence is strongest.
        low = cams.flatten(1).amin(1)[:, None, None]
        span = cams.flatten(1).amax(1)[:, None, None] - low
        scaled = torch.where(span > 1e-12, (cams - low) / span.clamp_min(1e-12),
                             torch.zeros_like(cams))
        return scaled.clamp(0, 1).cpu().numpy().astype(np.float32)


def _gradcam(module, layer, x, softmax: bool, wanted):
    activations = []

    def keep(_, __, output):
        if not output.requires_grad:  # frozen layers before it: start the graph here
            output = output.detach().requires_grad_()
        activations.append(output)
        return output

    hook = layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = module(x).float()
            index = logits.argmax(1) if wanted is None else wanted
            score = logits.gather(1, index[:, None])[:, 0]
            if softmax and logits.shape[1] > 1:
                # A softmax depends on the logits' differences only: the class's score
                # against the others' mean, or a class told apart by the absence of the
                # others' evidence gets an empty map.
                score = score - (logits.sum(1) - score) / (logits.shape[1] - 1)
            score = score.sum()
            activation = activations[-1]  # a layer run twice (ResNet's ReLU): its last use
            grads, = torch.autograd.grad(score, activation)
    finally:
        hook.remove()
    weights = grads.float().mean(dim=(2, 3), keepdim=True)
    return torch.relu((weights * activation.detach().float()).sum(1, keepdim=True))


# ------------------------------------------------------------------------- top losses
def top_losses(estimator, X, y, k=9):
    """The ``k`` images the model gets most wrong: the highest losses.

    fastai's ``top_losses``: sorting the training or validation images by loss shows
    mislabelled images, confusing classes, and what the model has not learned. The loss is
    the cross-entropy for class labels, the binary cross-entropy (averaged over the labels)
    for label sets, and the squared error (summed over the outputs) for a regressor.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
        Fitted.
    X : array-like of images
    y : array-like of shape (n_images,) or (n_images, n_outputs)
        The true labels, label sets or targets.
    k : int, default=9
        How many to return.

    Returns
    -------
    sklearn.utils.Bunch
        ``indices`` (into X, highest loss first), ``losses``, ``y_true``, ``y_pred``; for
        class labels also ``probability`` (of the predicted class) and
        ``true_probability``; for label sets ``probability`` (of each label).

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.inspection import top_losses
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=5, lr=0.01, device="cpu",
    ...                     random_state=0)
    >>> worst = top_losses(clf.fit(X[:300], y[:300]), X[300:400], y[300:400], k=3)
    >>> len(worst.indices), bool(worst.losses[0] >= worst.losses[-1])
    (3, True)
    """
    from sklearn.utils import Bunch

    final, _ = _final_and_inputs(estimator, X[:1] if hasattr(X, "__getitem__") else X)
    kind = _task_kind(final)
    if kind == "regression":
        predicted = estimator.predict(X)
        truth = np.asarray(y, dtype=np.float64).reshape(predicted.shape)
        losses = ((predicted - truth) ** 2).reshape(len(truth), -1).sum(axis=1)
        order = np.argsort(-losses, kind="stable")[:k]
        return Bunch(indices=order, losses=losses[order], y_true=truth[order],
                     y_pred=predicted[order])
    proba = estimator.predict_proba(X)
    if kind == "multilabel":
        truth = np.asarray(y)
        if truth.shape != proba.shape:
            raise ValueError(f"y has shape {truth.shape}; the model predicts label sets of "
                             f"shape {proba.shape}.")
        p = np.clip(proba, 1e-12, 1 - 1e-12)
        losses = -(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean(axis=1)
        order = np.argsort(-losses, kind="stable")[:k]
        return Bunch(indices=order, losses=losses[order], y_true=truth[order],
                     y_pred=(proba[order] > 0.5).astype(truth.dtype), probability=proba[order])
    truth = _class_indices(final, np.asarray(y), len(proba))
    rows = np.arange(len(proba))
    true_probability = proba[rows, truth]
    losses = -np.log(np.clip(true_probability, 1e-12, None))
    order = np.argsort(-losses, kind="stable")[:k]
    predicted = proba.argmax(1)
    return Bunch(indices=order, losses=losses[order], y_true=final.classes_[truth[order]],
                 y_pred=final.classes_[predicted[order]],
                 probability=proba[order, predicted[order]],
                 true_probability=true_probability[order])


# -------------------------------------------------------------------- learning rates
class _LRRamp(Callback):
    """skorch callback for the range test: sets the learning rate of every batch on an
    exponential ramp (each parameter group keeping its ratio to ``lr``), records the
    loss, and stops the fit the skorch way when the ramp ends or the loss explodes."""

    def __init__(self, start, end, steps, smooth, diverge):
        self.start, self.end, self.steps = start, end, steps
        self.smooth, self.diverge = smooth, diverge
        self.lrs, self.losses, self.smoothed = [], [], []

    def on_train_begin(self, net, **kwargs):
        self.ratios = [group["lr"] / net.lr for group in net.optimizer_.param_groups]
        self.average, self.best = 0.0, math.inf

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            lr = self.start * (self.end / self.start) ** (len(self.lrs) / (self.steps - 1))
            for group, ratio in zip(net.optimizer_.param_groups, self.ratios):
                group["lr"] = lr * ratio
            self.lrs.append(lr)

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        if not training:
            return
        value = float(loss)
        self.losses.append(value)
        self.average = self.smooth * self.average + (1 - self.smooth) * value
        smoothed = self.average / (1 - self.smooth ** len(self.losses))
        self.smoothed.append(smoothed)
        self.best = min(self.best, smoothed)
        if (len(self.lrs) >= self.steps or not math.isfinite(smoothed)
                or smoothed > self.diverge * self.best):
            raise KeyboardInterrupt  # skorch's way for a callback to end training


def _valley(losses: np.ndarray) -> int:
    """fastai's "valley": the longest stretch over which the loss keeps going down, and a
    point two thirds of the way along it (the loss still falls fast there, far from where it
    turns up)."""
    n = len(losses)
    run = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and run[i] < run[j] + 1:
                run[i] = run[j] + 1
        if run[end] < run[i]:
            end, start = i, i - run[i]
    sections = (end - start) / 3
    return int(start + int(sections) + int(sections / 2))


def lr_find(estimator, X, y, *, start=1e-6, end=1.0, steps=100, smooth=0.98, diverge=4.0):
    """The learning-rate range test: which ``lr`` trains this model on this data.

    A clone of the estimator (the estimator itself is untouched) trains for up to ``steps``
    batches while the learning rate grows exponentially from ``start`` to ``end``; the
    loss, smoothed, falls while the rate is useful and explodes when it is too high. The
    suggestion is fastai's "valley": two thirds down the longest stretch of falling loss.

    Parameters
    ----------
    estimator : sklearn-cnn estimator or a Pipeline ending in one
        Its parameters (``optimizer``, ``batch_size``, ``augment`` ...) are used; it need
        not be fitted. A Pipeline's other steps are fitted on ``X`` first (on clones).
    X : array-like of images
    y : array-like of shape (n_images,)
    start, end : float, default=1e-6, 1.0
        The range of learning rates.
    steps : int, default=100
        Batches (one learning rate each); the data is passed over as often as needed.
    smooth : float, default=0.98
        Exponential smoothing of the batch losses.
    diverge : float, default=4.0
        Stop when the smoothed loss exceeds this multiple of its minimum.

    Returns
    -------
    sklearn.utils.Bunch
        ``lrs``, ``losses`` (smoothed), ``raw_losses`` and ``suggestion`` (a learning rate
        to pass as ``lr=``).

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> from sklearn_cnn.inspection import lr_find
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8, 16), device="cpu", random_state=0)
    >>> found = lr_find(clf, X[:256], y[:256], steps=30)
    >>> 1e-6 <= found.suggestion <= 1, len(found.lrs) == len(found.losses)
    (True, True)
    >>> hasattr(clf, "net_")  # the estimator itself is untouched
    False
    """
    import warnings

    from sklearn.base import clone
    from sklearn.utils import Bunch

    if not 0 < start < end:
        raise ValueError(f"Need 0 < start < end, got start={start}, end={end}.")
    if steps < 5:
        raise ValueError(f"steps={steps} is too few for a range test; use at least 5.")
    if hasattr(estimator, "steps"):
        model = clone(last_step(estimator))
        if len(estimator.steps) > 1:
            X = clone(estimator[:-1]).fit_transform(X, y)
    else:
        model = clone(estimator)
    ramp = _LRRamp(start, end, steps, smooth, diverge)
    batches = math.ceil(len(y) / model.batch_size)
    model.set_params(lr=start, lr_schedule=None, early_stopping=False, warm_start=False,
                     verbose=0, max_epochs=math.ceil(steps / max(1, batches)) + 1,
                     callbacks=[*(model.callbacks or []), ("lr_find", ramp)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            model.fit(X, y)
        except FloatingPointError:
            pass  # the loss became NaN at the high end: what was recorded up to there stands
    lrs = np.array(ramp.lrs[:len(ramp.smoothed)])
    losses = np.array(ramp.smoothed)
    # The last points, where the loss exploded, are no candidates.
    usable = losses[:max(5, len(losses) - 5)] if len(losses) > 10 else losses
    return Bunch(lrs=lrs, losses=losses, raw_losses=np.array(ramp.losses),
                 suggestion=float(lrs[_valley(np.nan_to_num(usable, nan=np.inf))]))


def summary(estimator, input_shape=None, n_outputs=None) -> ModelSummary:
    """The layer table of an estimator's network (or a Pipeline's last step): see
    :meth:`CNNClassifier.summary <sklearn_cnn.CNNClassifier.summary>`.

    Examples
    --------
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.inspection import summary
    >>> print(summary(CNNClassifier(filters=(8,)), input_shape=(8, 8, 1)))  # doctest: +ELLIPSIS
    CNNClassifier: input (height, width, channels) = (8, 8, 1)
    ...
    Total params: 106
    ...
    """
    final = final_step(estimator, expected=BaseCNNEstimator, what=_WHAT, fitted=False)
    return final.summary(input_shape=input_shape, n_outputs=n_outputs)
