"""A CIFAR-like colour data set made on the spot: ten classes of 32×32 images that differ by
shape or texture, never by colour (``sklearn_cnn.datasets.make_shapes``)."""

from __future__ import annotations

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["SHAPES", "make_shapes"]

SHAPES = ("circle", "ring", "square", "triangle", "cross", "star", "stripes", "checkerboard",
          "dots", "waves")
# Drawn at this many times the size, then averaged down: smooth (anti-aliased) edges.
_SUPERSAMPLE = 3


def _inside(kind: str, u: np.ndarray, v: np.ndarray, frequency: float) -> np.ndarray:
    """Where the shape (or the textured disc) covers, in its own frame: (u, v) in about
    [-1, 1], the shape centred, rotated and scaled already."""
    r = np.hypot(u, v)
    if kind == "circle":
        return r <= 0.85
    if kind == "ring":
        return (r <= 0.9) & (r >= 0.55)
    if kind == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.7
    if kind == "triangle":
        return (v >= -0.55) & (v <= 0.95 - 1.75 * np.abs(u))
    if kind == "cross":
        return ((np.abs(u) <= 0.25) & (np.abs(v) <= 0.9)) | (
            (np.abs(v) <= 0.25) & (np.abs(u) <= 0.9))
    if kind == "star":
        theta = np.arctan2(v, u)
        return r <= 0.42 + 0.5 * np.maximum(np.cos(5 * theta), 0) ** 2
    disc = r <= 0.95  # the textures fill a disc
    if kind == "stripes":
        return disc & (np.sin(frequency * u) > 0)
    if kind == "checkerboard":
        return disc & ((np.floor(frequency * u / np.pi) + np.floor(frequency * v / np.pi)) % 2
                       == 0)
    if kind == "dots":
        period = 2 * np.pi / frequency
        du, dv = (u % period) - period / 2, (v % period) - period / 2
        return disc & (np.hypot(du, dv) <= 0.3 * period)
    if kind == "waves":
        return disc & (np.sin(frequency * u + 1.8 * np.sin(frequency * v / 2)) > 0)
    raise ValueError(f"unknown shape {kind!r}")


def _backgrounds(rng, n: int, size: int) -> np.ndarray:
    """Crops of scikit-learn's two sample photos, at low contrast, as float (n, s, s, 3)."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    photos = load_sample_images().images
    out = np.empty((n, size, size, 3))
    for i in range(n):
        photo = photos[rng.randint(len(photos))]
        side = rng.randint(size, min(photo.shape[:2]) // 3)
        top = rng.randint(0, photo.shape[0] - side + 1)
        left = rng.randint(0, photo.shape[1] - side + 1)
        crop = Image.fromarray(photo[top:top + side, left:left + side]).resize(
            (size, size), Image.Resampling.BILINEAR)
        out[i] = np.asarray(crop, dtype=np.float64)
    return out


def make_shapes(n_samples=3000, *, size=32, random_state=0):
    """Ten classes of colour images, CIFAR-10's size: shapes and textures on photographs.

    Each image shows one of ten things at a random place, size and angle, in a random
    colour, over a crop of scikit-learn's sample photographs: six shapes (circle, ring,
    square, triangle, cross, star) and four textures filling a disc (stripes,
    checkerboard, dots, waves) at a random frequency. Colour never tells the classes apart:
    a model must learn edges, corners and patterns, as on CIFAR-10, without a download. The
    classes are balanced.

    Parameters
    ----------
    n_samples : int, default=3000
        Images to make.
    size : int, default=32
        Height and width.
    random_state : int, RandomState instance or None, default=0
        Seeds everything: the same arguments make the same images.

    Returns
    -------
    X : ndarray of shape (n_samples, size, size, 3), uint8
    y : ndarray of shape (n_samples,)
        The class names (``SHAPES``): "circle", "ring", "square", "triangle", "cross",
        "star", "stripes", "checkerboard", "dots", "waves".

    Examples
    --------
    >>> from sklearn_cnn.datasets import make_shapes
    >>> X, y = make_shapes(20)
    >>> X.shape, X.dtype, sorted(set(y.tolist()))[:4]
    ((20, 32, 32, 3), dtype('uint8'), ['checkerboard', 'circle', 'cross', 'dots'])
    """
    if not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive int, got {n_samples!r}.")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an int of at least 8 pixels, got {size!r}.")
    rng = check_random_state(random_state)
    labels = np.array(SHAPES)[rng.permutation(np.arange(n_samples) % len(SHAPES))]
    background = _backgrounds(rng, n_samples, size)
    fine = size * _SUPERSAMPLE
    grid = (np.arange(fine) + 0.5) / fine * 2 - 1  # pixel centres in [-1, 1]
    ys, xs = np.meshgrid(grid, grid, indexing="ij")
    X = np.empty((n_samples, size, size, 3), dtype=np.uint8)
    for i, kind in enumerate(labels):
        scale = rng.uniform(0.45, 0.8)
        centre = rng.uniform(-1 + scale * 0.9, 1 - scale * 0.9, size=2)
        angle = rng.uniform(0, 2 * np.pi)
        dx, dy = (xs - centre[0]) / scale, (ys - centre[1]) / scale
        u = np.cos(angle) * dx + np.sin(angle) * dy
        v = -np.sin(angle) * dx + np.cos(angle) * dy
        covered = _inside(kind, u, v, frequency=rng.uniform(5, 9)).astype(np.float64)
        cover = covered.reshape(size, _SUPERSAMPLE, size, _SUPERSAMPLE).mean(axis=(1, 3))
        # The background dimmed towards a random tone; the shape's colour far from it.
        tone = rng.uniform(0, 255, size=3)
        ground = 0.45 * background[i] + 0.55 * tone
        colour = np.where(tone > 127, rng.uniform(0, 90, 3), rng.uniform(165, 255, 3))
        image = ground * (1 - cover[..., None]) + colour * cover[..., None]
        X[i] = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).round().astype(np.uint8)
    return X, labels
