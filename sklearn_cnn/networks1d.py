"""The 1-D networks of the time-series estimators: the lesson's Conv → ReLU → pool blocks in
1-D (:class:`ConvNet1d`), the fully convolutional network and the residual network of Wang,
Yan & Oates (2017) (:class:`FCN`, :class:`ResNet1d`), and InceptionTime's network (Ismail
Fawaz et al. 2020, :class:`InceptionNet1d`).

Every network takes a batch of shape (N, channels, time points) in which series shorter
than the longest are padded at the end with NaN. :class:`SeriesInput`, the first layer,
turns the padding into a mask (and zeros) and normalises the series; every block then
leaves the padded positions at zero, batch normalisation computes its statistics over the
real time points only (:class:`MaskedBatchNorm1d`), and global average pooling averages
over them: a series gets the same outputs alone as padded in a batch, and training does
not learn from the padding. The last block's output (:meth:`features`) is what class
activation maps weigh.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._masked import MaskedBatchNorm1d, SeriesInput, masked_average, padding_free
from .networks import per_block

__all__ = ["ARCHITECTURES", "ConvNet1d", "FCN", "InceptionNet1d", "MaskedBatchNorm1d",
           "ResNet1d", "Residual1d", "SeriesInput", "masked_average", "padding_free"]


def _norm(channels: int, batch_norm: bool) -> nn.Module:
    return MaskedBatchNorm1d(channels) if batch_norm else _Unmasked(nn.Identity())


class _Unmasked(nn.Module):
    """A layer that takes no mask, called as one that does."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class ConvBlock1d(nn.Module):
    """Conv1d ("same" padding: an even kernel gets one more on the right, as Keras pads;
    with ``stride=2`` an odd kernel's half, which gives every second time point) →
    BatchNorm → ReLU (optional); the padding zeroed after."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *,
                 stride: int = 1, batch_norm: bool = True, relu: bool = True):
        super().__init__()
        left, right = (kernel_size - 1) // 2, kernel_size // 2
        # Symmetric padding goes into the convolution; torch's padding="same" would copy
        # the input to pad an even kernel, which ConstantPad1d does once here.
        self.pad = nn.ConstantPad1d((left, right), 0.0) if left != right else nn.Identity()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                              padding=left if left == right else 0, bias=not batch_norm)
        self.norm = _norm(out_channels, batch_norm)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.relu(self.norm(self.conv(self.pad(x)), mask)) * mask


class _GapHead(nn.Module):
    """Masked global average pooling, dropout and dense layers: the common top."""

    def __init__(self, channels: int, n_outputs: int, *, dropout: float = 0.0,
                 hidden_units: Sequence[int] = ()):
        super().__init__()
        layers: list[nn.Module] = []
        for units in hidden_units:
            layers += [nn.Dropout(dropout), nn.Linear(channels, units), nn.ReLU()]
            channels = units
        layers += [nn.Dropout(dropout), nn.Linear(channels, n_outputs)]
        self.classifier = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(masked_average(features, mask))


def _half(kernel_size: int) -> int:
    """The shortest series for which a kernel centred in it sees more series than padding."""
    return (kernel_size + 1) // 2


class _SeriesNet(nn.Module):
    """What the networks share: the input layer, the blocks (each ``(x, mask) -> (x, mask)``
    through :meth:`features`), the head, and ``min_length``, the shortest series the
    network takes: one in which its first convolution, centred, sees more series than
    padding, and that keeps a time point through every halving."""

    min_length = 1

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The last block's output (N, C, T') and its mask of real time points (N, 1, T')."""
        x, mask = self.input(x)
        for block in self.blocks:
            x, mask = block(x, mask)
        return x, mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(*self.features(x))

    @property
    def output_layer(self) -> nn.Linear:
        """The dense layer that turns pooled features into outputs (CAM's weights)."""
        return self.head.classifier[-1]


class _Plain(nn.Module):
    """One ConvBlock1d as a block ``(x, mask) -> (x, mask)``."""

    def __init__(self, block: ConvBlock1d):
        super().__init__()
        self.block = block

    def forward(self, x, mask):
        return self.block(x, mask), mask


def _pairs(x: torch.Tensor) -> torch.Tensor:
    """(..., T) as (..., T // 2, 2): consecutive pairs of time points, a last odd one
    dropped, as pooling by 2 does. Written with a reshape, not torch's pooling, so that
    an ONNX export keeps the time axis free (torch.export fixes it for max_pool1d)."""
    return x[..., :x.shape[-1] // 2 * 2].unflatten(-1, (-1, 2))


class _Downsample(nn.Module):
    """Halves the time axis: max or average pooling of pairs, or (``mode="stride"``) the
    mask of a stride-2 convolution's outputs, every second time point; a pooled time point
    is real only when both it pools are."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x, mask):
        if self.mode == "stride":
            return x, mask[..., ::2]
        real = _pairs(mask).all(-1)
        pooled = _pairs(x).amax(-1) if self.mode == "max" else _pairs(x).mean(-1)
        return pooled * real, real


class ConvNet1d(_SeriesNet):
    """The lesson's blocks in 1-D: Conv → (BatchNorm) → ReLU → pool, global average
    pooling, dropout, dense head; the parameters of :class:`~sklearn_cnn.CNNClassifier`.

    Parameters
    ----------
    in_channels, n_outputs : int
        Channels of the series; outputs (logits or targets).
    filters : sequence of int, default=(64, 128, 128)
        Output channels of each block.
    kernel_size : int, default=7
        Convolution kernel size, odd ("same" padding).
    pooling : {"max", "avg", "stride"}, None, or a sequence of them, default="max"
        Downsampling after each block (one value for all, or one per block): pooling by 2,
        a stride-2 convolution, or none.
    batch_norm : bool, default=True
    dropout : float, default=0.0
        Dropout before each dense layer.
    hidden_units : sequence of int, default=()
        Dense ReLU layers between the pooled features and the output.
    normalize : {"series", "channel"} or None, default="series"
        See :class:`SeriesInput`.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import ConvNet1d
    >>> net = ConvNet1d(in_channels=2, n_outputs=3, filters=(8, 16), pooling=("max", None))
    >>> net(torch.zeros(4, 2, 50)).shape, net.min_length
    (torch.Size([4, 3]), 4)
    """

    def __init__(self, *, in_channels: int, n_outputs: int,
                 filters: Sequence[int] = (64, 128, 128), kernel_size: int = 7,
                 pooling="max", batch_norm: bool = True, dropout: float = 0.0,
                 hidden_units: Sequence[int] = (), normalize: str | None = "series"):
        super().__init__()
        self.input = SeriesInput(in_channels, normalize)
        blocks: list[nn.Module] = []
        channels, halvings = in_channels, 0
        for n_filters, mode in zip(filters, per_block(pooling, len(filters))):
            stride = 2 if mode == "stride" else 1
            block = ConvBlock1d(channels, n_filters, kernel_size, stride=stride,
                                batch_norm=batch_norm)
            if stride == 2:  # the mask follows the convolution's stride
                blocks += [_Downsample("stride"), _Plain(block)]
            else:
                blocks.append(_Plain(block))
                if mode is not None:
                    blocks.append(_Downsample(mode))
            halvings += mode is not None
            channels = n_filters
        self.blocks = nn.ModuleList(blocks)
        self.head = _GapHead(channels, n_outputs, dropout=dropout, hidden_units=hidden_units)
        self.min_length = max(_half(kernel_size), 2 ** halvings)


def fcn_kernel_sizes(n_blocks: int) -> tuple[int, ...]:
    """FCN's kernels for ``n_blocks`` blocks: 8, 5, then 3 (Wang et al.'s for three)."""
    return tuple((8, 5, 3)[min(i, 2)] for i in range(n_blocks))


class FCN(_SeriesNet):
    """The fully convolutional network of Wang, Yan & Oates (2017): three Conv → BatchNorm →
    ReLU blocks of 128, 256 and 128 filters with kernels 8, 5 and 3, global average pooling
    and a dense output layer. The time axis keeps its length throughout.

    Parameters
    ----------
    in_channels, n_outputs : int
    filters : sequence of int, default=(128, 256, 128)
    kernel_sizes : sequence of int, default=None
        One per block; None: 8, 5, then 3.
    batch_norm : bool, default=True
    dropout : float, default=0.0
    hidden_units : sequence of int, default=()
    normalize : {"series", "channel"} or None, default="series"

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import FCN
    >>> net = FCN(in_channels=1, n_outputs=2)
    >>> net(torch.zeros(3, 1, 30)).shape, net.min_length
    (torch.Size([3, 2]), 4)
    """

    def __init__(self, *, in_channels: int, n_outputs: int,
                 filters: Sequence[int] = (128, 256, 128),
                 kernel_sizes: Sequence[int] | None = None, batch_norm: bool = True,
                 dropout: float = 0.0, hidden_units: Sequence[int] = (),
                 normalize: str | None = "series"):
        super().__init__()
        self.input = SeriesInput(in_channels, normalize)
        sizes = tuple(kernel_sizes or fcn_kernel_sizes(len(filters)))
        channels = [in_channels, *filters]
        self.blocks = nn.ModuleList(_Plain(ConvBlock1d(a, b, k, batch_norm=batch_norm))
                                    for a, b, k in zip(channels, channels[1:], sizes))
        self.head = _GapHead(channels[-1], n_outputs, dropout=dropout,
                             hidden_units=hidden_units)
        self.min_length = _half(sizes[0])


class Residual1d(nn.Module):
    """Layers (each ``(x, mask) -> x``) and a shortcut around them, added, then ReLU: the
    residual block of ResNet (its convolutions) and of InceptionTime (three inception
    modules). The shortcut is a 1×1 convolution where the channels change (always, with
    ``project=True``), then BatchNorm."""

    def __init__(self, layers: Sequence[nn.Module], in_channels: int, out_channels: int, *,
                 batch_norm: bool = True, project: bool = False):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.project = (nn.Conv1d(in_channels, out_channels, 1, bias=not batch_norm)
                        if project or in_channels != out_channels else nn.Identity())
        self.norm = _norm(out_channels, batch_norm)

    def forward(self, x, mask):
        y = x
        for layer in self.layers:
            y = layer(y, mask)
        return torch.relu(y + self.norm(self.project(x), mask)) * mask, mask


def _residual_convolutions(in_channels: int, out_channels: int, kernel_sizes: Sequence[int],
                           *, batch_norm: bool) -> Residual1d:
    """ResNet's block: convolutions of ``kernel_sizes`` (the last without ReLU, which
    follows the addition) and the shortcut."""
    sizes = list(kernel_sizes)
    return Residual1d([ConvBlock1d(in_channels if i == 0 else out_channels, out_channels, k,
                                   batch_norm=batch_norm, relu=i < len(sizes) - 1)
                       for i, k in enumerate(sizes)], in_channels, out_channels,
                      batch_norm=batch_norm)


class ResNet1d(_SeriesNet):
    """The residual network of Wang, Yan & Oates (2017): three residual blocks of 64, 128
    and 128 filters, global average pooling and a dense output layer.

    Parameters
    ----------
    in_channels, n_outputs : int
    filters : sequence of int, default=(64, 128, 128)
        Output channels of each residual block.
    kernel_sizes : sequence of int, default=(8, 5, 3)
        The convolutions of every block.
    batch_norm : bool, default=True
    dropout : float, default=0.0
    hidden_units : sequence of int, default=()
    normalize : {"series", "channel"} or None, default="series"

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import ResNet1d
    >>> ResNet1d(in_channels=3, n_outputs=4)(torch.zeros(2, 3, 40)).shape
    torch.Size([2, 4])
    """

    def __init__(self, *, in_channels: int, n_outputs: int,
                 filters: Sequence[int] = (64, 128, 128),
                 kernel_sizes: Sequence[int] = (8, 5, 3), batch_norm: bool = True,
                 dropout: float = 0.0, hidden_units: Sequence[int] = (),
                 normalize: str | None = "series"):
        super().__init__()
        self.input = SeriesInput(in_channels, normalize)
        channels = [in_channels, *filters]
        self.blocks = nn.ModuleList(
            _residual_convolutions(a, b, kernel_sizes, batch_norm=batch_norm)
            for a, b in zip(channels, channels[1:]))
        self.head = _GapHead(channels[-1], n_outputs, dropout=dropout,
                             hidden_units=hidden_units)
        self.min_length = _half(tuple(kernel_sizes)[0])


class InceptionModule1d(nn.Module):
    """InceptionTime's module: a 1×1 bottleneck (for more than one input channel), three
    convolutions of kernels 39, 19 and 9 beside a max pooling (of real time points only)
    followed by a 1×1 convolution, concatenated (4 × ``filters`` channels), BatchNorm,
    ReLU."""

    def __init__(self, in_channels: int, filters: int = 32, bottleneck: int = 32,
                 kernel_sizes: Sequence[int] = (39, 19, 9), *, batch_norm: bool = True):
        super().__init__()
        self.bottleneck = (nn.Conv1d(in_channels, bottleneck, 1, bias=False)
                           if in_channels > 1 else nn.Identity())
        width = bottleneck if in_channels > 1 else in_channels
        self.convs = nn.ModuleList(nn.Conv1d(width, filters, k, padding=k // 2, bias=False)
                                   for k in kernel_sizes)
        self.pool_conv = nn.Conv1d(in_channels, filters, 1, bias=False)
        self.norm = _norm(filters * (len(kernel_sizes) + 1), batch_norm)

    def forward(self, x, mask):
        narrow = self.bottleneck(x)
        # Max pooling over 3 time points (stride 1), by shifts (an ONNX export keeps the
        # time axis free); the padding must not win a maximum, as for the series alone.
        wide = nn.functional.pad(x.masked_fill(~mask, float("-inf")), (1, 1),
                                 value=float("-inf"))
        pooled = torch.maximum(torch.maximum(wide[..., :-2], wide[..., 1:-1]), wide[..., 2:])
        pooled = pooled.masked_fill(~mask, 0.0)
        out = torch.cat([conv(narrow) for conv in self.convs] + [self.pool_conv(pooled)],
                        dim=1)
        return torch.relu(self.norm(out, mask)) * mask


class InceptionNet1d(_SeriesNet):
    """InceptionTime's network (Ismail Fawaz et al. 2020): inception modules with a
    residual connection around every three, global average pooling and a dense output
    layer. (InceptionTime itself is an ensemble of five of these.)

    Parameters
    ----------
    in_channels, n_outputs : int
    filters : sequence of int, default=(32,) * 6
        Filters per branch of each module (a module outputs 4 × its filters channels);
        one module per entry.
    kernel_sizes : sequence of int, default=(39, 19, 9)
        The convolution branches of every module, odd.
    batch_norm : bool, default=True
    dropout : float, default=0.0
    hidden_units : sequence of int, default=()
    normalize : {"series", "channel"} or None, default="series"

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks1d import InceptionNet1d
    >>> net = InceptionNet1d(in_channels=1, n_outputs=2, filters=(8, 8, 8))
    >>> net(torch.zeros(2, 1, 24)).shape, net.min_length
    (torch.Size([2, 2]), 5)
    """

    def __init__(self, *, in_channels: int, n_outputs: int,
                 filters: Sequence[int] = (32,) * 6,
                 kernel_sizes: Sequence[int] = (39, 19, 9), batch_norm: bool = True,
                 dropout: float = 0.0, hidden_units: Sequence[int] = (),
                 normalize: str | None = "series"):
        super().__init__()
        self.input = SeriesInput(in_channels, normalize)
        blocks: list[nn.Module] = []
        channels = in_channels
        for start in range(0, len(filters), 3):
            modules, width = [], channels
            for n_filters in filters[start:start + 3]:
                modules.append(InceptionModule1d(width, n_filters, kernel_sizes=kernel_sizes,
                                                 batch_norm=batch_norm))
                width = 4 * n_filters
            blocks.append(Residual1d(modules, channels, width, batch_norm=batch_norm,
                                     project=True))
            channels = width
        self.blocks = nn.ModuleList(blocks)
        self.head = _GapHead(channels, n_outputs, dropout=dropout, hidden_units=hidden_units)
        # Multi-scale by design: the shortest branch must see more series than padding.
        self.min_length = _half(min(kernel_sizes))


# The names ``architecture=`` takes, and each network's default filters and kernel sizes.
ARCHITECTURES = {"convnet": ConvNet1d, "fcn": FCN, "resnet": ResNet1d,
                 "inception": InceptionNet1d}
DEFAULTS = {
    "convnet": {"filters": (64, 128, 128), "kernel_size": 7},
    "fcn": {"filters": (128, 256, 128), "kernel_size": (8, 5, 3)},
    "resnet": {"filters": (64, 128, 128), "kernel_size": (8, 5, 3)},
    "inception": {"filters": (32,) * 6, "kernel_size": (39, 19, 9)},
}
