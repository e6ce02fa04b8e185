"""Image data that needs no download: what scikit-learn ships, and folders of image files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.utils import check_random_state

__all__ = ["load_digits_images", "load_sample_patches", "load_image_folder"]

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


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


def load_image_folder(path, size=None, *, color_mode="rgb"):
    """Load images from a folder with one sub-folder per class (``path/<class>/<image>``).

    Parameters
    ----------
    path : str or os.PathLike
        The root folder.
    size : int, (int, int) or None, default=None
        Resize every image to (height, width) with antialiasing; None requires all images
        to have the same size already.
    color_mode : {"rgb", "grayscale"}, default="rgb"
        Convert images to 3-channel RGB or single-channel grayscale.

    Returns
    -------
    X : ndarray of shape (n_images, height, width, channels), uint8
    y : ndarray of shape (n_images,)
        The sub-folder names.

    Raises
    ------
    ValueError
        If the folder holds no images, or sizes differ and ``size`` is None.
    """
    from PIL import Image

    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder; expected one sub-folder per class.")
    files = sorted(
        (p for p in root.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES), key=str
    )
    if not files:
        raise ValueError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in "
                         f"{root}/<class>/; expected one sub-folder per class.")
    mode = {"rgb": "RGB", "grayscale": "L"}[color_mode]
    if isinstance(size, int):
        size = (size, size)
    images = []
    for file in files:
        with Image.open(file) as image:
            image = image.convert(mode)
            if size is not None:
                image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            images.append(np.asarray(image))
    shapes = {image.shape for image in images}
    if len(shapes) > 1:
        raise ValueError(f"The images have {len(shapes)} different sizes; pass size=(height, "
                         "width) to resize them all.")
    X = np.stack(images)
    if X.ndim == 3:
        X = X[..., np.newaxis]
    return X, np.array([file.parent.name for file in files])
