"""Series for the network: what a user passes, checked (before torch sees it, with errors
that name the problem and the fix), in one NaN-padded float32 array; the lengths of its
series, and per-channel statistics over their real time points.

The time-series estimators take aeon's and sktime's numpy layout (n_cases, n_channels,
n_timepoints), a 2-D array (n_cases, n_timepoints) of univariate series, or a list of
(n_channels, n_timepoints_i) arrays of unequal lengths. All become one array (n_cases,
n_channels, longest) in which shorter series are padded at the end with NaN: the
networks (:mod:`sklearn_cnn.networks1d`) turn that padding into a mask and ignore it, so
that padding loses nothing. NaN inside a series is refused: it would be read as padding.

Arrays follow scikit-learn's bookkeeping (``n_features_in_``, column names): after a fit
on series of one length, ``predict`` takes arrays of that length, as any scikit-learn model
checks its columns, and series of other lengths as a list.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.utils.validation import check_array

from ._validation import input_bookkeeping

SERIES_LAYOUT_HELP = (
    "Pass series as (n_cases, n_channels, n_timepoints) (aeon's and sktime's layout), "
    "(n_cases, n_timepoints) for univariate series, or a list of (n_channels, "
    "n_timepoints_i) arrays for series of unequal lengths."
)


def takes_series(estimator) -> bool:
    """Whether a sklearn-cnn estimator takes series (the time-series estimators) rather
    than images."""
    return getattr(estimator, "_samples", "images") == "series"


def _is_series_list(X) -> bool:
    """Whether ``X`` is a list of series (arrays), rather than an array of numbers."""
    if isinstance(X, np.ndarray):
        return X.dtype == object and X.ndim == 1 and len(X) > 0 and all(
            np.ndim(x) >= 1 for x in X)
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(
        not isinstance(x, (str, bytes, numbers.Number)) and np.ndim(x) >= 1 for x in X)


def _one_series(x, index: int) -> np.ndarray:
    """One series of a list as a float (n_channels, n_timepoints) array."""
    try:
        series = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"X[{index}] is not a numeric series: each entry of a list of series "
                         "is an array of numbers, (n_channels, n_timepoints) or "
                         "(n_timepoints,).") from None
    if series.ndim == 1:
        series = series[np.newaxis]
    if series.ndim != 2:
        raise ValueError(f"X[{index}] has {series.ndim} dimensions (shape {series.shape}); each "
                         "series of a list is (n_channels, n_timepoints), or (n_timepoints,) "
                         "for one channel.")
    if series.shape[1] == 0:
        raise ValueError(f"X[{index}] has no time points; every series needs at least one.")
    _refuse_missing(series[np.newaxis], first=index, padding_hint=False)
    return series


def _padded(series: list[np.ndarray]) -> np.ndarray:
    """Series of one channel count as (n_cases, n_channels, longest) float32, NaN-padded."""
    first = series[0].shape[0]
    other = next((i for i, s in enumerate(series) if s.shape[0] != first), None)
    if other is not None:
        raise ValueError(
            f"X mixes channel counts: X[0] has {first} channel(s), X[{other}] has "
            f"{series[other].shape[0]}. Every series needs the same channels (sensors, "
            "leads); select or add channels so that they match.")
    longest = max(s.shape[1] for s in series)
    out = np.full((len(series), first, longest), np.nan, dtype=np.float32)
    for i, s in enumerate(series):
        out[i, :, :s.shape[1]] = s
    return out


def _refuse_missing(values: np.ndarray, *, first: int = 0, padding_hint: bool = True) -> None:
    """NaN or infinity in (n, channels, time) series: refused, with where and what to do.
    ``first`` is the index of ``values[0]`` in X."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    case, channel, time = (int(i[0]) for i in np.nonzero(bad))
    n_bad = int(bad.any(axis=(1, 2)).sum())
    kind = "NaN" if np.isnan(values[case, channel, time]) else "infinity"
    hint = (" If NaN pads shorter series at the end, pass the series as a list of arrays of "
            "their own lengths instead (X[i][:, :length]).") if padding_hint else ""
    raise ValueError(
        f"X has missing or infinite values (NaN, inf) in {n_bad} series, the first {kind} in "
        f"series {case + first}, channel {channel}, time point {time}. The networks take "
        "complete series: fill the gaps (e.g. interpolate along time, as pandas' "
        "DataFrame.interpolate(axis=1) does) or drop those series." + hint)


def to_series_array(X, *, estimator) -> tuple[np.ndarray, bool]:
    """``X`` as one (n_cases, n_channels, longest) float32 array, NaN-padded, and whether
    it came as a list (series of their own lengths) rather than an array."""
    name = type(estimator).__name__
    if _is_series_list(X):
        return _padded([_one_series(x, i) for i, x in enumerate(X)]), True
    X = check_array(X, allow_nd=True, dtype="numeric", ensure_all_finite=False,
                    estimator=estimator, input_name="X", ensure_2d=False)
    if X.ndim == 1:
        # Our message, not check_array's, whose fix for 1-D input (reshape(-1, 1)) would make
        # each time point a series of its own.
        raise ValueError(f"X is 1-D (shape {X.shape}); {name} takes a set of series. Reshape "
                         "your data: X.reshape(1, -1) for one univariate series. "
                         + SERIES_LAYOUT_HELP)
    if X.ndim == 2:
        X = X[:, np.newaxis, :]
    elif X.ndim != 3:
        raise ValueError(f"X has {X.ndim} dimensions (shape {X.shape}); {name} takes series. "
                         + SERIES_LAYOUT_HELP)
    _refuse_missing(X)
    values = X.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError(f"X has values up to {float(np.abs(X).max()):.3g}, beyond float32's "
                         "range (3.4e38): they would be infinite in the network. Rescale the "
                         "series first.")
    return values, False


def series_lengths(values: np.ndarray) -> np.ndarray:
    """The real length of each series of a NaN-padded array."""
    return (~np.isnan(values[:, 0, :])).sum(axis=1)


def validate_series(estimator, X, *, fitting: bool) -> tuple[np.ndarray, dict]:
    """Checked series, NaN-padded, and the input bookkeeping a fit commits.

    At a first fit (``fitting=True``) the bookkeeping is new: column names of a DataFrame,
    and ``n_features_in_`` (values per series) when the series have one length. Afterwards
    the channels must match the fitted ones, and an array (not a list) the fitted length.
    """
    values, as_list = to_series_array(X, estimator=estimator)
    if fitting:
        bookkeeping = (input_bookkeeping(estimator, X, reset=True) if not as_list
                       else {"feature_names_in_": None})
        lengths = series_lengths(values)
        one_length = bool((lengths == values.shape[2]).all())
        bookkeeping["n_features_in_"] = (int(values.shape[1] * values.shape[2]) if one_length
                                         else None)
        return values, bookkeeping
    name = type(estimator).__name__
    channels = estimator.input_shape_[0]
    if values.shape[1] != channels:
        raise ValueError(
            f"X has series of {values.shape[1]} channel(s), but {name} was fitted on "
            f"{channels}. Pass the same channels, in the same order, as in fit.")
    if not as_list:
        input_bookkeeping(estimator, X, reset=False)
        fitted = getattr(estimator, "n_features_in_", None)
        n_features = values.shape[1] * values.shape[2]
        if fitted is not None and n_features != fitted:
            raise ValueError(
                f"X has {n_features} features, but {name} is expecting {fitted} features as "
                f"input: series of {values.shape[2]} time points, where fit saw "
                f"{fitted // channels}. Arrays hold series of the training length (a column "
                "too many or too few is caught here); to predict series of other lengths, "
                "pass them as a list: list(X).")
    return values, {}


def check_min_length(values: np.ndarray, min_length: int, *, name: str, fix: str) -> None:
    """Refuse series shorter than ``min_length`` time points, what the network needs."""
    lengths = series_lengths(values)
    short = np.flatnonzero(lengths < min_length)
    if short.size:
        raise ValueError(
            f"X has {short.size} series shorter than the {min_length} time points {name}'s "
            f"network needs (series {int(short[0])} has {int(lengths[short[0]])}): its first "
            f"convolution would see more padding than series. {fix}")


def channel_statistics(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation over the real time points of a NaN-padded
    array, in float64; a constant channel gets a standard deviation of 1."""
    mean = np.nanmean(values, axis=(0, 2), dtype=np.float64)
    std = np.nanstd(values, axis=(0, 2), dtype=np.float64)
    return mean, np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
