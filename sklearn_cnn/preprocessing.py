"""scikit-learn image transformers: deterministic, and stateless except what ``fit`` learns.

They take the same inputs as the estimators: (N, H, W) grayscale, (N, H, W, C) colour
(or (N, C, H, W) with ``data_format="channels_first"``), or flat rows (N, F). Random data
augmentation is deliberately not here: it is the estimators' ``augment`` parameter.

:class:`~sklearn_cnn.files.ImageLoader` (image files → arrays) can be imported from here
too; :class:`~sklearn_cnn.feature_extraction.PretrainedFeatures` (images → a pretrained
network's embeddings) lives in :mod:`sklearn_cnn.feature_extraction`. Importing this module
loads neither skorch nor any training code.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._data import (
    channel_statistics,
    check_size,
    infer_image_shape,
    resize_batch,
    to_channels_last,
)
from ._validation import validate_input
from .files import ImageLoader

__all__ = ["ImageLoader", "ImageReshaper", "PixelScaler", "ChannelStandardizer",
           "ImageResizer", "GrayscaleToRGB"]

_CHUNK = 1024  # images converted at a time, to bound temporary memory


class ImageTransformer(TransformerMixin, BaseEstimator):
    """Input validation and tags shared by the image transformers (and PretrainedFeatures)."""

    def _validate(self, X, *, reset: bool) -> np.ndarray:
        return validate_input(self, X, reset=reset)

    def fit(self, X, y=None):
        """Check ``X`` and learn what the transformer needs from it.

        Parameters
        ----------
        X : array-like of images or flat rows
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        self._validate(X, reset=True)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


class Float32Output:
    """Tags for transformers whose output is float32 (compact images), whatever comes in."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def channel_axis(X: np.ndarray, data_format: str) -> int | None:
    """The channel axis of an image array, or None for grayscale without one."""
    if X.ndim == 4:
        return 1 if data_format == "channels_first" else 3
    return None


class ImageReshaper(ImageTransformer):
    """Turn flat rows (N, F) into images (N, H, W[, C]), and back.

    Parameters
    ----------
    image_shape : tuple of int or None, default=None
        (height, width) or (height, width, channels). None makes a perfect-square F a
        square grayscale image (64 → 8×8) and any other F a one-pixel-high strip.

    Attributes
    ----------
    image_shape_ : tuple of int
        (height, width, channels) of the images.
    n_features_in_ : int
        Values per row.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import ImageReshaper
    >>> X = np.arange(2 * 64).reshape(2, 64)
    >>> ImageReshaper().fit_transform(X).shape
    (2, 8, 8)
    >>> ImageReshaper(image_shape=(4, 4, 4)).fit_transform(X).shape
    (2, 4, 4, 4)
    """

    _parameter_constraints: dict = {"image_shape": [None, tuple, list]}

    def __init__(self, *, image_shape=None):
        self.image_shape = image_shape

    def fit(self, X, y=None):
        """Learn the image shape from the row length (and ``image_shape``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._validate(X, reset=True)
        self.image_shape_ = infer_image_shape(self.n_features_in_, self.image_shape)
        return self

    def transform(self, X):
        """Reshape rows into images; grayscale images have no channel axis.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, height, width) or (n_samples, height, width, channels)
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        shape = self.image_shape_[:2] if self.image_shape_[2] == 1 else self.image_shape_
        return X.reshape(len(X), *shape)

    def inverse_transform(self, X):
        """Flatten images back into rows.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels])

        Returns
        -------
        ndarray of shape (n_samples, n_features)
        """
        check_is_fitted(self)
        X = np.asarray(X)
        return X.reshape(len(X), -1)


class PixelScaler(Float32Output, OneToOneFeatureMixin, ImageTransformer):
    """Scale pixel values to [0, 1] by dividing by the maximum pixel value.

    The maximum is learnt in ``fit`` unless given, so digits' 0..16 and uint8's 0..255
    both end up in [0, 1]. The output is float32 and keeps the input's shape.

    Parameters
    ----------
    max_value : float or None, default=None
        The value that maps to 1. None learns it: the largest value in the training data.

    Attributes
    ----------
    data_max_ : float
        The divisor used.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import PixelScaler
    >>> X = np.array([[[0, 8], [16, 4]]])
    >>> PixelScaler().fit_transform(X)
    array([[[0.  , 0.5 ],
            [1.  , 0.25]]], dtype=float32)
    """

    _parameter_constraints: dict = {"max_value": [None, Interval(Real, 0, None, closed="neither")]}

    def __init__(self, *, max_value=None):
        self.max_value = max_value

    def fit(self, X, y=None):
        """Learn the maximum pixel value (unless ``max_value`` is given).

        Parameters
        ----------
        X : array-like of images or flat rows
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        X = self._validate(X, reset=True)
        if self.max_value is not None:
            self.data_max_ = float(self.max_value)
        else:
            data_max = float(X.max())
            self.data_max_ = data_max if data_max > 0 else 1.0
        return self

    def transform(self, X):
        """Divide by ``data_max_``.

        Parameters
        ----------
        X : array-like of images or flat rows

        Returns
        -------
        ndarray of float32, of the same shape as X
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return (X / np.float32(self.data_max_)).astype(np.float32, copy=False)

    def inverse_transform(self, X):
        """Multiply by ``data_max_``.

        Parameters
        ----------
        X : array-like of images or flat rows

        Returns
        -------
        ndarray of float32, of the same shape as X
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return (X * np.float32(self.data_max_)).astype(np.float32, copy=False)


class ChannelStandardizer(Float32Output, OneToOneFeatureMixin, ImageTransformer):
    """Standardise each colour channel with the training data's mean and standard deviation.

    These are the normalisation statistics that travel with a fitted Pipeline, so that
    predictions see exactly the preprocessing that training saw.

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input.

    Attributes
    ----------
    mean_ : ndarray of shape (n_channels,)
        Per-channel mean of the training images.
    std_ : ndarray of shape (n_channels,)
        Per-channel standard deviation (1 where it is 0).
    n_channels_ : int
        Channels of the training images (1 for grayscale or flat input).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import ChannelStandardizer
    >>> X = np.stack([np.zeros((4, 4, 3)), np.full((4, 4, 3), 2.0)])
    >>> scaler = ChannelStandardizer().fit(X)
    >>> scaler.mean_, scaler.std_
    (array([1., 1., 1.]), array([1., 1., 1.]))
    >>> float(scaler.transform(X).max())
    1.0
    """

    _parameter_constraints: dict = {
        "data_format": [StrOptions({"channels_last", "channels_first"})],
    }

    def __init__(self, *, data_format="channels_last"):
        self.data_format = data_format

    def fit(self, X, y=None):
        """Learn per-channel means and standard deviations.

        Parameters
        ----------
        X : array-like of images or flat rows
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        images = to_channels_last(self._validate(X, reset=True), data_format=self.data_format)
        self.mean_, self.std_ = channel_statistics(images, chunk=_CHUNK)
        n_channels = images.shape[-1]
        self.n_channels_ = n_channels
        return self

    def _stats_shape(self, X: np.ndarray) -> tuple[int, ...]:
        axis = channel_axis(X, self.data_format)
        n_channels = 1 if axis is None else X.shape[axis]
        if n_channels != self.n_channels_:
            raise ValueError(f"X has {n_channels} channel(s), but {type(self).__name__} was "
                             f"fitted on images with {self.n_channels_}.")
        shape = [1] * X.ndim
        if axis is not None:
            shape[axis] = n_channels
        return tuple(shape)

    def transform(self, X):
        """Subtract the channel means and divide by the channel standard deviations.

        Parameters
        ----------
        X : array-like of images or flat rows

        Returns
        -------
        ndarray of float32, of the same shape as X
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        shape = self._stats_shape(X)
        mean = self.mean_.astype(np.float32).reshape(shape)
        std = self.std_.astype(np.float32).reshape(shape)
        return ((X - mean) / std).astype(np.float32, copy=False)

    def inverse_transform(self, X):
        """Undo :meth:`transform`.

        Parameters
        ----------
        X : array-like of images or flat rows

        Returns
        -------
        ndarray of float32, of the same shape as X
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        shape = self._stats_shape(X)
        return (X * self.std_.reshape(shape) + self.mean_.reshape(shape)).astype(np.float32)


class ImageResizer(Float32Output, ImageTransformer):
    """Resize images with torchvision's (antialiased) resize.

    Parameters
    ----------
    size : int or (int, int)
        Output (height, width); an int gives square images.
    interpolation : {"bilinear", "bicubic", "nearest"}, default="bilinear"
        Interpolation mode.
    antialias : bool, default=True
        Antialias when shrinking (as PIL does).
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input.

    Attributes
    ----------
    output_size_ : tuple of int
        (height, width) of the resized images.
    n_features_in_ : int
        Values per input image.

    Notes
    -----
    uint8 images stay uint8; other dtypes come back as float32. The output keeps the
    input's layout; flat rows come back as (N, height, width[, channels]) images.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import ImageResizer
    >>> X = np.zeros((2, 8, 8, 3), dtype=np.uint8)
    >>> ImageResizer(size=16).fit_transform(X).shape
    (2, 16, 16, 3)
    """

    _parameter_constraints: dict = {
        "size": [Interval(Integral, 1, None, closed="left"), tuple, list],
        "interpolation": [StrOptions({"bilinear", "bicubic", "nearest"})],
        "antialias": ["boolean"],
        "data_format": [StrOptions({"channels_last", "channels_first"})],
    }

    def __init__(self, *, size=224, interpolation="bilinear", antialias=True,
                 data_format="channels_last"):
        self.size = size
        self.interpolation = interpolation
        self.antialias = antialias
        self.data_format = data_format

    def fit(self, X, y=None):
        """Check the parameters and ``X``.

        Parameters
        ----------
        X : array-like of images or flat rows
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        super().fit(X)
        self.output_size_ = check_size(self.size)
        return self

    def transform(self, X):
        """Resize every image to ``size``.

        Parameters
        ----------
        X : array-like of images or flat rows

        Returns
        -------
        ndarray of resized images, in the input's layout
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        images = to_channels_last(X, data_format=self.data_format)
        if images.dtype != np.uint8:
            images = images.astype(np.float32, copy=False)
        height, width = self.output_size_
        out = np.empty((len(images), height, width, images.shape[-1]), dtype=images.dtype)
        for start in range(0, len(images), _CHUNK):
            chunk = torch.from_numpy(np.ascontiguousarray(
                images[start:start + _CHUNK].transpose(0, 3, 1, 2)))
            resized = resize_batch(chunk, (height, width), interpolation=self.interpolation,
                                   antialias=self.antialias)
            out[start:start + _CHUNK] = resized.permute(0, 2, 3, 1).numpy()
        if X.ndim == 4 and self.data_format == "channels_first":
            return out.transpose(0, 3, 1, 2)
        if X.ndim == 4 or out.shape[-1] != 1:
            return out
        return out[..., 0]


class GrayscaleToRGB(ImageTransformer):
    """Repeat a grayscale channel three times, for networks that expect RGB input.

    Three-channel input passes through unchanged, so the transformer can sit in a Pipeline
    that gets either.

    Parameters
    ----------
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input and of the output.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.preprocessing import GrayscaleToRGB
    >>> GrayscaleToRGB().fit_transform(np.zeros((2, 8, 8))).shape
    (2, 8, 8, 3)
    """

    _parameter_constraints: dict = {
        "data_format": [StrOptions({"channels_last", "channels_first"})],
    }

    def __init__(self, *, data_format="channels_last"):
        self.data_format = data_format

    def transform(self, X):
        """Give every image three identical channels.

        Parameters
        ----------
        X : array-like of grayscale (1 channel) or RGB images, or flat rows

        Returns
        -------
        ndarray of shape (n_samples, height, width, 3), or (n_samples, 3, height, width)
        with ``data_format="channels_first"``
        """
        check_is_fitted(self)
        images = to_channels_last(self._validate(X, reset=False), data_format=self.data_format)
        channels = images.shape[-1]
        if channels not in (1, 3):
            raise ValueError(f"GrayscaleToRGB takes grayscale (1 channel) or RGB (3 channels) "
                             f"images, got {channels} channels.")
        rgb = np.repeat(images, 3, axis=-1) if channels == 1 else images
        return rgb.transpose(0, 3, 1, 2) if self.data_format == "channels_first" else rgb

    def inverse_transform(self, X):
        """Average the three channels back into one grayscale image (N, H, W).

        Parameters
        ----------
        X : array-like of RGB images

        Returns
        -------
        ndarray of shape (n_samples, height, width)
        """
        check_is_fitted(self)
        X = np.asarray(X)
        images = to_channels_last(X, data_format=self.data_format)
        return images.mean(axis=-1)
