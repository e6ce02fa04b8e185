"""Batched, seeded, train-only data augmentation, of images and of series.

Augmentation is an estimator parameter (``augment=``), never a transformer: a Pipeline
would apply a transformer at predict time too, and only once. The estimators apply it to
each training batch on the device; predict, score and the validation split never see it.
Images get :class:`Augmentation` (``PRESETS``), series :class:`SeriesAugmentation`
(``SERIES_PRESETS``); both may add label mixing (:class:`LabelMixing`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["Augmentation", "LabelMixing", "PRESETS", "SERIES_MIXING", "SERIES_PRESETS",
           "SeriesAugmentation", "make_augmentation", "make_mixing", "make_series_augmentation"]


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

    def __init__(self, transform: Callable, layout: str = "(N, C, H, W)"):
        self.transform = transform
        self.layout = layout

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        # The estimator seeds torch's global RNG for the whole fit, which torchvision uses.
        out = self.transform(x)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            got = (f"a tensor of shape {tuple(out.shape)}" if isinstance(out, torch.Tensor)
                   else repr(out) if out is None else f"a {type(out).__name__}")
            raise TypeError(
                f"augment={self.transform!r} returned {got} for a training batch of shape "
                f"{tuple(x.shape)} {self.layout}. An augment callable must return the "
                "augmented batch: a tensor of the same shape (resize or crop back to the "
                "input size, and return the result rather than None).")
        return out


class LabelMixing:
    """Batch-level mixup and cutmix: images mixed in pairs, labels mixed in proportion.

    Each training batch is paired with a seeded permutation of itself. mixup blends whole
    images, ``λ x + (1 - λ) x[perm]`` with ``λ ~ Beta(alpha, alpha)``; cutmix pastes a box of
    ``x[perm]`` covering ``1 - λ`` of the image, ``λ ~ Beta(1, 1)``. The targets become the
    same mixture of one-hot labels, and the loss is the cross-entropy on those soft targets.
    Targets that are already float rows (label sets, regression targets) are mixed as they
    are.
    With both, each batch takes one of the two at random. Training only: validation,
    prediction and scoring never see it.

    Parameters
    ----------
    n_classes : int
        Number of classes (the width of the soft targets).
    mixup : bool, default=True
        Use mixup.
    cutmix : bool, default=False
        Use cutmix.
    mixup_alpha : float, default=0.2
        Beta distribution parameter of mixup's λ (fastai's and timm's default).
    cutmix_alpha : float, default=1.0
        Beta distribution parameter of cutmix's λ.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.augmentation import LabelMixing
    >>> x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 1])
    >>> mixed, soft = LabelMixing(3, cutmix=True, mixup=False)(x, y, torch.Generator())
    >>> mixed.shape, soft.shape, bool(torch.allclose(soft.sum(1), torch.ones(4)))
    (torch.Size([4, 3, 8, 8]), torch.Size([4, 3]), True)
    """

    def __init__(self, n_classes: int, *, mixup: bool = True, cutmix: bool = False,
                 mixup_alpha: float = 0.2, cutmix_alpha: float = 1.0):
        self.n_classes = n_classes
        self.mixup = mixup
        self.cutmix = cutmix
        self.mixup_alpha = mixup_alpha
        self.cutmix_alpha = cutmix_alpha

    def __repr__(self) -> str:
        return f"LabelMixing(n_classes={self.n_classes}, mixup={self.mixup}, cutmix={self.cutmix})"

    def __call__(self, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator):
        """(mixed images, soft targets (N, n_classes)) for a batch; ``generator`` is a seeded
        CPU generator, which draws the pairing, λ and the box."""
        n = len(x)
        # numpy draws the Beta variates (torch's have no generator argument), seeded from
        # the fit's own generator: the same fit mixes the same way.
        rng = np.random.default_rng(int(torch.randint(2**31 - 1, (1,), generator=generator)))
        perm = torch.randperm(n, generator=generator).to(x.device)
        if y.is_floating_point():  # label sets or regression targets: mixed as they are
            onehot = y.to(x.dtype)
        else:
            onehot = F.one_hot(y, self.n_classes).to(x.dtype)
        use_cutmix = self.cutmix and (not self.mixup or rng.random() < 0.5)
        if use_cutmix:
            lam = rng.beta(self.cutmix_alpha, self.cutmix_alpha)
            height, width = x.shape[-2:]
            cut_h, cut_w = round(height * math.sqrt(1 - lam)), round(width * math.sqrt(1 - lam))
            top = int(rng.integers(0, height - cut_h + 1))
            left = int(rng.integers(0, width - cut_w + 1))
            x = x.clone()
            x[..., top:top + cut_h, left:left + cut_w] = x[perm][..., top:top + cut_h,
                                                                 left:left + cut_w]
            lam = 1 - cut_h * cut_w / (height * width)  # the area actually pasted
        else:
            lam = rng.beta(self.mixup_alpha, self.mixup_alpha)
            x = lam * x + (1 - lam) * x[perm]
        return x, lam * onehot + (1 - lam) * onehot[perm]


MIXING = ("mixup", "cutmix")


def _parts(augment) -> list:
    if augment is None:
        return []
    return list(augment) if isinstance(augment, (tuple, list)) else [augment]


def check_augment(augment, *, series: bool = False) -> None:
    """Refuse an ``augment`` value that names nothing we know (for images, or for
    ``series``), before any training."""
    presets, mixing = (SERIES_PRESETS, SERIES_MIXING) if series else (PRESETS, MIXING)
    for part in _parts(augment):
        if callable(part):
            continue
        if not isinstance(part, str) or (part not in presets and part not in mixing):
            other = ("" if not isinstance(part, str) or part not in (
                PRESETS if series else SERIES_PRESETS) else
                f" ({part!r} is for {'images' if series else 'series'})")
            example = "('standard', 'mixup')"
            raise ValueError(
                f"Unknown augment={augment!r}{other}: each entry must be one of "
                f"{sorted(presets) + list(mixing)}, or a callable"
                f"{'' if series else ' or a torchvision v2 transform'}; combine them in a "
                f"tuple, e.g. augment={example}.")


class _Compose:
    def __init__(self, transforms):
        self.transforms = transforms

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for transform in self.transforms:
            x = transform(x, generator)
        return x


def make_augmentation(augment, input_shape: tuple[int, int, int]):
    """The per-image batch transform for an estimator's ``augment`` parameter, or None.

    Parameters
    ----------
    augment : None, str, callable, or a tuple of them
        Preset names ({"flip", "crop", "color", "standard"}), callables / torchvision v2
        transforms applied to each float training batch of shape (N, C, H, W), or a tuple
        of them, applied in order. "mixup" and "cutmix" entries are batch-level label
        mixing (:func:`make_mixing`), not part of this transform.
    input_shape : (int, int, int)
        The training images' (height, width, channels), to size the crop padding.

    Returns
    -------
    callable or None
        ``transform(batch, generator) -> batch``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.augmentation import make_augmentation
    >>> transform = make_augmentation(("flip", "crop"), input_shape=(8, 8, 3))
    >>> transform(torch.rand(4, 3, 8, 8), torch.Generator()).shape
    torch.Size([4, 3, 8, 8])
    >>> make_augmentation(None, input_shape=(8, 8, 3)) is None
    True
    """
    check_augment(augment)
    transforms = []
    for part in _parts(augment):
        if callable(part):
            transforms.append(_CallableAugmentation(part))
        elif part in PRESETS:
            options = dict(PRESETS[part])
            if options.pop("crop", False):
                options["crop_padding"] = _crop_padding(*input_shape[:2])
            transforms.append(Augmentation(**options))
    if not transforms:
        return None
    return transforms[0] if len(transforms) == 1 else _Compose(transforms)


def make_mixing(augment, n_classes: int) -> LabelMixing | None:
    """The batch-level label mixing that ``augment`` asks for ("mixup", "cutmix"), or None.

    Examples
    --------
    >>> from sklearn_cnn.augmentation import make_mixing
    >>> make_mixing(("flip", "cutmix"), n_classes=10).cutmix, make_mixing("flip", 10)
    (True, None)
    """
    parts = [p for p in _parts(augment) if isinstance(p, str)]
    if "mixup" not in parts and "cutmix" not in parts:
        return None
    return LabelMixing(n_classes, mixup="mixup" in parts, cutmix="cutmix" in parts)


# ------------------------------------------------------------------------------ series
class SeriesAugmentation:
    """Per-series random window slicing, time warping, scaling and jitter of a batch of
    series (N, C, T), NaN-padded at the end where they are shorter than the longest.

    Each series gets its own random draw, from the generator it is given (seeded by the
    estimator's ``random_state``), in a few batched tensor operations; its padding stays
    padding and its length stays its own. The input is never modified in place.

    Parameters
    ----------
    slicing : float, default=0.0
        Window slicing (Le Guennec et al. 2016): a window of ``1 - slicing`` of the series,
        at a random place, stretched back to the series' length.
    warp : float, default=0.0
        Time warping (Um et al. 2017): the series resampled along a smooth random time axis
        whose speed varies around 1 with this standard deviation, at 4 knots.
    scaling : float, default=0.0
        Multiply each channel of each series by a factor drawn from N(1, scaling).
    jitter : float, default=0.0
        Add Gaussian noise of this standard deviation, relative to each channel's own
        standard deviation over the series.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.augmentation import SeriesAugmentation
    >>> batch = torch.randn(4, 2, 30)
    >>> batch[0, :, 20:] = float("nan")              # the first series has 20 time points
    >>> out = SeriesAugmentation(slicing=0.1, jitter=0.03)(batch, torch.Generator().manual_seed(0))
    >>> out.shape, int((~out[0, 0].isnan()).sum())
    (torch.Size([4, 2, 30]), 20)
    """

    def __init__(self, *, slicing=0.0, warp=0.0, scaling=0.0, jitter=0.0):
        self.slicing = slicing
        self.warp = warp
        self.scaling = scaling
        self.jitter = jitter

    def __repr__(self) -> str:
        return (f"SeriesAugmentation(slicing={self.slicing}, warp={self.warp}, "
                f"scaling={self.scaling}, jitter={self.jitter})")

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, channels, length = x.shape
        device = x.device
        real = ~torch.isnan(x[:, :1])                              # (N, 1, T)
        lengths = real.sum(-1).clamp_min(1)                        # (N, 1)
        if self.slicing or self.warp:
            x = _resample(x, self._positions(lengths, length, generator, device), lengths)
        if self.scaling:
            factor = 1 + self.scaling * torch.randn(n, channels, 1, generator=generator,
                                                   device=device)
            x = x * factor
        if self.jitter:
            values = torch.where(real, x, torch.zeros((), device=device))
            mean = values.sum(-1, keepdim=True) / lengths[..., None]
            spread = (((values - mean) * real) ** 2).sum(-1, keepdim=True) / lengths[..., None]
            noise = torch.randn(x.shape, generator=generator, device=device)
            x = x + self.jitter * spread.sqrt() * noise
        return x

    def _positions(self, lengths, length, generator, device) -> torch.Tensor:
        """Where each output time point reads the series, (N, T), within [0, length - 1]."""
        n = len(lengths)
        last = (lengths - 1).to(torch.float32)                     # (N, 1)
        t = torch.arange(length, device=device, dtype=torch.float32)[None, :]
        u = (t / last.clamp_min(1)).clamp(0, 1)                   # 0..1 over the series
        if self.warp:
            knots = 4
            speed = (1 + self.warp * torch.randn(n, knots + 1, generator=generator,
                                                 device=device)).clamp_min(0.1)
            where = u * knots
            index = where.floor().long().clamp(max=knots - 1)
            frac = where - index
            local = speed.gather(1, index) * (1 - frac) + speed.gather(1, index + 1) * frac
            local = torch.where(t <= last, local, torch.zeros((), device=device))
            elapsed = local.cumsum(1) - local[:, :1]
            u = elapsed / elapsed.gather(1, last.long()).clamp_min(1e-6)
        if self.slicing:
            start = torch.rand(n, 1, generator=generator, device=device) * self.slicing
            u = start + u * (1 - self.slicing)
        return u.clamp(0, 1) * last


def _resample(x: torch.Tensor, positions: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """``x`` read at fractional ``positions`` (N, T) by linear interpolation, each series
    within its own length; NaN again after it."""
    last = (lengths - 1).long()                                    # (N, 1)
    low = positions.floor().long().clamp(min=0)
    low = torch.minimum(low, last)
    high = torch.minimum(low + 1, last)
    weight = (positions - low)[:, None, :]
    index_low = low[:, None, :].expand(-1, x.shape[1], -1)
    index_high = high[:, None, :].expand(-1, x.shape[1], -1)
    out = x.gather(2, index_low) * (1 - weight) + x.gather(2, index_high) * weight
    t = torch.arange(x.shape[-1], device=x.device)[None, None, :]
    return torch.where(t < lengths[..., None], out, torch.full((), float("nan"),
                                                                device=x.device))


SERIES_PRESETS = {
    "slice": dict(slicing=0.1),
    "warp": dict(warp=0.2),
    "scaling": dict(scaling=0.1),
    "jitter": dict(jitter=0.03),
    "standard": dict(slicing=0.1, scaling=0.1, jitter=0.03),
}
# Label mixing that series take: mixup (cutmix pastes boxes of images).
SERIES_MIXING = ("mixup",)


def make_series_augmentation(augment):
    """The per-series batch transform for a time-series estimator's ``augment``, or None.

    Parameters
    ----------
    augment : None, str, callable, or a tuple of them
        Preset names ({"slice", "warp", "scaling", "jitter", "standard"}; "standard" is
        slice, scaling and jitter), callables applied to each float training batch of
        shape (N, C, T) (NaN after the end of series shorter than the longest), or a tuple
        of them, applied in order. "mixup" is batch-level label mixing
        (:func:`make_mixing`), not part of this transform.

    Returns
    -------
    callable or None
        ``transform(batch, generator) -> batch``.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.augmentation import make_series_augmentation
    >>> make_series_augmentation(("warp", "jitter"))(torch.randn(4, 1, 50), torch.Generator()).shape
    torch.Size([4, 1, 50])
    """
    check_augment(augment, series=True)
    transforms: list = []
    for part in _parts(augment):
        if callable(part):
            transforms.append(_CallableAugmentation(part, layout="(N, C, T)"))
        elif part in SERIES_PRESETS:
            transforms.append(SeriesAugmentation(**SERIES_PRESETS[part]))
    if not transforms:
        return None
    return transforms[0] if len(transforms) == 1 else _Compose(transforms)
