"""Batched, seeded, train-only data augmentation.

Augmentation is an estimator parameter (``augment=``), never a transformer: a Pipeline
would apply a transformer at predict time too, and only once. The estimators apply it to
each training batch on the device; predict, score and the validation split never see it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

__all__ = ["Augmentation", "make_augmentation", "PRESETS"]


class Augmentation:
    """Per-sample random flips, pad-and-crop shifts and brightness/contrast jitter.

    torchvision's v2 transforms draw one set of random parameters per call, so a batch
    would get one flip or one crop for all its images. This class draws them per sample,
    in a few batched tensor operations, from the generator it is given (seeded by the
    estimator's ``random_state``). It never modifies its input in place.

    Parameters
    ----------
    flip : bool, default=False
        Mirror each image left-right with probability 1/2.
    crop_padding : int, default=0
        Reflect-pad by this many pixels, then crop back to the original size at a random
        offset: a random shift of up to ``crop_padding`` pixels each way.
    brightness : float, default=0.0
        Multiply each image by a factor drawn from [1 - brightness, 1 + brightness].
    contrast : float, default=0.0
        Scale each image's deviation from its mean by a factor from [1 - contrast, 1 + contrast].

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.augmentation import Augmentation
    >>> aug = Augmentation(flip=True, crop_padding=2)
    >>> batch = torch.rand(4, 3, 8, 8)
    >>> aug(batch, torch.Generator().manual_seed(0)).shape
    torch.Size([4, 3, 8, 8])
    """

    def __init__(self, *, flip=False, crop_padding=0, brightness=0.0, contrast=0.0):
        self.flip = flip
        self.crop_padding = crop_padding
        self.brightness = brightness
        self.contrast = contrast

    def __repr__(self) -> str:
        return (f"Augmentation(flip={self.flip}, crop_padding={self.crop_padding}, "
                f"brightness={self.brightness}, contrast={self.contrast})")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = x.shape

        def uniform(low, high):
            return torch.rand(n, 1, 1, 1, generator=generator, device=x.device) * (high - low) + low

        if self.flip:
            x = torch.where(uniform(0, 1) < 0.5, x.flip(-1), x)
        pad_h, pad_w = min(self.crop_padding, height - 1), min(self.crop_padding, width - 1)
        if pad_h or pad_w:
            padded = F.pad(x, (pad_w, pad_w, pad_h, pad_h), mode="reflect")
            dy = torch.randint(0, 2 * pad_h + 1, (n, 1), generator=generator, device=x.device)
            dx = torch.randint(0, 2 * pad_w + 1, (n, 1), generator=generator, device=x.device)
            rows = (dy + torch.arange(height, device=x.device))[:, None, :, None]
            cols = (dx + torch.arange(width, device=x.device))[:, None, None, :]
            samples = torch.arange(n, device=x.device)[:, None, None, None]
            channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
            x = padded[samples, channels, rows, cols]
        if self.brightness:
            x = x * uniform(1 - self.brightness, 1 + self.brightness)
        if self.contrast:
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - mean) * uniform(1 - self.contrast, 1 + self.contrast) + mean
        return x


def _crop_padding(height: int, width: int) -> int:
    # CIFAR's classic 4 pixels on 32×32, scaled to the image; at least one pixel.
    return max(1, round(min(height, width) / 8))


PRESETS = {
    "flip": dict(flip=True),
    "crop": dict(crop=True),
    "color": dict(brightness=0.2, contrast=0.2),
    "standard": dict(flip=True, crop=True, brightness=0.2, contrast=0.2),
}


class _CallableAugmentation:
    """Adapts a user callable or torchvision v2 transform ``f(batch) -> batch``."""

    def __init__(self, transform: Callable):
        self.transform = transform

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The estimator seeds torch's global RNG for the whole fit, which torchvision uses.
        out = self.transform(x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = (f"a tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor)
                   else repr(out) if out is None else f"a {type(out).__name__}")
            raise TypeError(
                f"augment={self.transform!r} returned {got} for a training batch of shape "
                f"{tuple(x.shape)} (N, C, H, W). An augment callable must return the "
                "augmented batch: a tensor of the same shape (resize or crop back to the "
                "input size, and return the result rather than None).")
        return out


def make_augmentation(augment, input_shape: tuple[int, int, int]):
    """The batch transform for an estimator's ``augment`` parameter, or None.

    Parameters
    ----------
    augment : None, {"flip", "crop", "color", "standard"}, or callable
        A preset name, or a callable / torchvision v2 transform applied to each float
        training batch of shape (N, C, H, W).
    input_shape : (int, int, int)
        The training images' (height, width, channels), to size the crop padding.

    Returns
    -------
    callable or None
        ``transform(batch, generator) -> batch``.
    """
    if augment is None:
        return None
    if callable(augment):
        return _CallableAugmentation(augment)
    if augment not in PRESETS:
        raise ValueError(f"Unknown augment={augment!r}; use one of {sorted(PRESETS)}, a "
                         "callable or a torchvision v2 transform.")
    options = dict(PRESETS[augment])
    if options.pop("crop", False):
        options["crop_padding"] = _crop_padding(*input_shape[:2])
    return Augmentation(**options)
