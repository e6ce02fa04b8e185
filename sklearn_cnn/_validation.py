"""Input validation: the one place where what a user passes is checked, before torch sees
it, with errors that name the problem and the fix.

Arrays (numeric, finite, within float32, 2 to 4 dimensions), lists (of images of one size,
not of file paths), lazy image collections, layouts (a channels-first warning, a single image
at predict), targets, random states, fitted models passed to the diagnostics, and
scikit-learn's input bookkeeping, returned rather than set so that a fit commits it only
when training succeeded.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _assert_all_finite,
    _check_feature_names,
    _get_feature_names,
    check_array,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)

from ._data import LAYOUT_HELP, pixel_range, to_channels_last
from .files import LazyImages

# float32 holds values up to about 3.4e38: larger pixels become infinity on the device.
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _describe_sequence(X) -> None:
    """Clear errors for lists that NumPy would turn into a confusing message: file paths,
    and images of different sizes."""
    if not isinstance(X, (list, tuple)) or len(X) == 0:
        return
    first = X[0]
    if isinstance(first, (str, bytes, os.PathLike)):
        raise TypeError(
            f"X holds {len(X)} file paths (e.g. {str(first)!r}), not images. Load them with "
            "sklearn_cnn.preprocessing.ImageLoader, e.g. make_pipeline(ImageLoader(size=64), "
            "CNNClassifier()), or sklearn_cnn.datasets.load_image_folder(folder)."
        )
    shapes = {np.shape(x) for x in X}
    if len(shapes) > 1 and all(len(shape) >= 2 for shape in shapes):
        examples = ", ".join(str(shape) for shape in sorted(shapes)[:3])
        raise ValueError(
            f"X is a list of {len(X)} images of {len(shapes)} different shapes ({examples}"
            f"{', ...' if len(shapes) > 3 else ''}); a batch of images needs one shape. Resize "
            "them to one size first: ImageLoader(size=(height, width)) for image files, or "
            "ImageResizer(size=...) on each group of equal-sized images."
        )


def check_pixels(X, *, estimator=None) -> np.ndarray:
    """``X`` as a numeric, finite, non-empty array of 2 to 4 dimensions.

    Reuses scikit-learn's ``check_array`` for the numeric, finite and non-empty checks (and
    its messages), then adds the image rules: the number of dimensions, and values that
    float32 (the network's precision) can hold.
    """
    _describe_sequence(X)
    X = check_array(X, allow_nd=True, dtype="numeric", ensure_all_finite=True,
                    estimator=estimator, input_name="X")
    if X.ndim > 4:
        raise ValueError(f"X has {X.ndim} dimensions (shape {X.shape}); images have 2 to 4. "
                         + LAYOUT_HELP)
    if X.dtype == np.bool_:
        X = X.astype(np.float32)
    if X.dtype.kind == "f" and X.dtype.itemsize > 4:
        largest = float(np.abs(X).max())
        if largest > _FLOAT32_MAX:
            raise ValueError(
                f"X has pixel values up to {largest:.3g}, beyond float32's range (3.4e38): "
                "they would be infinite in the network. Rescale the images (e.g. "
                "PixelScaler, or divide by their maximum) before fitting or predicting."
            )
    return X


def warn_if_channels_first(X: np.ndarray, data_format: str) -> None:
    """Warns when 4-D input in the default channels-last layout looks channels-first.

    PyTorch users pass (N, C, H, W) by habit; read as channels-last, such an array trains
    on images C pixels high with W channels, and learns much less, without an error.
    """
    if X.ndim != 4 or data_format != "channels_last":
        return
    _, c, h, w = X.shape
    if c in (1, 3, 4) and w > 4 and h > 4:
        warnings.warn(
            f"X has shape {X.shape}: this looks like channels-first images (n, channels, "
            f"height, width) = (n, {c}, {h}, {w}), but it is read as channels-last (n, "
            f"height, width, channels): {c}-pixel-high images with {w} channels. If the "
            "channels come first, pass data_format='channels_first' (or "
            "X.transpose(0, 2, 3, 1)).",
            UserWarning, stacklevel=4,
        )


def input_bookkeeping(estimator, X, *, reset: bool) -> dict:
    """scikit-learn's bookkeeping of the input, without setting anything.

    At fit (``reset=True``) returns the ``n_features_in_`` and ``feature_names_in_`` to
    commit once training succeeded (None for no column names); afterwards checks ``X``
    against them with scikit-learn's own messages.
    """
    if reset:
        return {"feature_names_in_": _get_feature_names(X)}
    _check_feature_names(estimator, X, reset=False)
    return {}


def commit_bookkeeping(estimator, fitted: dict) -> None:
    """Sets the input bookkeeping :func:`input_bookkeeping` returned (as fit's last step)."""
    for name, value in fitted.items():
        if value is None:
            if hasattr(estimator, name):
                delattr(estimator, name)
        else:
            setattr(estimator, name, value)


def validate_input(estimator, X, *, reset: bool, commit: bool = True):
    """Checked pixels plus scikit-learn's bookkeeping of the input.

    Column names of DataFrames are checked by scikit-learn's own helper, and
    ``n_features_in_`` is the number of values per image; flat rows of another length are
    refused at predict/transform with scikit-learn's usual message. With ``commit=False``
    (the estimators' fit) the bookkeeping is returned with the array instead of set, so
    that a fit that fails leaves the fitted estimator as it was.
    """
    X_checked = check_pixels(X, estimator=estimator)
    fitted = input_bookkeeping(estimator, X if hasattr(X, "columns") else X_checked,
                               reset=reset)
    n_features = math.prod(X_checked.shape[1:])
    if reset:
        fitted["n_features_in_"] = n_features
    elif X_checked.ndim == 2 and n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input.")
    if not commit:
        return X_checked, fitted
    commit_bookkeeping(estimator, fitted)
    return X_checked



def validate_images(estimator, X, *, fitting: bool):
    """Checked channels-last images: the one place where input is validated.

    Returns the images and the input bookkeeping that a fit commits once training
    succeeded: new at a first fit (``fitting=True``), none when the images must match
    the fitted ones (prediction, warm start).
    """
    if isinstance(X, LazyImages):
        return _validate_files(estimator, X, fitting=fitting)
    if not fitting:
        _refuse_single_image(estimator, X)
    X, bookkeeping = validate_input(estimator, X, reset=fitting, commit=False)
    if fitting:
        warn_if_channels_first(X, estimator.data_format)
        images = to_channels_last(X, data_format=estimator.data_format,
                                  image_shape=estimator.image_shape)
    elif X.ndim == 2:  # flat rows of the right length: the training images' shape
        images = X.reshape(len(X), *estimator.input_shape_)
    else:
        images = to_channels_last(X, data_format=estimator.data_format)
        if tuple(images.shape[1:]) != estimator.input_shape_:
            raise ValueError(
                f"X holds images of shape {tuple(images.shape[1:])} (height, width, "
                f"channels), but {type(estimator).__name__} was fitted on images of shape "
                f"{estimator.input_shape_}. Resize them (ImageResizer) and convert channels "
                "(GrayscaleToRGB) as the training images were."
            )
    return images, bookkeeping


def _validate_files(estimator, X: LazyImages, *, fitting: bool):
    """A lazy image collection: its shape is known without decoding a pixel."""
    if len(X) == 0:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum "
                         f"of 1 is required by {type(estimator).__name__}.")
    shape = tuple(X.shape[1:])
    if fitting:
        return X, {"n_features_in_": math.prod(shape), "feature_names_in_": None}
    if shape != estimator.input_shape_:
        raise ValueError(
            f"X holds images of shape {shape} (height, width, channels), but "
            f"{type(estimator).__name__} was fitted on images of shape {estimator.input_shape_}. "
            f"Load them as the training images were: ImageLoader(size="
            f"{estimator.input_shape_[:2]}, color_mode="
            f"{'grayscale' if estimator.input_shape_[2] == 1 else 'rgb'!r}).")
    return X, {}


def other_pixel_scale(estimator, images: np.ndarray,
                      pixels: tuple[float, float] | None = None) -> str | None:
    """What is wrong when images span a range of another order of magnitude than the
    training images (0..255 floats after training on 0..1, or the reverse), else None: the
    network would see inputs it never saw. ``pixels`` is their range, if known."""
    low, high = pixels if pixels is not None else pixel_range(images)
    train_low, train_high = getattr(estimator, "pixel_range_", (low, high))
    span, train_span = high - low, train_high - train_low
    if train_span > 0 and span > 0 and not 0.1 <= span / train_span <= 10:
        return (f"X has pixel values from {low:.3g} to {high:.3g} (uint8 counted as 0..1), "
                f"but {type(estimator).__name__} was trained on values from {train_low:.3g} "
                f"to {train_high:.3g}")
    return None


def warn_if_other_pixel_scale(estimator, images: np.ndarray) -> None:
    """Warns when images to predict are scaled unlike the training images (see
    :func:`other_pixel_scale`): predictions on them are meaningless, without an error."""
    problem = other_pixel_scale(estimator, images)
    if problem:
        warnings.warn(
            f"{problem}: predictions on input scaled so differently are meaningless. Scale X "
            "as the training images were (e.g. uint8 for uint8, or the same PixelScaler in a "
            "Pipeline).", UserWarning, stacklevel=3)


def check_warm_start_pixel_scale(estimator, images, pixels: tuple[float, float]) -> None:
    """A warm start on images scaled far beyond the first fit's (0..255 floats after
    uint8, whose network sees 0..1) would train on inputs the network never saw and
    lose what it knew: refused. Images spanning much less than before (a dark batch,
    or 0..1 floats after 0..255 floats) get the warning predict gives."""
    problem = other_pixel_scale(estimator, images, pixels)
    if problem is None:
        return
    low, high = pixels
    train_low, train_high = estimator.pixel_range_
    if (high - low) > (train_high - train_low):
        raise ValueError(
            f"{problem}. A warm-start fit (or partial_fit) continues that network, which "
            "would see inputs it never saw and learn anew from them, silently losing what "
            "it knew. Scale X as the first fit's images were (uint8 for uint8, or the same "
            "PixelScaler), or set warm_start=False (or clone the estimator) to train a new "
            "network.")
    warn_if_other_pixel_scale(estimator, images)


def _refuse_single_image(estimator, X) -> None:
    """One image passed without the batch axis: say so, instead of a shape error."""
    shape = tuple(np.shape(X)) if hasattr(X, "shape") or isinstance(X, (list, tuple)) \
        else ()
    height, width, channels = estimator.input_shape_
    single = {(height, width, channels)}
    if channels == 1:
        single.add((height, width))
    if estimator.data_format == "channels_first":
        single = {(channels, height, width)} | ({(height, width)} if channels == 1 else set())
    if len(shape) == 2 and shape[1] == estimator.n_features_in_:
        return  # also a batch of flat rows
    if shape in single:
        raise ValueError(
            f"X has the shape {shape} of a single image; {type(estimator).__name__} takes a "
            "batch of images. Pass X[np.newaxis] (or [X]) to predict one image.")


def check_class_labels(y, n_images: int) -> np.ndarray:
    """``y`` as a 1-D array of class labels, one per image."""
    if isinstance(y, (list, tuple)) and any(
            isinstance(row, (set, frozenset)) or (isinstance(row, (list, tuple)) and len(row) != 1)
            for row in y):  # [[label], ...] is a column, which column_or_1d accepts
        raise ValueError(
            "y holds lists of labels per image; for label sets, pass an indicator matrix "
            "of 0 and 1, one column per label: "
            "sklearn.preprocessing.MultiLabelBinarizer().fit_transform(y). For one label "
            "per image, pass a flat list of labels.")
    y = column_or_1d(y, warn=True)
    check_consistent_length(np.empty(n_images), y)
    if y.dtype.kind == "f":
        _assert_all_finite(y, input_name="y")
    if y.dtype == object:
        missing = np.flatnonzero(np.array([label is None for label in y]))
        if missing.size:
            raise ValueError(
                f"y has {missing.size} missing label(s) (None), e.g. at positions "
                f"{missing[:5].tolist()}. Give every image a label, or drop the unlabelled "
                "images from X and y.")
    check_classification_targets(y)
    return y


def check_label_indicator(y, n_images: int) -> np.ndarray:
    """``y`` as a 2-D binary indicator matrix (n_images, n_labels) of label sets."""
    y = check_array(y, ensure_2d=True, dtype=None, input_name="y", accept_sparse=False,
                    ensure_all_finite=False) if not hasattr(y, "toarray") else y.toarray()
    check_consistent_length(np.empty(n_images), y)
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError(
            f"y has {int((~np.isfinite(y)).sum())} missing or infinite entries (NaN, inf); a "
            "label set says 1 or 0 for every label. Fill unknown entries with 0, or drop "
            "those images from X and y.")
    values = np.unique(y)
    if not np.isin(values, [0, 1]).all():
        raise ValueError(
            f"y is a matrix of shape {y.shape} whose values are {values[:5].tolist()}; label "
            "sets are a binary indicator matrix of 0 and 1, one column per label (what "
            "sklearn.preprocessing.MultiLabelBinarizer makes). For one label per image, pass "
            "a 1-D y.")
    return y


def check_regression_targets(y, n_images: int, *, estimator_name: str,
                             warn: bool = True) -> np.ndarray:
    """``y`` as finite float64 targets of shape (n_images,) or (n_images, n_outputs).

    Text or object targets are refused; integer targets with few distinct values (class
    labels by the look of them) are used as numbers, with a warning that says how to
    silence it, or to use a classifier.
    """
    y_array = np.asarray(y)
    if y_array.ndim not in (1, 2):
        raise ValueError(
            f"y has {y_array.ndim} dimensions (shape {y_array.shape}); {estimator_name} takes "
            "one target per image, shape (n_samples,), or several, shape (n_samples, "
            "n_outputs). Flatten each image's targets into one row.")
    if y_array.dtype.kind in "OUS":
        try:
            y_array = y_array.astype(np.float64)
        except (TypeError, ValueError):
            example = y_array.ravel()[0]
            raise ValueError(
                f"y holds text values such as {str(example)!r}: "
                f"{estimator_name} predicts numbers. For class labels, use the classifier "
                "(CNNClassifier, TransferClassifier).") from None
    y_array = check_array(y_array, ensure_2d=False, dtype=np.float64, input_name="y",
                          ensure_all_finite=True)
    check_consistent_length(np.empty(n_images), y_array)
    if warn and np.asarray(y).dtype.kind in "iub":
        distinct = np.unique(y_array)
        if len(distinct) <= 10:
            shown = ", ".join(f"{v:g}" for v in distinct[:5]) + (", ..." if len(distinct) > 5
                                                                 else "")
            warnings.warn(
                f"y holds integers with {len(distinct)} distinct values ({shown}): class "
                f"labels by the look of them. {estimator_name} predicts numbers between them, "
                "not classes; for classes use the classifier (CNNClassifier, "
                "TransferClassifier). If they are numbers to predict (counts), pass "
                "y.astype(float) to silence this.", UserWarning, stacklevel=6)
    return y_array


def seed_of(random_state) -> int:
    """The int seed a fit draws from ``random_state`` (int, RandomState or None)."""
    return int(check_random_state(random_state).randint(2**31 - 1))


def last_step(model):
    """``model`` itself, or a Pipeline's last step."""
    return model.steps[-1][1] if hasattr(model, "steps") else model


def final_step(model, *, expected: type, what: str, fitted: bool = True):
    """The estimator at the end of ``model`` (``model`` itself, or a Pipeline's last step),
    checked to be an ``expected`` instance (``what`` names it in the error) and, unless
    ``fitted=False``, to be fitted."""
    final = last_step(model)
    if not isinstance(final, expected):
        raise TypeError(f"Expected {what} (or a Pipeline ending in one), got "
                        f"{type(final).__name__}.")
    if fitted:
        check_is_fitted(final)
    return final
