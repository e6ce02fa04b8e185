"""Decoding one image file: the only place where files become pixels (Pillow decodes,
torchvision resizes), so that training, prediction, the command line and ImageLoader all see
the same pixels. Documented under :mod:`sklearn_cnn.files`, which re-exports it.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from ._data import resize_batch

__all__ = ["IMAGE_SUFFIXES", "decode_image"]


IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def decode_image(path, size: tuple[int, int] | None = None,
                 color_mode: str = "rgb") -> np.ndarray:
    """Decode one image file into (height, width, channels) uint8 pixels.

    Pillow decodes every format. torchvision.io decodes JPEG 1.45x faster here
    (``benchmarks/bench_files.py``), but torchvision 0.29 deprecates its decoders for
    removal; with the decoded set cached in memory after the first epoch, decoding is not
    what limits training speed. Resizing is torchvision's antialiased bilinear resize, the
    same as :class:`~sklearn_cnn.preprocessing.ImageResizer`.

    Parameters
    ----------
    path : str or os.PathLike
        A PNG, JPEG, WebP, GIF, BMP or TIFF file.
    size : (int, int) or None, default=None
        (height, width) to resize to; None keeps the file's size. An image that already
        has this size is returned exactly as decoded.
    color_mode : {"rgb", "grayscale"}, default="rgb"
        3 channels, or 1 (Pillow's ITU-R 601-2 luma).

    Returns
    -------
    ndarray of shape (height, width, channels), uint8

    Raises
    ------
    ValueError
        Naming the file, when it does not exist or cannot be decoded.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from PIL import Image
    >>> from sklearn_cnn.files import decode_image
    >>> path = os.path.join(tempfile.mkdtemp(), "red.png")
    >>> Image.fromarray(np.full((4, 6, 3), [255, 0, 0], dtype=np.uint8)).save(path)
    >>> decode_image(path).shape, decode_image(path, size=(2, 3), color_mode="grayscale").shape
    ((4, 6, 3), (2, 3, 1))
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    path = os.fspath(path)
    try:
        with Image.open(path) as image:
            # A photo's EXIF orientation tag says how to turn its pixels upright, as every
            # viewer does.
            pixels = _to_uint8(ImageOps.exif_transpose(image), color_mode, path)
    except FileNotFoundError:
        raise ValueError(f"Image file {path!r} does not exist.") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError,
            Image.DecompressionBombError) as exc:
        if str(exc).startswith("Image file "):  # ours, already naming the file
            raise
        raise ValueError(f"Cannot read image file {path!r}: {exc}. Remove or replace it, or "
                         "load the folder with on_error='skip'.") from None
    if size is not None and pixels.shape[:2] != tuple(size):
        tensor = torch.from_numpy(pixels).permute(2, 0, 1)[None]
        pixels = resize_batch(tensor, size)[0].permute(1, 2, 0).numpy()
    return pixels


# Pillow's modes whose pixels are numbers on an 8-bit scale, which convert() handles: bilevel,
# grayscale (with alpha), palette, RGB(A/X), CMYK, YCbCr. Alpha is dropped.
_EIGHT_BIT_MODES = {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK",
                    "YCbCr"}


def _to_uint8(image, color_mode: str, path: str) -> np.ndarray:
    """(H, W, C) uint8 pixels of a Pillow image of any mode it opens, or a ValueError naming
    the mode. 16-bit images (I;16) are scaled to 0..255, not clipped; 32-bit integer (I) and
    float (F) images, whose range their mode does not say, are read as 8-bit when their
    values lie in 0..255, as 16-bit (I) or [0, 1] (F) when they lie there, and refused
    otherwise."""
    mode = image.mode
    if mode in _EIGHT_BIT_MODES:
        # np.array copies: Pillow's buffer is read-only, and torch shares memory.
        pixels = np.array(image.convert("RGB" if color_mode == "rgb" else "L"))
        return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels
    if not (mode.startswith("I;16") or mode in ("I", "F")):
        raise ValueError(f"Image file {path!r} has Pillow's mode {mode!r}, which sklearn-cnn "
                         "does not read; convert it to RGB or grayscale (L) first.")
    values = np.asarray(image, dtype=np.float64)
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16"):
        top = 65535.0
    elif low >= 0 and high <= 255 and (mode == "I" or high > 1):
        top = 255.0
    elif mode == "I" and low >= 0 and high <= 65535:
        top = 65535.0
    elif mode == "F" and low >= 0 and high <= 1:
        top = 1.0
    else:
        raise ValueError(
            f"Image file {path!r} has Pillow's mode {mode!r} with values from {low:g} to "
            f"{high:g}: its scale is unknown (8-bit 0..255, 16-bit 0..65535 or 0..1 are "
            "read). Rescale it to one of those, or load it with NumPy and pass the array.")
    gray = np.rint(values * (255.0 / top)).clip(0, 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3 if color_mode == "rgb" else 1, axis=-1)
