"""Images in files: the one decoder, the lazy image collection, and ImageLoader.

:func:`decode_image` is the only place where image files are decoded and resized, so that
training, prediction, the command line and :class:`ImageLoader` all see the same pixels.
:class:`LazyImages` is an array-like of image files (paths plus decode settings) that
scikit-learn's splitters index like an array and that pickles as paths; the estimators
decode it once into memory when it fits a budget, and otherwise stream it through
DataLoader worker processes, batch by batch. :class:`ImageLoader` is the Pipeline step
that turns paths into either (also importable from :mod:`sklearn_cnn.preprocessing`).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ._data import check_size, to_compact_tensor
from ._decode import IMAGE_SUFFIXES, decode_image

__all__ = ["ImageLoader", "LazyImages", "decode_image", "IMAGE_SUFFIXES"]

# Images per DataLoader batch when decoding a whole collection into memory.
_DECODE_BATCH = 64
# Collections this small decode in the calling process: starting workers costs more.
_IN_PROCESS = 32
# A worker that returns no batch in this long is reported, not waited for forever.
_WORKER_TIMEOUT_S = 300


def memory_budget() -> int:
    """A quarter of this machine's physical memory (2 GiB where it cannot be read)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 4
    except (ValueError, OSError, AttributeError):
        return 2 * 2**30


class _Decoded(torch.utils.data.Dataset):
    """The images of a collection, decoded by index: what DataLoader workers run."""

    def __init__(self, images: LazyImages):
        self.images = images

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.images._decode(i))


class _Checked(_Decoded):
    """None for a file that decodes, else the error message. Only whether it decodes: a
    readable image of another size is no unreadable file (and the collection's size, read
    from its first file, may be what is unreadable)."""

    def __getitem__(self, i: int) -> str | None:
        images = self.images
        try:
            decode_image(images.paths[i], images.size, images.color_mode)
        except ValueError as exc:
            return str(exc)
        return None


def _stack(images: list[torch.Tensor]) -> torch.Tensor:
    """(N, H, W, C) uint8, shared with the main process without a copy."""
    return torch.stack(images)


def _loader(dataset, workers: int, **kwargs) -> torch.utils.data.DataLoader:
    """A DataLoader whose worker processes decode ``dataset``.

    Workers are forked on Linux (a fork starts in milliseconds; a spawned worker imports
    torch again) and spawned elsewhere, named explicitly because joblib's loky workers
    (GridSearchCV's n_jobs) replace the default start method with one that cannot start
    them. The DataLoader gets its own generator: drawing its workers' seeds from torch's
    global RNG would change the dropout of a seeded fit. A worker that returns nothing for
    ``_WORKER_TIMEOUT_S`` seconds is an error, not a hang.
    """
    method = "fork" if sys.platform.startswith("linux") else "spawn"
    if method == "fork" and getattr(getattr(dataset, "images", None), "size", None):
        # Forked workers share the modules the parent has imported; torchvision's resize,
        # imported in each worker on its first image instead, costs a second per worker
        # and epoch (the package imports torchvision only where it is needed).
        import torchvision.transforms.v2.functional  # noqa: F401
    return torch.utils.data.DataLoader(
        dataset, num_workers=workers, timeout=_WORKER_TIMEOUT_S,
        multiprocessing_context=multiprocessing.get_context(method),
        generator=torch.Generator().manual_seed(0), **kwargs)


def _from_workers(loader):
    """The loader's batches; an error in a worker process reaches the caller as itself (the
    file and what is wrong with it), not as PyTorch's "Caught ValueError in DataLoader worker
    process 0. Original Traceback ..." with the worker's whole traceback in the message."""
    try:
        yield from loader
    except ValueError as exc:
        message = str(exc)
        if "DataLoader worker process" not in message:
            raise
        cause = message.strip().splitlines()[-1]
        raise ValueError(cause.split("ValueError: ", 1)[-1]) from None


class LazyImages:
    """An array-like collection of image files, decoded only when pixels are needed.

    It stands for the uint8 array of shape (n, height, width, channels) that decoding every
    file would give, without holding it: ``len``, ``shape``, ``dtype`` and ``ndim`` are those
    of that array; indexing by a slice, an integer array or a boolean mask gives another
    lazy collection, and an int gives one decoded image; ``np.asarray`` decodes them all.
    scikit-learn's splitters, ``cross_val_score``, ``GridSearchCV`` and ``train_test_split``
    index it unchanged, and it pickles as its paths and settings, never as pixels.

    Make one with :class:`~sklearn_cnn.preprocessing.ImageLoader` ``(lazy=True)`` or
    :func:`~sklearn_cnn.datasets.load_image_folder` ``(lazy=True)``.

    Parameters
    ----------
    paths : sequence of str or os.PathLike
        The image files.
    size : int, (int, int) or None, default=None
        Resize every image to (height, width); None requires every file to have the size
        of the first one.
    color_mode : {"rgb", "grayscale"}, default="rgb"
        3 or 1 channels.
    n_jobs : int or None, default=None
        DataLoader worker processes that decode in parallel, as scikit-learn counts them:
        None is 1 (decode in the calling process) unless inside a
        ``joblib.parallel_backend`` context, -1 is every core.
    cache_bytes : int or "auto", default="auto"
        The estimators decode a collection of at most this many bytes once into memory and
        train every epoch from there; a larger one streams from the files, decoded batch by
        batch by the workers, in memory that does not grow with the number of images.
        "auto" is a quarter of the machine's memory; 0 always streams.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from sklearn_cnn.files import LazyImages
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(4)]
    >>> for i, path in enumerate(paths):
    ...     Image.fromarray(np.full((8, 8, 3), 60 * i, dtype=np.uint8)).save(path)
    >>> images = LazyImages(paths, size=4)
    >>> images.shape, images.dtype, len(images[1:3]), images[np.array([True, False] * 2)].shape
    ((4, 4, 4, 3), dtype('uint8'), 2, (2, 4, 4, 3))
    >>> int(np.asarray(images)[3].max())
    180
    """

    ndim = 4
    dtype = np.dtype(np.uint8)

    def __init__(self, paths: Sequence, *, size=None, color_mode: str = "rgb",
                 n_jobs: int | None = None, cache_bytes="auto"):
        self.paths = np.array([os.fspath(p) for p in paths], dtype=object)
        self.size = check_size(size)
        if color_mode not in ("rgb", "grayscale"):
            raise ValueError(f"color_mode must be 'rgb' or 'grayscale', got {color_mode!r}.")
        self.color_mode = color_mode
        self.n_jobs = n_jobs
        self.cache_bytes = cache_bytes
        self._image_size = self.size

    # ------------------------------------------------------------------ the array view
    @property
    def image_size(self) -> tuple[int, int]:
        """(height, width) of every image: ``size``, or the first file's size."""
        if self._image_size is None:
            if not len(self.paths):
                raise ValueError("An empty collection has no image size.")
            from PIL import Image

            try:
                with Image.open(self.paths[0]) as image:  # reads the header only
                    width, height = image.size
            except (OSError, SyntaxError, ValueError) as exc:
                raise ValueError(f"Cannot read image file {self.paths[0]!r}: {exc}.") from None
            self._image_size = (height, width)
        return self._image_size

    @property
    def shape(self) -> tuple[int, int, int, int]:
        channels = 3 if self.color_mode == "rgb" else 1
        if not len(self.paths):
            return (0, *(self.size or (0, 0)), channels)
        return (len(self.paths), *self.image_size, channels)

    @property
    def nbytes(self) -> int:
        """Bytes of the decoded uint8 array."""
        return math.prod(self.shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, tuple):  # scikit-learn's _safe_indexing writes X[key, ...]
            if len(key) == 2 and key[1] is Ellipsis:
                key = key[0]
            else:
                raise IndexError("LazyImages can be indexed along the images only, e.g. "
                                 "images[3], images[2:5] or images[[0, 4]]; decode with "
                                 "np.asarray(images) to index pixels.")
        if isinstance(key, (int, np.integer)):
            if not -len(self) <= key < len(self):
                raise IndexError(f"index {int(key)} is out of bounds for a collection of "
                                 f"{len(self)} images")
            return self._decode(int(key) % len(self))
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        return self._with_paths(self.paths[key])

    def __array__(self, dtype=None, copy=None):
        array = self.to_array()
        return array if dtype is None else array.astype(dtype, copy=False)

    def __iter__(self):
        for i in range(len(self)):
            yield self._decode(i)

    def __repr__(self) -> str:
        first = f", first={self.paths[0]!r}" if len(self.paths) else ""
        return (f"LazyImages({len(self)} files, size={self.size}, "
                f"color_mode={self.color_mode!r}{first})")

    def _with_paths(self, paths) -> LazyImages:
        other = object.__new__(LazyImages)
        other.__dict__.update(self.__dict__)
        other.paths = np.asarray(paths, dtype=object).reshape(-1)
        return other

    # ------------------------------------------------------------------- decoding
    def _decode(self, i: int) -> np.ndarray:
        path = self.paths[i]
        pixels = decode_image(path, self.size, self.color_mode)
        expected = self.image_size
        if pixels.shape[:2] != tuple(expected):
            raise ValueError(
                f"Image file {path!r} is {pixels.shape[0]}x{pixels.shape[1]} pixels, but the "
                f"collection's images are {expected[0]}x{expected[1]} (the first file's size). "
                "Pass size=(height, width) to resize them all to one size.")
        return pixels

    def workers(self) -> int:
        """DataLoader worker processes to decode with (0: in this process)."""
        if len(self) <= _IN_PROCESS:
            return 0
        from joblib import effective_n_jobs

        workers = min(effective_n_jobs(self.n_jobs), os.cpu_count() or 1)
        return 0 if workers <= 1 else workers

    def batches(self, index_batches: Sequence):
        """The images of each index batch, as (N, H, W, C) uint8 tensors, in order, decoded
        by the worker processes (a few batches ahead) or in this process."""
        index_batches = [np.asarray(b).reshape(-1).tolist() if not isinstance(b, slice)
                         else list(range(len(self)))[b] for b in index_batches]
        workers = self.workers()
        if workers == 0:
            return (_stack([torch.from_numpy(self._decode(i)) for i in batch])
                    for batch in index_batches)
        return _from_workers(_loader(_Decoded(self), workers, batch_sampler=index_batches,
                                     collate_fn=_stack))

    def to_array(self) -> np.ndarray:
        """Decode every image into one (n, height, width, channels) uint8 array."""
        out = np.empty(self.shape, dtype=np.uint8)
        index_batches = [list(range(s, min(s + _DECODE_BATCH, len(self))))
                         for s in range(0, len(self), _DECODE_BATCH)]
        start = 0
        # Every batch is taken, so that the DataLoader sees its end and shuts its workers
        # down in order (a loader left half-read is shut down later, by the collector).
        for batch in self.batches(index_batches):
            out[start:start + len(batch)] = batch.numpy()
            start += len(batch)
        return out

    def readable(self) -> tuple[np.ndarray, list[str]]:
        """Which files decode (a boolean mask), and the errors of those that do not.

        Every file is decoded once, by the worker processes, and its pixels dropped.
        """
        checked = _Checked(self)
        workers = self.workers()
        if workers == 0:
            results = [checked[i] for i in range(len(self))]
        else:
            loader = _loader(checked, workers, batch_size=_DECODE_BATCH, collate_fn=list)
            results = [result for batch in _from_workers(loader) for result in batch]
        return np.array([error is None for error in results]), [e for e in results if e]

    def fits_in_memory(self) -> bool:
        """Whether the estimators decode this collection once into memory (``cache_bytes``)."""
        budget = memory_budget() if self.cache_bytes == "auto" else int(self.cache_bytes)
        return self.nbytes <= budget

    def sample(self, n: int, seed: int = 0) -> LazyImages:
        """Up to ``n`` of the images, chosen at random (all of them, in order, if fewer)."""
        if len(self) <= n:
            return self
        index = np.sort(np.random.RandomState(seed).choice(len(self), n, replace=False))
        return self[index]


# Images whose statistics a streamed collection's fit learns (a random sample).
_STATISTICS_SAMPLE = 4096


def decoded_or_sample(images, sample: int | None = None, *, stream: bool = False):
    """The images to train or predict on, and an array of them to learn statistics from.

    A lazy collection that fits its memory budget is decoded once (by the DataLoader
    workers) and then used like an array; a larger one stays lazy, streamed batch by batch,
    and a random sample of it is decoded for the statistics. With ``stream=True`` (a
    data-parallel fit, where each process decodes only its share) it always streams. Arrays
    pass through.
    """
    if not isinstance(images, LazyImages):
        return images, images
    if images.fits_in_memory() and not stream:
        decoded = images.to_array()
        return decoded, decoded
    return images, images.sample(sample or _STATISTICS_SAMPLE).to_array()


def stored(images):
    """What an ImageDataset holds: a compact tensor of an array, or the lazy collection."""
    return images if isinstance(images, LazyImages) else to_compact_tensor(images)


def check_paths(X) -> np.ndarray:
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
        Return a :class:`LazyImages` collection (paths plus these
        settings, decoded only when needed) instead of an array. The estimators stream
        it in batches decoded by worker processes, or decode it once when it fits
        ``cache_bytes``; it pickles as paths, so searches ship paths, not pixels.
    n_jobs : int or None, default=None
        Worker processes that decode in parallel: None is 1 (decode in this process)
        unless inside a ``joblib.parallel_backend`` context, -1 is every core.
    cache_bytes : int or "auto", default="auto"
        With ``lazy=True``: collections up to this many decoded bytes are decoded once into
        memory by the estimators; larger ones stream every epoch. "auto" is a quarter of
        the machine's memory, 0 always streams.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from sklearn_cnn.files import ImageLoader
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

    def __init__(self, *, size=None, color_mode="rgb", lazy=False, n_jobs=None,
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
        check_paths(X)
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
        images = LazyImages(check_paths(X), size=self.size, color_mode=self.color_mode,
                            n_jobs=self.n_jobs, cache_bytes=self.cache_bytes)
        return images if self.lazy else images.to_array()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        return tags
