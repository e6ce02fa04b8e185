"""The ``nn.Module`` builders (the lesson's ConvNet and the transfer-learning wrapper) and
the few helpers that look at a module from outside: one probe forward pass, eval mode for
a while, the module behind ``torch.compile``'s wrapper."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConvNet", "InputAdapter", "ModelSummary", "Standardize", "TransferNet", "blank_input",
           "check_pooling", "eval_mode", "network_input_size", "per_block", "probe", "uncompiled"]


def uncompiled(module: nn.Module) -> nn.Module:
    """The module itself, also when ``torch.compile`` wrapped it (they share parameters).

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks import uncompiled
    >>> layer = torch.nn.Linear(2, 2)
    >>> uncompiled(torch.compile(layer)) is layer, uncompiled(layer) is layer
    (True, True)
    """
    return getattr(module, "_orig_mod", module)


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """``module`` in eval mode for the ``with`` block, then in the mode it was in.

    Examples
    --------
    >>> from torch import nn
    >>> from sklearn_cnn.networks import eval_mode
    >>> layer = nn.Dropout()
    >>> with eval_mode(layer):
    ...     layer.training
    False
    >>> layer.training
    True
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def blank_input(input_shape: tuple, device=None) -> torch.Tensor:
    """One blank sample for a network: (1, C, H, W) for images of ``input_shape`` (height,
    width, channels), (1, C, T) for series of ``input_shape`` (channels, time points).

    Examples
    --------
    >>> from sklearn_cnn.networks import blank_input
    >>> tuple(blank_input((8, 6, 3)).shape), tuple(blank_input((2, 50)).shape)
    ((1, 3, 8, 6), (1, 2, 50))
    """
    if len(input_shape) == 2:
        return torch.zeros(1, *input_shape, device=device)
    height, width, channels = input_shape
    return torch.zeros(1, channels, height, width, device=device)


def probe(module: nn.Module, input_shape: tuple, layers, hook: Callable) -> None:
    """Run one blank sample of ``input_shape`` (height, width, channels of an image, or
    channels, time points of a series) through the network in eval mode, without
    gradients, with ``hook`` as forward hook on ``layers``; the mode is restored and the
    hooks removed. How the layer summary, Grad-CAM's default layer and the precision
    choice see what each layer receives and returns.

    Examples
    --------
    >>> from sklearn_cnn.networks import ConvNet, probe
    >>> net = ConvNet(in_channels=1, n_classes=2, input_size=(8, 8), filters=(4,))
    >>> shapes = []
    >>> probe(net, (8, 8, 1), [net.features[0]], lambda m, i, o: shapes.append(o.shape))
    >>> shapes
    [torch.Size([1, 4, 8, 8])]
    """
    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with eval_mode(module), torch.no_grad():
            module(blank_input(input_shape, device=next(module.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()


class ModelSummary(str):
    """A Keras-like layer table of a network: a string that prints as itself, with the
    parameter counts as attributes (``total_params``, ``trainable_params``).

    Examples
    --------
    >>> from sklearn_cnn.networks import ConvNet, ModelSummary
    >>> net = ConvNet(in_channels=1, n_classes=2, input_size=(8, 8), filters=(4,))
    >>> table = ModelSummary.of(net, (8, 8, 1), title="ConvNet")
    >>> table.total_params, table.trainable_params
    (54, 54)
    """

    total_params: int
    trainable_params: int

    def __repr__(self) -> str:
        return str(self)

    @classmethod
    def of(cls, module: nn.Module, input_shape: tuple, title: str) -> ModelSummary:
        """The table of ``module`` for images of ``input_shape`` (height, width, channels),
        or for series of ``input_shape`` (channels, time points). Output shapes are as
        torch has them, channels first, without the batch axis: (C, H, W) for images,
        (C, T) for series."""
        rows = []
        series = len(input_shape) == 2

        def hook(layer, _inputs, output):
            if isinstance(output, tuple) and output and isinstance(output[0], torch.Tensor):
                output = output[0]  # a series network's (values, mask)
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else "-"
            params = sum(p.numel() for p in layer.parameters(recurse=False))
            rows.append((names[layer], type(layer).__name__, str(shape), params))

        names = {m: n for n, m in module.named_modules()}
        probe(module, input_shape, [m for m in module.modules() if not list(m.children())],
              hook)
        total = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        width_name = max([len(f"{n} ({t})") for n, t, _, _ in rows] + [12])
        axes = "(C, T)" if series else "(C, H, W)"
        width_shape = max([len(s) for _, _, s, _ in rows] + [len(f"Output shape {axes}")])
        header = (f"{'Layer (type)':<{width_name}}  {f'Output shape {axes}':<{width_shape}}  "
                  f"{'Param #':>10}")
        described = "(channels, time points)" if series else "(height, width, channels)"
        lines = [f"{title}: input {described} = {input_shape}", header, "-" * len(header)]
        lines += [f"{f'{n} ({t})':<{width_name}}  {s:<{width_shape}}  {p:>10,}"
                  for n, t, s, p in rows]
        lines += ["-" * len(header), f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}", f"Frozen params: {total - trainable:,}"]
        summary = cls("\n".join(lines))
        summary.total_params, summary.trainable_params = total, trainable
        return summary


class Standardize(nn.Module):
    """Per-channel standardisation ``(x - mean) / std`` with statistics learned from data.

    The statistics are buffers: they are saved, moved and exported with the network, so
    prediction applies exactly the normalisation that training learned. They start as the
    identity (mean 0, std 1); the estimators set them from the training images in ``fit``.

    Parameters
    ----------
    n_channels : int
        Channels of the input images.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks import Standardize
    >>> layer = Standardize(1)
    >>> layer.set_statistics([2.0], [4.0])
    >>> layer(torch.full((1, 1, 2, 2), 6.0)).flatten().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """

    def __init__(self, n_channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(1, n_channels, 1, 1))
        self.register_buffer("std", torch.ones(1, n_channels, 1, 1))

    def set_statistics(self, mean: Sequence[float], std: Sequence[float]) -> None:
        """Set the channel means and standard deviations (in the input's units)."""
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view_as(self.mean))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).view_as(self.std))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def per_block(pooling, n_blocks: int) -> list:
    """``pooling`` as one value per block: a single value (None: no downsampling) for every
    block, or the sequence given.

    Examples
    --------
    >>> from sklearn_cnn.networks import per_block
    >>> per_block("max", 2), per_block(None, 2), per_block(("max", None), 2)
    (['max', 'max'], [None, None], ['max', None])
    """
    if pooling is None or isinstance(pooling, str):
        return [pooling] * n_blocks
    return list(pooling)


def check_pooling(pooling, *, n_blocks: int) -> None:
    """Refuse a ``pooling`` that is a sequence of another length than the blocks, or that
    holds anything but "max", "avg", "stride" and None (single values are checked by the
    estimators' parameter constraints).

    Examples
    --------
    >>> from sklearn_cnn.networks import check_pooling
    >>> check_pooling(("max", None), n_blocks=2)
    >>> check_pooling(("max",), n_blocks=2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: pooling=('max',) must give one of 'max', 'avg', 'stride' or None for each ...
    """
    if pooling is None or isinstance(pooling, str):
        return
    allowed = ("max", "avg", "stride", None)
    if len(pooling) != n_blocks or any(p not in allowed for p in pooling):
        raise ValueError(
            f"pooling={tuple(pooling)!r} must give one of 'max', 'avg', 'stride' or None for "
            f"each of the {n_blocks} blocks of filters, or one value for all; e.g. "
            f"pooling=('max',) * {max(n_blocks - 1, 0)} + (None,) pools after every block but "
            "the last.")


class ConvNet(nn.Module):
    """Conv → (BatchNorm) → ReLU → pool blocks, global average pooling, dropout, dense head.

    The first layer, :class:`Standardize`, holds the per-channel input statistics that
    :class:`~sklearn_cnn.CNNClassifier` learns from the training images. The blocks adapt
    to the input size: a dimension is halved only while it is at least 2 pixels, so an 8×8
    digit and a 224×224 photo both work with the same ``filters``.

    Parameters
    ----------
    in_channels : int
        Channels of the input images.
    n_classes : int
        Outputs (logits).
    input_size : (int, int)
        Height and width of the input images.
    filters : sequence of int, default=(32, 64, 128)
        Output channels of each convolutional block.
    kernel_size : int, default=3
        Convolution kernel size, odd ("same" padding).
    pooling : {"max", "avg", "stride"}, None, or a sequence of them, default="max"
        Downsampling after each block (one value for all, or one per block): 2×2 max or
        average pooling, a stride-2 convolution, or None for none (Keras' Conv → Pool →
        Conv → Pool → Conv is ``("max", "max", None)``).
    batch_norm : bool, default=True
        Batch normalisation after each convolution.
    dropout : float, default=0.0
        Dropout before each dense layer.
    hidden_units : sequence of int, default=()
        Sizes of dense ReLU layers between the pooled features and the output.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks import ConvNet
    >>> net = ConvNet(in_channels=1, n_classes=10, input_size=(8, 8))
    >>> net(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        *,
        in_channels: int,
        n_classes: int,
        input_size: tuple[int, int],
        filters: Sequence[int] = (32, 64, 128),
        kernel_size: int = 3,
        pooling: str | None | Sequence[str | None] = "max",
        batch_norm: bool = True,
        dropout: float = 0.0,
        hidden_units: Sequence[int] = (),
    ):
        super().__init__()
        height, width = input_size
        self.standardize = Standardize(in_channels)
        layers: list[nn.Module] = []
        channels = in_channels
        for n_filters, mode in zip(filters, per_block(pooling, len(filters))):
            # Halve each dimension that still has at least 2 pixels.
            step = (2 if height >= 2 else 1, 2 if width >= 2 else 1)
            stride = step if mode == "stride" else 1
            layers.append(
                nn.Conv2d(channels, n_filters, kernel_size, stride=stride,
                          padding=kernel_size // 2, bias=not batch_norm)
            )
            if batch_norm:
                layers.append(nn.BatchNorm2d(n_filters))
            layers.append(nn.ReLU(inplace=True))
            if mode in ("max", "avg") and step != (1, 1):
                pool = nn.MaxPool2d if mode == "max" else nn.AvgPool2d
                layers.append(pool(step))
            if mode == "stride":  # an odd kernel with stride 2 and "same" padding: ceil(n / 2)
                height, width = -(-height // step[0]), -(-width // step[1])
            elif mode is not None:
                height, width = height // step[0], width // step[1]
            channels = n_filters
        self.features = nn.Sequential(*layers)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        head: list[nn.Module] = []
        for units in hidden_units:
            head += [nn.Dropout(dropout), nn.Linear(channels, units), nn.ReLU(inplace=True)]
            channels = units
        head += [nn.Dropout(dropout), nn.Linear(channels, n_classes)]
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(self.standardize(x))))


class InputAdapter(nn.Module):
    """Per-batch input adaptation on the device: grayscale → RGB, resize, normalise.

    Inside the module, so that images are never resized or copied as a whole dataset and
    predict applies exactly what training applied.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.networks import InputAdapter
    >>> adapter = InputAdapter(size=(32, 32), mean=(0.5,) * 3, std=(0.25,) * 3)
    >>> adapter(torch.full((2, 1, 8, 8), 128, dtype=torch.uint8)).shape  # grey, uint8
    torch.Size([2, 3, 32, 32])
    """

    def __init__(self, *, size: tuple[int, int], mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.size = tuple(size)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.mean.shape[1] == 3:
            x = x.expand(-1, 3, -1, -1)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", antialias=True,
                              align_corners=False)
        return (x - self.mean) / self.std


class TransferNet(nn.Module):
    """A torchvision backbone behind an :class:`InputAdapter`.

    Batch-norm layers whose parameters are all frozen stay in eval mode while training,
    so a frozen backbone keeps its running statistics.

    Parameters
    ----------
    adapter : InputAdapter
        Per-batch input adaptation.
    backbone : nn.Module
        The torchvision model, its head replaced.
    head_name : str, default=""
        Dotted name of the head inside ``backbone``.
    stage_names : sequence of str, default=()
        The backbone's stages, input to output (see
        :func:`sklearn_cnn.backbones.backbone_stages`).

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.backbones import load_backbone
    >>> from sklearn_cnn.networks import InputAdapter, TransferNet
    >>> backbone = load_backbone("resnet18", weights=None)
    >>> backbone.model.fc = torch.nn.Linear(backbone.in_features, 3)
    >>> net = TransferNet(adapter=InputAdapter(size=(64, 64), mean=backbone.mean,
    ...                                        std=backbone.std),
    ...                   backbone=backbone.model, head_name="fc")
    >>> net(torch.rand(2, 3, 16, 16)).shape
    torch.Size([2, 3])
    """

    def __init__(self, *, adapter: InputAdapter, backbone: nn.Module, head_name: str = "",
                 stage_names: Sequence[str] = ()):
        super().__init__()
        self.adapter = adapter
        self.backbone = backbone
        self.head_name = head_name
        self.stage_names = list(stage_names)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the images the backbone sees, after the adapter's resize."""
        return self.adapter.size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tail = self.__dict__.get("_feature_tail")
        if tail is not None:  # a frozen-backbone fit trains on cached features
            return tail(x)
        return self.backbone(self.adapter(x))

    def use_feature_tail(self, tail: nn.Module | None) -> None:
        """While set, ``forward`` takes the cached inputs of ``tail`` (a trailing part of the
        backbone) instead of images; ``None`` restores the full network. Kept out of the
        module's children, so that parameters and state dicts are unchanged."""
        self.__dict__["_feature_tail"] = tail

    def train(self, mode: bool = True) -> TransferNet:
        super().train(mode)
        if mode:
            for module in self.backbone.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()
                ):
                    module.eval()
        return self


def network_input_size(module: nn.Module,
                       image_size: tuple[int, int] | None) -> tuple[int, int]:
    """(height, width) of what the network's first layer sees for images of ``image_size``:
    a TransferNet resizes them to its backbone's size (whatever ``image_size``, None
    included), other networks take them as they are.

    Examples
    --------
    >>> from sklearn_cnn.networks import ConvNet, network_input_size
    >>> network_input_size(ConvNet(in_channels=1, n_classes=2, input_size=(28, 28)), (28, 28))
    (28, 28)"""
    module = uncompiled(module)
    return module.input_size if isinstance(module, TransferNet) else tuple(image_size)
