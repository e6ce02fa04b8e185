"""Backbones by name: torchvision's classification models and timm's (``"timm/<name>"``),
built and given their weights, with the stages that freezing counts.

Where the weights come from and how files are read is ``_weights.py``; running a backbone
over data (embeddings, the frozen-feature cache) is ``_embeddings.py``. Their public
functions are documented here, where users look for them. Nothing is downloaded unless
pretrained weights are asked for, and with ``SKLEARN_CNN_OFFLINE=1`` nothing is downloaded
at all.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ._embeddings import embed, fit_pixel_scale, layer_inputs
from ._weights import (
    efficientnet_lite0_weights,
    is_weights_file,
    load_state_dict,
    offline,
    read_enum_state_dict,
    read_state_dict_file,
    rename_state_dict,
    weights_enum,
)

__all__ = ["Backbone", "IMAGENET_MEAN", "IMAGENET_STD", "TIMM_PREFIX", "backbone_stages",
           "efficientnet_lite0_weights", "embed", "fit_pixel_scale", "layer_inputs",
           "list_backbones", "load_backbone", "rename_state_dict"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Backbones named "timm/<model>" come from timm, as the Hugging Face hub names them.
TIMM_PREFIX = "timm/"


def _timm():
    """The timm package, or an ImportError that says how to install it."""
    try:
        import timm
    except ImportError:
        raise ImportError("Backbones named 'timm/<model>' come from timm, which is not "
                          "installed: pip install 'sklearn-cnn[timm]' (or pip install timm)."
                          ) from None
    return timm


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

    enum = weights_enum(name, weights)
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
        load_state_dict(model, read_enum_state_dict(enum), head_name, str(enum))
        preset = enum.transforms()
        mean, std = tuple(preset.mean), tuple(preset.std)
        size = int(preset.crop_size[0])
    elif weights is not None:
        path = Path(weights)
        load_state_dict(model, read_state_dict_file(path), head_name, str(path))
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
    elif is_weights_file(weights) or os.path.exists(str(weights)):
        model = timm.create_model(name, pretrained=False, **options)
        path = Path(weights)
        load_state_dict(model, read_state_dict_file(path),
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
    if offline():
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
        load_state_dict(model, read_state_dict_file(Path(cached)), _timm_head_name(cfg),
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
