"""TransferClassifier: a torchvision backbone, its head replaced, frozen or fine-tuned.

Backbones come from torchvision's model registry by name; weights from torchvision's
enums (through the torch hub cache), from a local state-dict file, or random. Nothing is
downloaded unless the user asks for pretrained weights, and with
``SKLEARN_CNN_OFFLINE=1`` nothing is downloaded at all.
"""

from __future__ import annotations

import difflib
import os
import pickle
import warnings
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from torch import nn

from ._base import BaseCNNClassifier
from ._data import BatchIterator, ImageDataset, channel_statistics
from ._training import training_mode_layers
from .devices import memory_format_for
from .networks import InputAdapter, TransferNet, backbone_stages

__all__ = ["TransferClassifier", "load_backbone", "list_backbones"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def _in_unit_range(images: np.ndarray, chunk: int = 1024) -> bool:
    """Whether float images lie in [0, 1] (a little rounding allowed), read in chunks."""
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        if part.min() < -1e-3 or part.max() > 1 + 1e-3:
            return False
    return True


def _is_weights_enum(value) -> bool:
    """A torchvision weights enum member, told without importing torchvision for others."""
    if not type(value).__module__.startswith("torchvision"):
        return False
    from torchvision.models import WeightsEnum

    return isinstance(value, WeightsEnum)


# A torchvision WeightsEnum member, recognised by what it can do: declaring the type itself
# would import torchvision (seconds) when the class is defined.
WEIGHTS_ENUM = HasMethods(["get_state_dict", "transforms"])


def check_backbone_channels(channels: int, backbone: str) -> None:
    """torchvision backbones take RGB; grayscale is repeated into it. Anything else is refused
    before torch would fail with a shape error deep inside the first convolution."""
    if channels not in (1, 3):
        raise ValueError(
            f"{backbone} takes RGB images, but these have {channels} channels. Pass grayscale "
            "(1 channel) or RGB (3 channels) images: drop an alpha channel with X[..., :3], or "
            "pick 3 of the bands of a multispectral image.")


def list_backbones() -> list[str]:
    """Names of torchvision's image classification models, for ``backbone=``.

    Examples
    --------
    >>> from sklearn_cnn.transfer import list_backbones
    >>> {"resnet18", "mobilenet_v3_small", "efficientnet_b0"} <= set(list_backbones())
    True
    """
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


@dataclass
class Backbone:
    """A loaded backbone: the model, its head's name and its input preprocessing."""

    model: nn.Module
    head_name: str
    in_features: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int


def _check_backbone_name(name: str) -> None:
    names = list_backbones()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"Did you mean {', '.join(map(repr, close))}? " if close else ""
        raise ValueError(f"Unknown backbone {name!r}. {hint}sklearn_cnn.transfer.list_backbones() "
                         f"lists torchvision's {len(names)} classification models.")


def _weights_enum(name: str, weights):
    """The torchvision weights enum that ``weights`` names, or None for a file or no weights."""
    import torchvision

    if weights is None or _is_weights_enum(weights):
        return weights
    if isinstance(weights, os.PathLike) or str(weights).lower().endswith(_FILE_SUFFIXES):
        return None
    enum = torchvision.models.get_model_weights(name)
    member = str(weights).rsplit(".", 1)[-1]
    try:
        return enum[member] if member != "DEFAULT" else enum.DEFAULT
    except KeyError:
        members = [m.name for m in enum] + ["DEFAULT"]
        if os.path.exists(str(weights)):
            return None
        raise ValueError(f"weights={weights!r} is neither a file nor one of {name}'s weights "
                         f"{members}; pass one of those, a path to a state-dict file "
                         "(.pth/.pt/.safetensors), or None for random initialisation.") from None


def _read_state_dict_file(path: Path) -> dict:
    how_to_save = "save weights with torch.save(model.state_dict(), path)"
    if path.is_dir():
        raise ValueError(f"weights={str(path)!r} is a folder; pass the weights file in it "
                         "(.pth, .pt or .safetensors).")
    if not path.is_file():
        raise ValueError(f"weights file {str(path)!r} does not exist.")
    if path.stat().st_size == 0:
        raise ValueError(f"weights file {str(path)!r} is empty (0 bytes): was it written "
                         f"completely? To make one, {how_to_save}.")
    if path.suffix == ".safetensors":
        try:
            from safetensors import SafetensorError
            from safetensors.torch import load_file
        except ImportError:
            raise ImportError(f"Reading {path.name} needs the safetensors package: "
                              "pip install safetensors") from None
        try:
            return load_file(str(path))
        except SafetensorError as exc:
            raise ValueError(f"{str(path)!r} is not a readable safetensors file ({exc}).") \
                from None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):
            raise ValueError(
                f"{str(path)!r} holds pickled Python objects besides tensors (for example a "
                "whole model saved with torch.save(model)). Loading it would run code from "
                f"the file, which sklearn-cnn never does. Re-save only the weights: load it "
                f"where you trust it and {how_to_save}.") from None
        raise ValueError(f"{str(path)!r} is not a PyTorch weights file: it could not be "
                         f"read as one (random or corrupted bytes?). {how_to_save.capitalize()}.") \
            from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise ValueError(f"{str(path)!r} is not a readable PyTorch weights file (it may be "
                         f"truncated or of another format: {exc}). To make one, "
                         f"{how_to_save}.") from None
    if not isinstance(state, dict):
        raise ValueError(f"{path} holds a {type(state).__name__}, not a state dict; "
                         f"{how_to_save}.")
    return state


def _read_enum_state_dict(weights) -> dict:
    """The enum's state dict from the torch hub cache, downloading only if allowed."""
    filename = os.path.basename(urlparse(weights.url).path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    help_text = (f"To use them offline, download {weights.url} and put it at {cached} "
                 "(the torch hub cache; $TORCH_HOME moves it), or pass a local file with "
                 "weights='path/to/file.pth', or weights=None for random initialisation.")
    if os.environ.get("SKLEARN_CNN_OFFLINE", "") not in ("", "0"):
        raise ValueError(f"The pretrained weights {weights} are not in the torch hub cache and "
                         f"SKLEARN_CNN_OFFLINE is set. {help_text}")
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # any network or file error: say what to do instead
        raise ValueError(f"Could not download the pretrained weights {weights} ({exc}). "
                         f"{help_text}") from None


def _load_state_dict(model: nn.Module, state: dict, head_name: str, source: str) -> None:
    """Load weights, leaving out a classifier head that does not fit (other classes, or the
    dropout + linear head of a saved TransferClassifier's ``module_.backbone``)."""
    own = model.state_dict()
    head = head_name + "."
    state = {k: v for k, v in state.items()
             if not (k.startswith(head) and (k not in own or own[k].shape != v.shape))}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ValueError(f"The weights in {source} do not fit {type(model).__name__}: {exc}") \
            from None
    missing = [k for k in missing if not k.startswith(head)]
    if missing or unexpected:
        raise ValueError(
            f"The weights in {source} do not fit {type(model).__name__}: {len(missing)} missing "
            f"keys (e.g. {missing[:3]}) and {len(unexpected)} unexpected (e.g. "
            f"{unexpected[:3]}). Pass a state dict saved from the same torchvision model."
        )


def load_backbone(name: str, weights=None, input_size: int | None = None) -> Backbone:
    """Build a torchvision classification model and load its weights.

    Parameters
    ----------
    name : str
        A name from :func:`list_backbones`, e.g. "resnet18" or "mobilenet_v3_small".
    weights : None, "DEFAULT", str, WeightsEnum or path, default=None
        None for random initialisation; "DEFAULT" or a member name ("IMAGENET1K_V1") of
        torchvision's weights enum, read from the torch hub cache (downloaded only when
        missing and ``SKLEARN_CNN_OFFLINE`` is unset); or a path to a state-dict file
        (.pth/.pt read with ``weights_only=True``, or .safetensors).
    input_size : int or None, default=None
        Side of the images the backbone sees; None takes the weights' crop size, or 224.

    Returns
    -------
    Backbone
        The model (with its original head), the head's name, its input features, and the
        normalisation mean/std and input size that go with the weights.

    Examples
    --------
    >>> from sklearn_cnn.transfer import load_backbone
    >>> backbone = load_backbone("resnet18", weights=None)
    >>> backbone.head_name, backbone.in_features, backbone.input_size
    ('fc', 512, 224)
    """
    import torchvision

    _check_backbone_name(name)
    enum = _weights_enum(name, weights)
    model = torchvision.models.get_model(name, weights=None)
    linears = [n for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{name} has no linear classifier layer to replace (its head is "
                         "convolutional); pick another backbone, e.g. resnet18 or "
                         "mobilenet_v3_small.")
    head_name = linears[-1]
    in_features = model.get_submodule(head_name).in_features
    mean, std, size = IMAGENET_MEAN, IMAGENET_STD, 224
    fixed_size = getattr(model, "image_size", None)  # vision transformers: one input size
    if fixed_size is not None and input_size not in (None, fixed_size):
        raise ValueError(f"{name} takes only {fixed_size}x{fixed_size} images; leave "
                         "input_size=None (images are resized per batch).")
    if enum is not None:
        _load_state_dict(model, _read_enum_state_dict(enum), head_name, str(enum))
        preset = enum.transforms()
        mean, std = tuple(preset.mean), tuple(preset.std)
        size = int(preset.crop_size[0])
    elif weights is not None:
        path = Path(weights)
        _load_state_dict(model, _read_state_dict_file(path), head_name, str(path))
    return Backbone(model, head_name, in_features, mean, std, input_size or size)


def embed(module: nn.Module, dataset, *, batch_size: int, device: torch.device,
          autocast_dtype=None, capture: nn.Module | None = None) -> torch.Tensor:
    """A network's outputs for every image of an ImageDataset, or the inputs that reach
    ``capture`` (one of its layers), batch by batch in eval mode: float32, on ``device``.

    What :class:`~sklearn_cnn.preprocessing.PretrainedFeatures` returns, and what a
    frozen-backbone TransferClassifier caches before training its head. Computed without
    autograd, but not in inference mode: the cached features are a training input.
    """
    memory_format = memory_format_for(device)
    batches = BatchIterator(dataset, batch_size, device=device, memory_format=memory_format)
    captured: list[torch.Tensor] = []
    handle = None if capture is None else capture.register_forward_pre_hook(
        lambda layer, inputs: captured.append(inputs[0].float()))
    was_training = module.training
    module.eval()
    outputs = []
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=autocast_dtype,
                                             enabled=autocast_dtype is not None):
            for xb, _ in batches:
                out = module(xb)
                if capture is None:
                    outputs.append(out.float())
    finally:
        if handle is not None:
            handle.remove()
        module.train(was_training)
    return torch.cat(captured if capture is not None else outputs)


def _changes_each_pass(layer: nn.Module) -> bool:
    """A layer whose training-mode output is random or moves (dropout, stochastic depth,
    batch norm that updates its statistics)."""
    if isinstance(layer, nn.modules.batchnorm._BatchNorm):
        return True
    rate = getattr(layer, "p", 0)
    random_layer = isinstance(layer, nn.modules.dropout._DropoutNd) or (
        type(layer).__name__ == "StochasticDepth")
    return random_layer and rate > 0


def feature_cache_split(module: TransferNet) -> tuple[nn.Module, nn.Module] | None:
    """Where a frozen backbone's work can be done once: (the layer whose input to cache,
    the trainable tail from that layer on), or None when caching would not be exact.

    The tail is the new head, plus the parameter-free random layers just before it in the
    same Sequential (MobileNet's dropout). Exact means: nothing outside the tail trains,
    and nothing outside it changes from one pass to the next in training mode.
    """
    backbone = module.backbone
    head = backbone.get_submodule(module.head_name)
    cut, tail = head, head
    parent_name, _, child = module.head_name.rpartition(".")
    if parent_name and isinstance(backbone.get_submodule(parent_name), nn.Sequential):
        parent = backbone.get_submodule(parent_name)
        layers = list(parent)
        index = list(parent._modules).index(child)
        while index > 0 and not list(layers[index - 1].parameters()) and _changes_each_pass(
                layers[index - 1]):
            index -= 1
        cut, tail = layers[index], nn.Sequential(*layers[index:])
    inside = {id(m) for m in tail.modules()}
    trainable = {id(p) for p in tail.parameters()}
    if any(p.requires_grad and id(p) not in trainable for p in module.parameters()):
        return None
    changing = any(_changes_each_pass(m) for m in training_mode_layers(module)
                   if id(m) not in inside)
    return None if changing else (cut, tail)


class TransferClassifier(BaseCNNClassifier):
    """Fine-tune a pretrained torchvision network on your images.

    The backbone's classifier layer (``fc``, ``classifier`` or ``heads``, whatever the
    family calls it) is replaced by dropout and a linear layer for your classes. Images
    are adapted per batch on the device: grayscale becomes RGB, the size becomes the
    backbone's input size, and pixels are normalised with the weights' mean and std, so
    raw uint8 images can be passed as they are. Pass uint8 pixels (0..255) or floats in
    [0, 1]; floats in any other range (0..255, standardised) are standardised with
    per-channel statistics learned from the training images instead.

    Parameters
    ----------
    backbone : str, default="resnet18"
        Any torchvision classification model by name (:func:`list_backbones`): resnet18/
        34/50, mobilenet_v2, mobilenet_v3_small/large, efficientnet_b0, convnext_tiny,
        regnet_y_400mf, vit_b_16, ...
    weights : "DEFAULT", str, WeightsEnum, path or None, default="DEFAULT"
        Pretrained weights: torchvision's enum by name (read from the torch hub cache
        under ``$TORCH_HOME``), a local state-dict file (.pth/.pt/.safetensors), or None
        for random initialisation. See :func:`load_backbone`.
    freeze : "backbone", "none" or int, default="backbone"
        "backbone" trains only the new head; "none" fine-tunes everything; an int k
        trains the last k stages of the backbone too (``stage_names_`` lists them; k at
        least their number is "none").
        Frozen batch-norm layers keep their running statistics. With ``weights=None`` the
        backbone is random: freezing it warns, use ``freeze="none"``.
    unfreeze_at : int or None, default=None
        The epoch (counting from 1) from which the whole backbone trains: gradual
        unfreezing after training the head first.
    backbone_lr : float, default=1.0
        Multiplier of ``lr`` for the backbone's parameters (discriminative learning rates).
    head_dropout : float, default=0.2
        Dropout before the new linear layer, in [0, 1).
    input_size : int or None, default=None
        Side of the square images the backbone sees; None takes the weights' size (224 for
        most), or 224 without enum weights. Smaller is faster.
    optimizer, lr, momentum, weight_decay, batch_size, max_epochs, augment, \
early_stopping, validation_fraction, patience, lr_schedule, class_weight, \
label_smoothing, tta, data_format, image_shape, device, precision, compile, callbacks, \
random_state, verbose, warm_start
        As in :class:`CNNClassifier`; defaults: "adamw", lr=0.001, batch_size=32,
        max_epochs=10, lr_schedule="cosine".

    Attributes
    ----------
    classes_, n_features_in_, input_shape_, pixel_range_, device_, net_, module_, history_
        As in :class:`CNNClassifier`; ``module_`` is a :class:`~sklearn_cnn.networks.TransferNet`.
    stage_names_ : list of str
        The backbone's stages, input to output, that ``freeze=k`` counts from the end.
    head_name_ : str
        Name of the replaced classifier layer in the backbone.

    See Also
    --------
    CNNClassifier : a CNN trained from scratch.
    sklearn_cnn.preprocessing.PretrainedFeatures : the backbone's embeddings for any model.

    Examples
    --------
    >>> from sklearn_cnn import TransferClassifier
    >>> from sklearn_cnn.datasets import load_sample_patches
    >>> X, y = load_sample_patches(patch_size=32, n_patches=20)
    >>> clf = TransferClassifier(backbone="mobilenet_v3_small", weights=None, freeze="none",
    ...                          input_size=32, max_epochs=1, device="cpu", random_state=0)
    >>> clf.fit(X, y).predict(X[:2]).shape
    (2,)
    >>> clf.stage_names_[-2:]
    ['features.11', 'features.12']
    """

    _parameter_constraints: dict = {
        **BaseCNNClassifier._parameter_constraints,
        "backbone": [str],
        "weights": [None, str, os.PathLike, WEIGHTS_ENUM],
        "freeze": [StrOptions({"backbone", "none"}), Interval(Integral, 0, None, closed="left")],
        "unfreeze_at": [None, Interval(Integral, 1, None, closed="left")],
        "backbone_lr": [Interval(Real, 0, None, closed="left")],
        "head_dropout": [Interval(Real, 0, 1, closed="left")],
        "input_size": [None, Interval(Integral, 1, None, closed="left")],
    }
    _architecture_params = ("backbone", "weights", "freeze", "head_dropout", "input_size")

    def __init__(
        self,
        *,
        backbone="resnet18",
        weights="DEFAULT",
        freeze="backbone",
        unfreeze_at=None,
        backbone_lr=1.0,
        head_dropout=0.2,
        input_size=None,
        optimizer="adamw",
        lr=0.001,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=10,
        augment=None,
        early_stopping=False,
        validation_fraction=0.1,
        patience=5,
        lr_schedule="cosine",
        class_weight=None,
        label_smoothing=0.0,
        tta=False,
        data_format="channels_last",
        image_shape=None,
        device="auto",
        precision="auto",
        compile=False,
        callbacks=None,
        random_state=None,
        verbose=0,
        warm_start=False,
    ):
        self.backbone = backbone
        self.weights = weights
        self.freeze = freeze
        self.unfreeze_at = unfreeze_at
        self.backbone_lr = backbone_lr
        self.head_dropout = head_dropout
        self.input_size = input_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.tta = tta
        self.data_format = data_format
        self.image_shape = image_shape
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start

    def _check_architecture(self) -> None:
        _check_backbone_name(self.backbone)

    def _learn_input_statistics(self, module: TransferNet, images: np.ndarray) -> None:
        # uint8 pixels and floats in [0, 1] are what the weights' normalisation expects.
        # Floats in any other range (0..255, standardised, ...) would reach the backbone far
        # from that, and it would learn nothing: standardise them with their own statistics.
        if images.dtype == np.uint8 or _in_unit_range(images):
            return
        mean, std = channel_statistics(images)
        channels = module.adapter.mean.shape[1]
        if len(mean) != channels:  # grayscale, repeated into the backbone's RGB channels
            mean, std = np.repeat(mean, channels), np.repeat(std, channels)
        module.adapter.mean.copy_(torch.as_tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        module.adapter.std.copy_(torch.as_tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def _check_params(self) -> None:
        super()._check_params()
        if self.weights is None and self.freeze != "none":
            what = "the whole backbone" if self.freeze == "backbone" else (
                f"all but the last {self.freeze} stage(s)")
            warnings.warn(
                f"TransferClassifier(weights=None, freeze={self.freeze!r}) freezes {what} at "
                "its random initialisation: the head learns from random features, and the "
                "model will predict little better than chance. Pass pretrained weights (e.g. "
                "weights='DEFAULT' or a local weights file), or freeze='none' to train the "
                "whole network.", UserWarning, stacklevel=4)

    def _build_module(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        check_backbone_channels(input_shape[2], self.backbone)
        loaded = load_backbone(self.backbone, self.weights, self.input_size)
        return self._assemble(loaded, n_classes)

    def _assemble(self, loaded: Backbone, n_classes: int) -> TransferNet:
        """The backbone with the new head, frozen as ``freeze`` asks, behind its adapter."""
        head_name = loaded.head_name
        loaded.model.set_submodule(head_name, nn.Sequential(
            nn.Dropout(self.head_dropout), nn.Linear(loaded.in_features, n_classes)))
        stages = backbone_stages(loaded.model, head_name)

        trainable = {"backbone": 0, "none": len(stages)}.get(self.freeze, self.freeze)
        if trainable < len(stages):
            for name, param in loaded.model.named_parameters():
                if not name.startswith(head_name + "."):
                    param.requires_grad_(False)
            for _, stage in stages[len(stages) - trainable:]:
                stage.requires_grad_(True)
        adapter = InputAdapter(size=(loaded.input_size, loaded.input_size), mean=loaded.mean,
                               std=loaded.std)
        return TransferNet(adapter=adapter, backbone=loaded.model, head_name=head_name,
                           stage_names=[name for name, _ in stages])

    def _training_data(self, net, train, valid):
        """With the backbone frozen (and no augmentation or unfreezing), every epoch would
        recompute the same backbone outputs: compute the head's input once, on the device,
        and train the head on it. The same model, to float tolerance, in a fraction of the
        time; anything that makes the cache inexact falls back to the full pass."""
        net.cached_features_ = False
        if self.augment is not None or self.unfreeze_at is not None:
            return train, valid
        module = net.module_
        split = feature_cache_split(module)
        if split is None:
            return train, valid
        cut, tail = split
        device = torch.device(net.device)
        size = self._predict_batch_size(device, self._network_input_pixels(module, None),
                                        net.autocast_dtype is not None)
        features = [None if data is None else ImageDataset(embed(
            module, data, batch_size=size, device=device, autocast_dtype=net.autocast_dtype,
            capture=cut), data.y) for data in (train, valid)]
        # The tail must end the network: checked on a few images before relying on it.
        sample = ImageDataset(train.X[:2], train.y[:2])
        expected = embed(module, sample, batch_size=2, device=device,
                         autocast_dtype=net.autocast_dtype)
        with torch.no_grad(), torch.autocast(device.type, dtype=net.autocast_dtype,
                                             enabled=net.autocast_dtype is not None):
            module.eval()
            got = tail(features[0].X[:2]).float()
        if not torch.allclose(got, expected, rtol=1e-3, atol=1e-4):
            return train, valid
        module.use_feature_tail(tail)
        net.cached_features_ = True
        return features[0], features[1]

    def _training_done(self, net) -> None:
        net.module_.use_feature_tail(None)

    def _module_config(self, module: TransferNet) -> dict:
        return {"input_size": module.adapter.size[0]}

    def _rebuild_module(self, input_shape, n_classes: int, config: dict) -> TransferNet:
        # The architecture only: the saved weights (and normalisation) are loaded into it.
        loaded = load_backbone(self.backbone, None, int(config["input_size"]))
        return self._assemble(loaded, n_classes)

    def _network_input_pixels(self, module: TransferNet, image_size: tuple[int, int]) -> int:
        height, width = module.adapter.size  # the backbone sees resized images
        return height * width

    @property
    def head_name_(self) -> str:
        """Dotted name of the replaced classifier layer in the backbone."""
        return self.module_.head_name

    @property
    def stage_names_(self) -> list[str]:
        """The backbone's stages, input to output, that ``freeze=k`` counts from the end."""
        return self.module_.stage_names

    def _module_callbacks(self) -> list:
        if self.unfreeze_at is None:
            return []
        from skorch.callbacks import Unfreezer

        return [("unfreeze", Unfreezer("backbone.*", at=self.unfreeze_at))]

    def _param_groups(self, module: TransferNet) -> list:
        if self.backbone_lr == 1.0:
            return []
        # First match wins: the head keeps lr, the rest of the backbone gets lr * backbone_lr.
        return [(f"backbone.{module.head_name}.*", {"lr": self.lr}),
                ("backbone.*", {"lr": self.lr * self.backbone_lr})]
