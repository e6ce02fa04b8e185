"""Image data that needs no download: what scikit-learn ships, and folders of image files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.utils import check_random_state

from .files import IMAGE_SUFFIXES, LazyImages

__all__ = ["load_digits_images", "load_sample_patches", "load_image_folder"]


def load_digits_images():
    """scikit-learn's 8×8 handwritten digits as images.

    Returns
    -------
    X : ndarray of shape (1797, 8, 8)
        Grayscale images, float64 pixel values 0..16.
    y : ndarray of shape (1797,)
        Digits 0..9.

    Examples
    --------
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, y.shape
    ((1797, 8, 8), (1797,))
    """
    digits = load_digits()
    return digits.images, digits.target


def load_sample_patches(patch_size=32, n_patches=200, random_state=0):
    """Random RGB patches cut from scikit-learn's two sample photos, labelled by photo.

    A small, real colour-image task (a Chinese temple against a flower) for transfer
    learning examples and tests, with no download.

    Parameters
    ----------
    patch_size : int, default=32
        Height and width of the patches.
    n_patches : int, default=200
        Patches per photo.
    random_state : int, RandomState instance or None, default=0
        Where the patches are cut.

    Returns
    -------
    X : ndarray of shape (2 * n_patches, patch_size, patch_size, 3), uint8
        The patches.
    y : ndarray of shape (2 * n_patches,)
        "china" or "flower".

    Examples
    --------
    >>> from sklearn_cnn.datasets import load_sample_patches
    >>> X, y = load_sample_patches(patch_size=16, n_patches=5)
    >>> X.shape, X.dtype, sorted(set(y.tolist()))
    ((10, 16, 16, 3), dtype('uint8'), ['china', 'flower'])
    """
    rng = check_random_state(random_state)
    photos = load_sample_images()
    names = [Path(name).stem for name in photos.filenames]
    X, y = [], []
    for name, photo in zip(names, photos.images):
        rows = rng.randint(0, photo.shape[0] - patch_size + 1, n_patches)
        cols = rng.randint(0, photo.shape[1] - patch_size + 1, n_patches)
        X += [photo[r:r + patch_size, c:c + patch_size] for r, c in zip(rows, cols)]
        y += [name] * n_patches
    return np.stack(X), np.array(y)


def _folder_files(root: Path) -> tuple[list[Path], np.ndarray | None]:
    """The image files under ``root`` and their labels (sub-folder names), or the image
    files directly in ``root`` and None when it has no class sub-folders."""
    def images(folder: Path) -> list[Path]:
        return sorted((p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES), key=str)

    labelled = [(file, sub.name) for sub in sorted(root.iterdir(), key=str)
                if sub.is_dir() and not sub.name.startswith(".") for file in images(sub)]
    top = images(root)
    if labelled:
        if top:
            warnings.warn(
                f"{root} has {len(top)} image(s) at its top level besides the class "
                f"sub-folders; they have no label and are left out (e.g. {top[0].name}).",
                UserWarning, stacklevel=3)
        files, labels = zip(*labelled)
        return list(files), np.array(labels)
    if top:
        return top, None
    raise ValueError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {root} or "
                     f"its sub-folders; expected {root}/<class>/<image> files (labelled) or "
                     f"{root}/<image> files (unlabelled).")


def load_image_folder(path, size=None, *, lazy=False, color_mode="rgb", on_error="raise",
                      n_jobs=None, cache_bytes="auto"):
    """Load the images of a folder: labelled by sub-folder, or unlabelled.

    ``path/<class>/<image>`` gives images labelled by their sub-folder's name, for
    training; a flat ``path/<image>`` folder gives unlabelled images (``y`` is None), for
    prediction. Files are decoded and resized by :class:`~sklearn_cnn.preprocessing.
    ImageLoader`'s decoder, so they get the same pixels as a Pipeline that starts with it.

    Parameters
    ----------
    path : str or os.PathLike
        The folder.
    size : int, (int, int) or None, default=None
        Resize every image to (height, width) with antialiasing; None requires all images
        to have the same size already.
    lazy : bool, default=False
        Return X as a lazy collection (:class:`~sklearn_cnn.files.LazyImages`): paths
        plus decode settings, decoded only when needed. The estimators fit and predict on
        it directly, streaming it from the files when it is larger than ``cache_bytes``.
    color_mode : {"rgb", "grayscale"}, default="rgb"
        3-channel RGB or single-channel grayscale.
    on_error : {"raise", "skip"}, default="raise"
        What to do with files that cannot be decoded (corrupt, truncated, not an image):
        raise an error naming the file, or leave them out with one warning that counts
        them. "skip" decodes every file once to find them, also with ``lazy=True``.
    n_jobs : int or None, default=None
        Worker processes that decode in parallel: None is 1 unless inside a
        ``joblib.parallel_backend`` context, -1 is every core.
    cache_bytes : int or "auto", default="auto"
        With ``lazy=True``, see :class:`~sklearn_cnn.files.ImageLoader`.

    Returns
    -------
    X : ndarray of shape (n_images, height, width, channels), uint8, or LazyImages
    y : ndarray of shape (n_images,) or None
        The sub-folder names; None for a folder without class sub-folders.

    Raises
    ------
    ValueError
        If the folder holds no images, a file cannot be read (``on_error="raise"``), or
        sizes differ and ``size`` is None.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from sklearn_cnn.datasets import load_image_folder
    >>> root = tempfile.mkdtemp()
    >>> for label in ["cat", "dog"]:
    ...     os.mkdir(os.path.join(root, label))
    ...     for i in range(2):
    ...         image = np.zeros((12, 10, 3), dtype=np.uint8)
    ...         Image.fromarray(image).save(os.path.join(root, label, f"{i}.png"))
    >>> X, y = load_image_folder(root, size=8)
    >>> X.shape, y.tolist()
    ((4, 8, 8, 3), ['cat', 'cat', 'dog', 'dog'])
    >>> X, y = load_image_folder(os.path.join(root, "cat"), lazy=True)
    >>> X.shape, y
    ((2, 12, 10, 3), None)
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}.")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; expected {root}/<class>/<image> files "
                         f"(labelled) or {root}/<image> files (unlabelled).")
    files, y = _folder_files(root)
    images = LazyImages(files, size=size, color_mode=color_mode, n_jobs=n_jobs,
                        cache_bytes=cache_bytes)
    if on_error == "skip":
        readable, errors = images.readable()
        if not readable.all():
            example = errors[0].split(" Remove or replace it")[0]
            warnings.warn(
                f"Skipped {int((~readable).sum())} of the {len(images)} files in {root} that "
                f"could not be read as images, e.g. {example}", UserWarning, stacklevel=2)
            if not readable.any():
                raise ValueError(f"None of the {len(images)} image files in {root} could be "
                                 f"read, e.g. {errors[0]}")
            images = images[readable]
            y = None if y is None else y[readable]
    return (images if lazy else images.to_array()), y
