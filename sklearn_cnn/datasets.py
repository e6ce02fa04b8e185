"""Data that needs no download: images scikit-learn ships, folders of image files, and time
series in the UCR/UEA archive's ``.ts`` files (those aeon's wheel ships among them)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_sample_images
from sklearn.utils import check_random_state

from ._shapes import make_shapes
from ._ts_format import load_ts_dataset, load_ts_file
from .files import IMAGE_SUFFIXES, LazyImages

__all__ = ["load_digits_images", "load_sample_patches", "load_photo_crops",
           "load_image_folder", "make_rotated_digits", "make_digit_pairs", "make_shapes",
           "load_ts_file", "load_ts_dataset"]


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


PHOTOS = ("brick", "grass", "gravel", "coffee", "chelsea", "astronaut", "rocket")


def load_photo_crops(n_per_photo=40, *, size=64, photos=PHOTOS, random_state=0):
    """Crops of scikit-image's bundled photos, labelled by photo: a small, real few-shot task
    (three textures, a cup of coffee, a cat, an astronaut, a rocket) with no download.

    Each crop is a square of random side (from ``size`` to half the photo's shorter side)
    at a random place, resized to ``size`` × ``size``; grayscale photos are repeated into
    RGB. Needs scikit-image (``pip install scikit-image``; the ``test`` extra has it).

    Parameters
    ----------
    n_per_photo : int, default=40
        Crops per photo.
    size : int, default=64
        Height and width of the crops.
    photos : sequence of str, default=PHOTOS
        Names of ``skimage.data`` images.
    random_state : int, RandomState instance or None, default=0
        Where the crops are cut.

    Returns
    -------
    X : ndarray of shape (n_per_photo * len(photos), size, size, 3), uint8
    y : ndarray of shape (n_per_photo * len(photos),)
        The photo's name.

    Examples
    --------
    >>> from sklearn_cnn.datasets import load_photo_crops
    >>> X, y = load_photo_crops(n_per_photo=2, size=32)
    >>> X.shape, X.dtype, sorted(set(y.tolist()))[:3]
    ((14, 32, 32, 3), dtype('uint8'), ['astronaut', 'brick', 'chelsea'])
    """
    try:
        from skimage import data
    except ImportError:
        raise ImportError("load_photo_crops reads scikit-image's bundled photos: pip install "
                          "scikit-image") from None
    from PIL import Image

    rng = check_random_state(random_state)
    X, y = [], []
    for name in photos:
        photo = getattr(data, name)()
        photo = np.stack([photo] * 3, axis=-1) if photo.ndim == 2 else photo[..., :3]
        for _ in range(n_per_photo):
            side = rng.randint(size, max(size + 1, min(photo.shape[:2]) // 2))
            top = rng.randint(0, photo.shape[0] - side + 1)
            left = rng.randint(0, photo.shape[1] - side + 1)
            crop = Image.fromarray(photo[top:top + side, left:left + side])
            X.append(np.asarray(crop.resize((size, size), Image.Resampling.BILINEAR)))
            y.append(name)
    return np.stack(X), np.array(y)


def make_rotated_digits(n_samples=1000, *, size=24, max_angle=60.0, random_state=0):
    """scikit-learn's digits, each rotated by a random angle: a regression task (how far is
    this digit turned?) with no download.

    Each image is one of the 1,797 digits, enlarged to ``size`` × ``size`` and rotated about
    its centre by an angle drawn uniformly from [-max_angle, max_angle] degrees
    (counter-clockwise positive; torchvision's bilinear rotation, corners filled with 0).

    Parameters
    ----------
    n_samples : int, default=1000
        Images to make (the digits are drawn with replacement).
    size : int, default=24
        Height and width of the images.
    max_angle : float, default=60.0
        The largest rotation, in degrees.
    random_state : int, RandomState instance or None, default=0
        Which digits and angles.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size), float32
        Pixel values in [0, 1].
    y : ndarray of shape (n_samples,)
        The rotation of each image, in degrees.
    digits : ndarray of shape (n_samples,)
        Which digit each image shows.

    Examples
    --------
    >>> from sklearn_cnn.datasets import make_rotated_digits
    >>> X, angles, digits = make_rotated_digits(5, size=16)
    >>> X.shape, bool(abs(angles).max() <= 60), digits.shape
    ((5, 16, 16), True, (5,))
    """
    import torch
    from torchvision.transforms.v2 import functional as TF

    rng = check_random_state(random_state)
    images, labels = load_digits_images()
    index = rng.randint(0, len(images), n_samples)
    angles = rng.uniform(-max_angle, max_angle, n_samples)
    small = torch.from_numpy((images[index] / 16).astype(np.float32))[:, None]
    large = TF.resize(small, [size, size], antialias=True)
    rotated = torch.stack([TF.rotate(image, float(angle), interpolation=TF.InterpolationMode
                                     .BILINEAR) for image, angle in zip(large, angles)])
    return rotated[:, 0].clamp(0, 1).numpy(), angles, labels[index]


def make_digit_pairs(n_samples=1000, *, random_state=0):
    """Two of scikit-learn's digits side by side: label sets (which digits are in the
    picture?) and two numbers (what are they?), with no download.

    Parameters
    ----------
    n_samples : int, default=1000
        Images to make (the digits are drawn with replacement).
    random_state : int, RandomState instance or None, default=0
        Which digits.

    Returns
    -------
    X : ndarray of shape (n_samples, 8, 16), float32
        Two 8×8 digits, left and right, pixel values in [0, 1].
    labels : ndarray of shape (n_samples, 10), int
        The label sets: ``labels[i, d]`` is 1 when digit ``d`` is in image ``i`` (one or two
        labels per image).
    pairs : ndarray of shape (n_samples, 2)
        The left and right digit of each image.

    Examples
    --------
    >>> from sklearn_cnn.datasets import make_digit_pairs
    >>> X, labels, pairs = make_digit_pairs(4)
    >>> X.shape, labels.shape, bool((labels[np.arange(4), pairs[:, 0]] == 1).all())
    ((4, 8, 16), (4, 10), True)
    """
    rng = check_random_state(random_state)
    images, digits = load_digits_images()
    left, right = rng.randint(0, len(images), n_samples), rng.randint(0, len(images), n_samples)
    X = (np.concatenate([images[left], images[right]], axis=2) / 16).astype(np.float32)
    pairs = np.stack([digits[left], digits[right]], axis=1)
    labels = np.zeros((n_samples, 10), dtype=int)
    labels[np.arange(n_samples), pairs[:, 0]] = 1
    labels[np.arange(n_samples), pairs[:, 1]] = 1
    return X, labels, pairs


def _listing(folder: Path, *, recursive: bool) -> tuple[list[Path], list[Path], list[Path]]:
    """(image files, other files, entries that are no readable file: dangling symbolic
    links, special files) in ``folder`` (and below it), hidden entries left out."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    images, others, broken = [], [], []
    for entry in entries:
        if any(part.startswith(".") for part in entry.relative_to(folder).parts):
            continue
        if entry.is_dir():
            continue
        if not entry.is_file():
            broken.append(entry)
        elif entry.suffix.lower() in IMAGE_SUFFIXES:
            images.append(entry)
        else:
            others.append(entry)
    return sorted(images, key=str), sorted(others, key=str), sorted(broken, key=str)


def _folder_files(root: Path) -> tuple[list[Path], np.ndarray | None]:
    """The image files under ``root`` and their labels (the name of the top-level sub-folder
    they are in, at any depth below it), or the image files directly in ``root`` and None
    when it has no class sub-folders. What is left out is said, by count."""
    classes = sorted((sub for sub in root.iterdir() if sub.is_dir()
                      and not sub.name.startswith(".")), key=str)
    others, broken = [], []
    if classes:
        files, labels = [], []
        for sub in classes:
            found, other, bad = _listing(sub, recursive=True)
            files += found
            labels += [sub.name] * len(found)
            others += other
            broken += bad
        top, other, bad = _listing(root, recursive=False)
        others += other
        broken += bad
        if top:
            warnings.warn(
                f"{root} has {len(top)} image(s) at its top level besides the class "
                f"sub-folders; they have no label and are left out (e.g. {top[0].name}).",
                UserWarning, stacklevel=3)
    else:
        files, others, broken = _listing(root, recursive=False)
        labels = None
    _warn_left_out(root, others, broken)
    if not files:
        raise ValueError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) found in {root} or "
                         f"its sub-folders; expected {root}/<class>/<image> files (labelled) or "
                         f"{root}/<image> files (unlabelled).")
    return files, (None if labels is None else np.array(labels))


def _warn_left_out(root: Path, others: list[Path], broken: list[Path]) -> None:
    if broken:
        warnings.warn(
            f"{len(broken)} entries under {root} are not readable files (dangling symbolic "
            f"links?) and are left out, e.g. {broken[0]}.", UserWarning, stacklevel=4)
    if others:
        suffixes = sorted({p.suffix or "(none)" for p in others})
        warnings.warn(
            f"{len(others)} files under {root} are not images by their suffix "
            f"({', '.join(suffixes[:5])}) and are left out, e.g. {others[0].name}. Image "
            f"files end in {', '.join(sorted(IMAGE_SUFFIXES))}.", UserWarning, stacklevel=4)


def load_image_folder(path, size=None, *, lazy=False, color_mode="rgb", on_error="raise",
                      n_jobs=None, cache_bytes="auto"):
    """Load the images of a folder: labelled by sub-folder, or unlabelled.

    ``path/<class>/<image>`` gives images labelled by their sub-folder's name, for
    training; images in folders nested below a class folder (``path/dog/2020/x.jpg``) belong
    to that class too. A flat ``path/<image>`` folder gives unlabelled images (``y`` is
    None), for prediction. Hidden entries (names starting with ".") are skipped; files that
    are not images by their suffix, and entries that are not readable files (dangling
    symbolic links), are left out with a warning that counts them. Files are decoded and
    resized by :class:`~sklearn_cnn.files.ImageLoader`'s decoder, so they get the same
    pixels as a Pipeline that starts with it.

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
