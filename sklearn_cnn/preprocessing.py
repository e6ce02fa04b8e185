"""scikit-learn image transformers: deterministic, and stateless except what ``fit`` learns.

They take the same inputs as the estimators: (N, H, W) grayscale, (N, H, W, C) colour
(or (N, C, H, W) with ``data_format="channels_first"``), or flat rows (N, F). Random data
augmentation is deliberately not here: it is the estimators' ``augment`` parameter.
"""

from __future__ import annotations

import copy
import os
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    OneToOneFeatureMixin,
    TransformerMixin,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._data import (
    ImageDataset,
    channel_statistics,
    infer_image_shape,
    to_channels_last,
    to_compact_tensor,
)
from ._files import LazyImages, check_size
from ._validation import validate_input
from .devices import memory_format_for, resolve_device
from .networks import InputAdapter, TransferNet
from .transfer import WEIGHTS_ENUM, check_backbone_channels, embed, load_backbone

__all__ = [
    "ImageLoader",
    "ImageReshaper",
    "PixelScaler",
    "ChannelStandardizer",
    "ImageResizer",
    "GrayscaleToRGB",
    "PretrainedFeatures",
]

_CHUNK = 1024  # images converted at a time, to bound temporary memory


class _ImageTransformer(TransformerMixin, BaseEstimator):
    """Input validation and tags shared by the image transformers."""

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


class _Float32Output:
    """Tags for transformers whose output is float32 (compact images), whatever comes in."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags


def _channel_axis(X: np.ndarray, data_format: str) -> int | None:
    """The channel axis of an image array, or None for grayscale without one."""
    if X.ndim == 4:
        return 1 if data_format == "channels_first" else 3
    return None


def _check_paths(X) -> np.ndarray:
    """``X`` as a 1-D array of path strings; a clear error for anything else."""
    if isinstance(X, LazyImages):
        return X.paths
    if isinstance(X, (str, bytes, os.PathLike)):
        raise TypeError(f"ImageLoader takes a list of image file paths, got the single path "
                        f"{os.fspath(X)!r}; pass [path].")
    array = np.asarray(X, dtype=object) if not hasattr(X, "dtype") else np.asarray(X)
    if array.ndim != 1 or array.dtype.kind not in "OU":
        raise TypeError(
            f"ImageLoader takes a 1-D list of image file paths, got an array of shape "
            f"{array.shape} and dtype {array.dtype}. Images already in memory need no "
            "ImageLoader: pass them to the next step directly.")
    bad = [x for x in array if not isinstance(x, (str, os.PathLike))]
    if bad:
        raise TypeError(f"ImageLoader takes image file paths (str or os.PathLike), but X holds "
                        f"{len(bad)} other value(s), e.g. {bad[0]!r}.")
    paths = np.array([os.fspath(x) for x in array], dtype=object)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise ValueError(f"{len(missing)} of the {len(paths)} image files do not exist, e.g. "
                         f"{missing[0]!r}.")
    return paths


class ImageLoader(TransformerMixin, BaseEstimator):
    """Image files → images: the one place where files are decoded and resized.

    Takes a 1-D list (or array) of paths to PNG, JPEG, WebP, GIF, BMP or TIFF files and
    returns their pixels as uint8 images of shape (n, height, width, channels), ready for
    the estimators and the other transformers. Put it first in a Pipeline, and the Pipeline
    fits and predicts on file paths: ``make_pipeline(ImageLoader(size=64), CNNClassifier())``.
    Training, prediction, the command line and saved models then all see the same pixels.

    Files are decoded by Pillow and resized with torchvision's bilinear resize with
    antialiasing, as in :class:`ImageResizer`; an image that already has the target size is
    returned exactly as decoded.

    Parameters
    ----------
    size : int, (int, int) or None, default=None
        (height, width) to resize every image to; an int gives square images. None keeps
        the files' size, which must then be the same for all (an error says otherwise).
    color_mode : {"rgb", "grayscale"}, default="rgb"
        3 channels, or 1 (Pillow's luma formula, exact for grey images).
    lazy : bool, default=False
        Return a :class:`~sklearn_cnn._files.LazyImages` collection (paths plus these
        settings, decoded only when needed) instead of an array. The estimators stream
        it in batches decoded by worker processes, or decode it once when it fits
        ``cache_bytes``; it pickles as paths, so searches ship paths, not pixels.
    n_jobs : int or None, default=None
        Worker processes that decode in parallel; None uses every core, 1 none.
    cache_bytes : int or "auto", default="auto"
        With ``lazy=True``: collections up to this many decoded bytes are decoded once into
        memory by the estimators; larger ones stream every epoch. "auto" is a quarter of
        the machine's memory, 0 always streams.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from sklearn_cnn.preprocessing import ImageLoader
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
    >>> for i, path in enumerate(paths):
    ...     Image.fromarray(np.full((10, 12, 3), 100 * i, dtype=np.uint8)).save(path)
    >>> ImageLoader().fit_transform(paths).shape
    (3, 10, 12, 3)
    >>> ImageLoader(size=8, color_mode="grayscale").fit_transform(paths).shape
    (3, 8, 8, 1)
    >>> ImageLoader(size=8, lazy=True).fit_transform(paths)
    LazyImages(3 files, size=(8, 8), color_mode='rgb', first=...)
    """

    _parameter_constraints: dict = {
        "size": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "color_mode": [StrOptions({"rgb", "grayscale"})],
        "lazy": ["boolean"],
        "n_jobs": [None, Integral],
        "cache_bytes": [StrOptions({"auto"}), Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, size=None, *, color_mode="rgb", lazy=False, n_jobs=None,
                 cache_bytes="auto"):
        self.size = size
        self.color_mode = color_mode
        self.lazy = lazy
        self.n_jobs = n_jobs
        self.cache_bytes = cache_bytes

    def fit(self, X, y=None):
        """Check the parameters and the paths; nothing is learned.

        Parameters
        ----------
        X : list or 1-D array of str or os.PathLike
            Image file paths.
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        check_size(self.size)
        _check_paths(X)
        return self

    def transform(self, X):
        """Decode (and resize) the image files.

        Parameters
        ----------
        X : list or 1-D array of str or os.PathLike
            Image file paths.

        Returns
        -------
        ndarray of shape (n_files, height, width, channels), uint8, or LazyImages
            The images; a lazy collection with ``lazy=True``.
        """
        self._validate_params()
        images = LazyImages(_check_paths(X), size=self.size, color_mode=self.color_mode,
                            n_jobs=self.n_jobs, cache_bytes=self.cache_bytes)
        return images if self.lazy else images.to_array()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags


class ImageReshaper(_ImageTransformer):
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

    def __init__(self, image_shape=None):
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


class PixelScaler(_Float32Output, OneToOneFeatureMixin, _ImageTransformer):
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

    def __init__(self, max_value=None):
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


class ChannelStandardizer(_Float32Output, OneToOneFeatureMixin, _ImageTransformer):
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

    def __init__(self, data_format="channels_last"):
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
        axis = _channel_axis(X, self.data_format)
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


class ImageResizer(_Float32Output, _ImageTransformer):
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

    def __init__(self, size=224, *, interpolation="bilinear", antialias=True,
                 data_format="channels_last"):
        self.size = size
        self.interpolation = interpolation
        self.antialias = antialias
        self.data_format = data_format

    def _output_size(self) -> list[int]:
        size = [self.size, self.size] if isinstance(self.size, Integral) else list(self.size)
        if len(size) != 2 or not all(isinstance(s, Integral) and s > 0 for s in size):
            raise ValueError(f"size must be a positive int or (height, width), got {self.size!r}.")
        return [int(s) for s in size]

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
        self._output_size()
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
        height, width = self._output_size()
        out = np.empty((len(images), height, width, images.shape[-1]), dtype=images.dtype)
        from torchvision.transforms import InterpolationMode
        from torchvision.transforms.v2 import functional as TF

        mode = InterpolationMode(self.interpolation)
        for start in range(0, len(images), _CHUNK):
            chunk = torch.from_numpy(np.ascontiguousarray(
                images[start:start + _CHUNK].transpose(0, 3, 1, 2)))
            resized = TF.resize(chunk, [height, width], interpolation=mode,
                                antialias=self.antialias)
            out[start:start + _CHUNK] = resized.permute(0, 2, 3, 1).numpy()
        if X.ndim == 4 and self.data_format == "channels_first":
            return out.transpose(0, 3, 1, 2)
        if X.ndim == 4 or out.shape[-1] != 1:
            return out
        return out[..., 0]


class GrayscaleToRGB(_ImageTransformer):
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

    def __init__(self, data_format="channels_last"):
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


class PretrainedFeatures(_Float32Output, ClassNamePrefixFeaturesOutMixin, _ImageTransformer):
    """Images → a pretrained backbone's pooled embeddings, for any scikit-learn model.

    ``make_pipeline(PretrainedFeatures(), LogisticRegression())`` is transfer learning
    without fine-tuning: the backbone's classifier layer is removed and the features
    before it become the columns of a 2-D array. Images are adapted per batch on the
    device (grayscale → RGB, resize, the weights' normalisation), in ``inference_mode``.

    Parameters
    ----------
    backbone : str, default="resnet18"
        A torchvision classification model (see :func:`sklearn_cnn.transfer.list_backbones`).
    weights : "DEFAULT", str, WeightsEnum, path or None, default="DEFAULT"
        As in :class:`~sklearn_cnn.TransferClassifier`.
    input_size : int or None, default=None
        Side of the images the backbone sees; None takes the weights' size, or 224.
    batch_size : int, default=64
        Images per forward pass.
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input.
    device : str or torch.device, default="auto"
        Where the backbone runs.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation when ``weights=None``.

    Attributes
    ----------
    model_ : torch.nn.Module
        The headless backbone behind its input adapter.
    device_ : torch.device
        The device it runs on.
    n_features_in_ : int
        Values per input image.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_cnn.datasets import load_sample_patches
    >>> from sklearn_cnn.preprocessing import PretrainedFeatures
    >>> X, y = load_sample_patches(patch_size=32, n_patches=10)
    >>> features = PretrainedFeatures("mobilenet_v3_small", weights=None, input_size=32,
    ...                               device="cpu", random_state=0)
    >>> features.fit_transform(X).shape
    (20, 1024)
    >>> make_pipeline(features, LogisticRegression()).fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "backbone": [str],
        "weights": [None, str, os.PathLike, WEIGHTS_ENUM],
        "input_size": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "data_format": [StrOptions({"channels_last", "channels_first"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(self, backbone="resnet18", *, weights="DEFAULT", input_size=None, batch_size=64,
                 data_format="channels_last", device="auto", random_state=None):
        self.backbone = backbone
        self.weights = weights
        self.input_size = input_size
        self.batch_size = batch_size
        self.data_format = data_format
        self.device = device
        self.random_state = random_state

    def fit(self, X, y=None):
        """Load the backbone and drop its classifier layer.

        Parameters
        ----------
        X : array-like of images
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        images = to_channels_last(self._validate(X, reset=True), data_format=self.data_format)
        check_backbone_channels(images.shape[-1], self.backbone)
        self.device_ = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.model_ = self._headless(load_backbone(self.backbone, self.weights,
                                                       self.input_size))
        return self

    def _headless(self, loaded) -> TransferNet:
        loaded.model.set_submodule(loaded.head_name, nn.Identity())
        adapter = InputAdapter(size=(loaded.input_size,) * 2, mean=loaded.mean, std=loaded.std)
        self._n_features_out = loaded.in_features
        return TransferNet(adapter=adapter, backbone=loaded.model).eval()

    def _rebuild_model(self, input_size: int) -> TransferNet:
        """The fitted model's architecture, to load saved weights into."""
        return self._headless(load_backbone(self.backbone, None, input_size))

    def transform(self, X):
        """The pooled embeddings of the images.

        Parameters
        ----------
        X : array-like of images

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        images = to_channels_last(self._validate(X, reset=False), data_format=self.data_format)
        check_backbone_channels(images.shape[-1], self.backbone)
        model = self.model_.to(device=self.device_, memory_format=memory_format_for(
            self.device_))
        features = embed(model, ImageDataset(to_compact_tensor(images)),
                         batch_size=self.batch_size, device=self.device_)
        return features.cpu().numpy()

    def __getstate__(self):
        state = super().__getstate__()
        if "model_" in state and next(self.model_.buffers()).device.type != "cpu":
            # Saved models load on machines without a GPU.
            state["model_"] = copy.deepcopy(self.model_).cpu()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device_" in state and self.device_.type == "cuda" and not torch.cuda.is_available():
            self.device_ = torch.device("cpu")
