"""The layers that make a 1-D network ignore the padding of shorter series: the input layer
that turns NaN padding into a mask (and normalises), batch normalisation over the real time
points, global average pooling over them, and the switch to torch's own batch norm for
batches without padding. :mod:`sklearn_cnn.networks1d` builds its networks from them and
offers them under its name.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["MaskedBatchNorm1d", "SeriesInput", "masked_average", "padding_free"]


def masked_average(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Global average pooling over the real time points: (N, C, T) and a (N, 1, T) mask of
    them give (N, C).

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import masked_average
    >>> masked_average(torch.tensor([[[1.0, 3.0, 0.0]]]), torch.tensor([[[True, True, False]]]))
    tensor([[2.]])
    """
    return (x * mask).sum(-1) / mask.sum(-1).clamp_min(1)


class SeriesInput(nn.Module):
    """NaN-padded series in, (normalised series with zeros in the padding, mask) out.

    Parameters
    ----------
    n_channels : int
        Channels of the series.
    normalize : {"series", "channel"} or None, default="series"
        "series": each series' channels z-normalised over its own time points (the UCR
        archive's convention); "channel": standardised with per-channel statistics learned
        in fit (buffers, saved and exported with the network, set by
        :meth:`set_statistics`); None: as given.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import SeriesInput
    >>> x = torch.tensor([[[1.0, 2.0, 3.0, float("nan")]]])  # 3 time points, padded to 4
    >>> values, mask = SeriesInput(1)(x)
    >>> [round(v, 4) for v in values.flatten().tolist()], mask.flatten().tolist()
    ([-1.2247, 0.0, 1.2247, 0.0], [True, True, True, False])
    """

    def __init__(self, n_channels: int, normalize: str | None = "series"):
        super().__init__()
        self.normalize = normalize
        self.register_buffer("mean", torch.zeros(1, n_channels, 1))
        self.register_buffer("std", torch.ones(1, n_channels, 1))

    def set_statistics(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Set the per-channel means and standard deviations ("channel" normalisation)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view_as(self.mean))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).view_as(self.std))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.float()
        mask = ~torch.isnan(x).any(dim=1, keepdim=True)
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        if self.normalize == "series":
            count = mask.sum(-1, keepdim=True).clamp_min(1)
            mean = x.sum(-1, keepdim=True) / count
            std = ((((x - mean) * mask) ** 2).sum(-1, keepdim=True) / count).sqrt()
            # A flat channel (std 0) becomes zeros, as the UCR archive's z-normalisation has it.
            x = (x - mean) / torch.where(std > 1e-8, std, torch.ones_like(std))
        elif self.normalize == "channel":
            x = (x - self.mean) / self.std
        return torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device)), mask


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """Batch normalisation over the real time points of padded series.

    torch's ``BatchNorm1d`` would count the padding's zeros in each batch's mean and
    variance, so that series padded in a batch would train on other statistics than the
    same series alone; here training mode averages over the time points the ``mask`` marks
    as real. The running statistics, their momentum (None: a cumulative average, as
    batch-norm recalibration uses) and eval mode are ``BatchNorm1d``'s, so the layer saves,
    loads and exports as one.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import MaskedBatchNorm1d
    >>> norm = MaskedBatchNorm1d(1, affine=False)
    >>> x = torch.tensor([[[1.0, 3.0, 0.0, 0.0]], [[2.0, 2.0, 2.0, 2.0]]])
    >>> mask = torch.tensor([[[True, True, False, False]], [[True] * 4]])
    >>> [round(v, 3) + 0.0 for v in (norm(x, mask) * mask).flatten().tolist()]
    [-1.732, 1.732, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    """

    # Set while training on batches that hold no padding (:func:`padding_free`): then
    # torch's own batch norm computes the same statistics, faster.
    padding_free = False

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.padding_free or (not self.training and self.track_running_stats):
            return super().forward(x)
        # In float32 under autocast too, as torch's batch norm computes.
        x = x.float()
        weight = mask.to(x.dtype)
        count = weight.sum().clamp_min(1)
        real = x * weight
        mean = real.sum(dim=(0, 2)) / count
        var = ((real * x).sum(dim=(0, 2)) / count - mean.square()).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                          else self.momentum)
                unbiased = var * count / (count - 1).clamp_min(1)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(unbiased.detach(), factor)
        scale = torch.rsqrt(var + self.eps)
        if self.affine:
            scale = scale * self.weight
        shift = -mean * scale
        if self.affine:
            shift = shift + self.bias
        return x * scale[None, :, None] + shift[None, :, None]


@contextmanager
def padding_free(module: nn.Module, free: bool = True) -> Iterator[nn.Module]:
    """For the ``with`` block, ``module``'s batch norm computes its training statistics as
    torch's does, over every time point: for training batches that hold no padding (series
    of one length), where the result is the same and the step up to a third faster.

    Examples
    --------
    >>> from sklearn_cnn.networks1d import FCN, padding_free
    >>> net = FCN(in_channels=1, n_outputs=2)
    >>> with padding_free(net):
    ...     net.blocks[0].block.norm.padding_free
    True
    >>> net.blocks[0].block.norm.padding_free
    False
    """
    layers = [m for m in module.modules() if isinstance(m, MaskedBatchNorm1d)]
    for layer in layers:
        layer.padding_free = free
    try:
        yield module
    finally:
        for layer in layers:
            del layer.padding_free
