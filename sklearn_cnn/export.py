"""ONNX export of the estimators, the transformers and Pipelines of them, preprocessing
included, through skl2onnx's converter registry (the optional ``sklearn-cnn[onnx]`` extra).

Each of our classes has a shape calculator and a converter registered with
``skl2onnx.update_registered_converter``, so ``skl2onnx.to_onnx`` exports Pipelines that mix
our steps with scikit-learn's own. The networks (with their input adaptation: pixel scaling,
learned standardisation, TransferClassifier's grayscale-to-RGB, resize and normalisation)
are exported by torch's own ONNX exporter and their nodes placed in skl2onnx's graph.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._onnx_estimators import (
    classifier_converter,
    classifier_shape,
    features,
    features_shape,
    is_multilabel,
    regressor_converter,
    regressor_shape,
)
from ._onnx_graph import float_like_input_shape, require_onnx
from ._onnx_transformers import (
    channel_standardizer,
    grayscale,
    grayscale_shape,
    pixel_scaler,
    refuse_loader,
    reshaper,
    reshaper_shape,
    resizer,
    resizer_shape,
    unreachable,
)
from ._series import takes_series

__all__ = ["to_onnx", "register_converters"]


_REGISTERED = False


def register_converters() -> None:
    """Register sklearn-cnn's shape calculators and converters with skl2onnx (once).

    After this, ``skl2onnx.to_onnx`` exports Pipelines that mix sklearn-cnn's steps with
    scikit-learn's own; :func:`to_onnx` calls it itself.

    Examples
    --------
    >>> import skl2onnx
    >>> from sklearn_cnn.export import register_converters
    >>> register_converters()
    >>> "SklearnCnnCNNClassifier" in skl2onnx.supported_converters()
    True
    """
    global _REGISTERED
    if _REGISTERED:
        return
    require_onnx()
    from skl2onnx import update_registered_converter

    from .classifier import CNNClassifier, CNNRegressor
    from .feature_extraction import PretrainedFeatures
    from .files import ImageLoader
    from .preprocessing import (
        ChannelStandardizer,
        GrayscaleToRGB,
        ImageReshaper,
        ImageResizer,
        PixelScaler,
    )
    from .timeseries import TimeSeriesClassifier, TimeSeriesRegressor
    from .transfer import TransferClassifier, TransferRegressor

    classifier_options = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
    for cls in (CNNClassifier, TransferClassifier, TimeSeriesClassifier):
        update_registered_converter(cls, f"SklearnCnn{cls.__name__}", classifier_shape,
                                    classifier_converter, options=classifier_options)
    for cls in (CNNRegressor, TransferRegressor, TimeSeriesRegressor):
        update_registered_converter(cls, f"SklearnCnn{cls.__name__}", regressor_shape,
                                    regressor_converter)
    for cls, shape, converter in [
        (PixelScaler, float_like_input_shape, pixel_scaler),
        (ChannelStandardizer, float_like_input_shape, channel_standardizer),
        (ImageReshaper, reshaper_shape, reshaper),
        (ImageResizer, resizer_shape, resizer),
        (GrayscaleToRGB, grayscale_shape, grayscale),
        (PretrainedFeatures, features_shape, features),
        (ImageLoader, refuse_loader, unreachable),
    ]:
        update_registered_converter(cls, f"SklearnCnn{cls.__name__}", shape, converter)
    _REGISTERED = True


def _check_sample(model, X_sample: np.ndarray) -> None:
    """The graph takes images shaped as ``X_sample`` (the batch axis free): refuse a sample
    that the model itself refuses (another size, another channel count, an unfitted model),
    so that the graph never runs on images ``predict`` would not take."""
    from sklearn.utils.validation import check_is_fitted

    from ._validation import last_step

    check_is_fitted(model)  # NotFittedError, before any shape is looked at
    head = X_sample[:1]
    if hasattr(model, "predict"):
        model.predict(head)
    else:
        model.transform(head)
    final = last_step(model)
    if getattr(getattr(final, "net_", None), "autocast_dtype", None) is not None:
        warnings.warn(
            f"{type(final).__name__} predicts with bfloat16 autocast (precision="
            f"{final.precision!r} on {final.device_}); the ONNX graph computes in float32, so "
            "its outputs differ from predict's by bfloat16's rounding (up to about 1e-2 in "
            "probability), not by 1e-5. For 1e-5 agreement, fit with precision='float32'.",
            UserWarning, stacklevel=3)


def _initial_type(X, *, series: bool = False):
    from skl2onnx.common.data_types import FloatTensorType, UInt8TensorType

    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X_sample must be a batch of images, series (or flat rows), got "
                         f"shape {X.shape}.")
    if series:  # series of any length: the time axis is free
        return [("X", FloatTensorType([None, *X.shape[1:-1], None]))]
    kind = UInt8TensorType if X.dtype == np.uint8 else FloatTensorType
    return [("X", kind([None, *X.shape[1:]]))]


def to_onnx(model, X_sample, *, target_opset: int | None = None, zipmap: bool = False):
    """Export a fitted estimator, transformer or Pipeline of ours as one ONNX graph.

    The graph takes the images ``predict`` takes (uint8, or floats computed as float32;
    channels-last, grayscale without a channel axis, or flat rows, as ``X_sample`` is) with
    a dynamic batch axis, and does all of the preprocessing itself: pixel scaling, learned
    standardisation, TransferClassifier's grayscale-to-RGB, resize and normalisation.
    The outputs follow skl2onnx's conventions: a classifier's are ``label`` (the
    ``classes_`` values: int64 for numbers, strings otherwise; for label sets the (n,
    n_labels) int64 indicator matrix) and ``probabilities`` (float32, one column per class
    or label); a regressor's is ``variable``, float32 of shape (n, n_outputs), on the
    targets' own scale. A model fitted with ``tta=True`` averages with the mirrored images
    in the graph too. Run it with onnxruntime. Needs ``pip install 'sklearn-cnn[onnx]'``.

    Parameters
    ----------
    model : estimator, transformer or Pipeline
        Fitted; Pipelines may mix our steps with scikit-learn's (the converters are
        registered with skl2onnx). ImageLoader cannot be exported (a graph does not read
        files): export ``pipeline[1:]``.
    X_sample : array-like
        A few images as ``predict`` takes them; their dtype (uint8 or float) and shape (after
        the batch axis) define the graph's input, which then takes images of that shape
        only. A sample the model itself refuses (another image size or channel count than
        it was fitted on) is refused here too.
    target_opset : int or None, default=None
        The ONNX opset; at least 18 (antialiased Resize). None: the newest skl2onnx knows.
    zipmap : bool, default=False
        Probabilities as a list of {class: probability} maps (skl2onnx's ZipMap) instead of
        a tensor (single-label classifiers only).

    Returns
    -------
    onnx.ModelProto

    Examples
    --------
    >>> import numpy as np, onnxruntime as ort
    >>> from sklearn_cnn import CNNClassifier, to_onnx
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X = X.astype(np.float32)
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=5, lr=0.01, precision="float32",
    ...                     device="cpu", random_state=0).fit(X[:200], y[:200])
    >>> onx = to_onnx(clf, X[:2])
    >>> session = ort.InferenceSession(onx.SerializeToString())
    >>> label, proba = session.run(None, {"X": X[:5]})
    >>> bool((label == clf.predict(X[:5])).all()), proba.shape
    (True, (5, 10))
    """
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    from ._validation import last_step
    from .files import ImageLoader

    register_converters()
    from skl2onnx import to_onnx as skl_to_onnx

    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    if isinstance(first, ImageLoader):
        refuse_loader()
    final = last_step(model)
    series = takes_series(final) and first is final
    _check_sample(model, X_sample)
    if series:  # a list of unequal lengths: the NaN-padded batch the graph takes
        from ._series import to_series_array

        padded, as_list = to_series_array(X_sample, estimator=final)
        univariate = not as_list and np.asarray(X_sample).ndim == 2
        X_sample = padded[:, 0] if univariate else padded
    X_sample = np.asarray(X_sample)
    if X_sample.dtype != np.uint8:
        X_sample = X_sample.astype(np.float32)
    options = {}
    if zipmap and (not is_classifier(final) or is_multilabel(final)):
        raise ValueError("zipmap=True maps each class to its probability, one class per "
                         "image: it applies to single-label classifiers only. Leave "
                         "zipmap=False.")
    if is_classifier(final):
        options[id(final)] = {"zipmap": zipmap}
    return skl_to_onnx(model, initial_types=_initial_type(X_sample, series=series),
                       target_opset=target_opset, options=options or None)
