"""Running a backbone over data: embeddings (the network's outputs for every image), what
reaches one of its layers (the frozen-feature cache), and fitting its input adapter to the
training images' pixel scale. Documented under :mod:`sklearn_cnn.backbones`, which
re-exports them.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._data import BatchIterator, ImageDataset, channel_statistics, pixel_range
from .devices import memory_format_for
from .networks import InputAdapter, eval_mode

__all__ = ["embed", "fit_pixel_scale", "layer_inputs"]


def fit_pixel_scale(adapter: InputAdapter, images) -> bool:
    """Make a backbone's input adapter fit the training images' pixel scale.

    uint8 pixels and floats in [0, 1] are what pretrained weights' normalisation expects.
    Floats in any other range (0..255, standardised, ...) would reach the backbone far from
    that, and it would learn (or embed) nothing useful: the adapter standardises them with
    their own per-channel statistics instead. Returns whether it did.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn.backbones import fit_pixel_scale
    >>> from sklearn_cnn.networks import InputAdapter
    >>> adapter = InputAdapter(size=(8, 8), mean=(0.5,) * 3, std=(0.25,) * 3)
    >>> images = np.random.default_rng(0).random((4, 8, 8, 3))  # (N, H, W, C) in 0..1
    >>> fit_pixel_scale(adapter, images)
    False
    >>> fit_pixel_scale(adapter, 255 * images)
    True
    >>> bool(adapter.mean.min() > 100)  # the images' own statistics
    True
    """
    low, high = pixel_range(images)
    if low >= -1e-3 and high <= 1 + 1e-3:
        return False
    mean, std = channel_statistics(images)
    channels = adapter.mean.shape[1]
    if len(mean) != channels:  # grayscale, repeated into the backbone's RGB channels
        mean, std = np.repeat(mean, channels), np.repeat(std, channels)
    adapter.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
    adapter.std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
    return True


def _forward_all(module: nn.Module, dataset, *, batch_size: int, device: torch.device,
                 autocast_dtype, keep) -> torch.Tensor:
    """One eval-mode pass over images (an (N, C, H, W) tensor or an ImageDataset) in batches,
    without autograd (but not in inference mode: the results may be a training input);
    ``keep(out)`` gives what of each batch's output to keep (float32, on ``device``), or
    None."""
    if not isinstance(dataset, ImageDataset):
        dataset = ImageDataset(torch.as_tensor(dataset))
    batches = BatchIterator(dataset, batch_size, device=device,
                            memory_format=memory_format_for(device))
    kept: list[torch.Tensor] = []
    with eval_mode(module), torch.no_grad(), torch.autocast(
            device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        for xb, _ in batches:
            out = keep(module(xb))
            if out is not None:
                kept.append(out)
    return torch.cat(kept) if kept else torch.empty(0)


def embed(module: nn.Module, dataset, *, batch_size: int, device: torch.device,
          autocast_dtype=None) -> torch.Tensor:
    """A network's outputs for every image, batch by batch in eval mode: float32, on
    ``device``. What :class:`~sklearn_cnn.feature_extraction.PretrainedFeatures` returns for
    a headless backbone.

    Parameters
    ----------
    module : torch.nn.Module
        The network; its train/eval mode is restored afterwards.
    dataset : torch.Tensor of shape (N, C, H, W)
        The images, as the network takes them (uint8 or float).
    batch_size : int
        Images per forward pass.
    device : torch.device
        Where the network runs.
    autocast_dtype : torch.dtype or None, default=None
        Autocast the forward passes to this dtype (``torch.bfloat16``); None: no autocast.

    Returns
    -------
    torch.Tensor of shape (N, ...)

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.backbones import embed, load_backbone
    >>> backbone = load_backbone("resnet18", weights=None).model
    >>> backbone.fc = torch.nn.Identity()  # headless: the pooled features
    >>> embed(backbone, torch.rand(3, 3, 32, 32), batch_size=2, device=torch.device("cpu")).shape
    torch.Size([3, 512])
    """
    return _forward_all(module, dataset, batch_size=batch_size, device=device,
                        autocast_dtype=autocast_dtype, keep=lambda out: out.float())


def layer_inputs(module: nn.Module, layer: nn.Module, dataset, *, batch_size: int,
                 device: torch.device, autocast_dtype=None) -> torch.Tensor:
    """What reaches ``layer`` (one of the network's layers) for every image, in eval mode:
    float32, on ``device``. What a frozen-backbone TransferClassifier caches before training
    its head.

    Parameters are those of :func:`embed`, and ``layer``, a submodule of ``module``.

    Examples
    --------
    >>> import torch
    >>> from torchvision.models import resnet18
    >>> from sklearn_cnn.backbones import layer_inputs
    >>> model = resnet18(num_classes=10)
    >>> layer_inputs(model, model.fc, torch.rand(3, 3, 32, 32), batch_size=2,
    ...              device=torch.device("cpu")).shape
    torch.Size([3, 512])
    """
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_pre_hook(
        lambda _, inputs: captured.append(inputs[0].float()))
    try:
        _forward_all(module, dataset, batch_size=batch_size, device=device,
                     autocast_dtype=autocast_dtype, keep=lambda out: None)
    finally:
        handle.remove()
    return torch.cat(captured)
