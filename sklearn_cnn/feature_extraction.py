"""PretrainedFeatures: images → a pretrained backbone's pooled embeddings, as a scikit-learn
transformer, for any scikit-learn model after it."""

from __future__ import annotations

import copy
import os
from numbers import Integral

import torch
from sklearn.base import ClassNamePrefixFeaturesOutMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._data import ImageDataset, pixel_range, to_channels_last, to_compact_tensor
from ._embeddings import embed, fit_pixel_scale
from ._validation import seed_of, warn_if_other_pixel_scale
from ._weights import WEIGHTS_ENUM
from .backbones import check_backbone_channels, load_backbone
from .devices import memory_format_for, resolve_device
from .networks import InputAdapter, TransferNet
from .preprocessing import Float32Output, ImageTransformer

__all__ = ["PretrainedFeatures"]


class PretrainedFeatures(Float32Output, ClassNamePrefixFeaturesOutMixin, ImageTransformer):
    """Images → a pretrained backbone's pooled embeddings, for any scikit-learn model.

    ``make_pipeline(PretrainedFeatures(), LogisticRegression())`` is transfer learning
    without fine-tuning: the backbone's classifier layer is removed and the features
    before it become the columns of a 2-D array. Images are adapted per batch on the
    device (grayscale → RGB, resize, the weights' normalisation), without autograd.

    Pass uint8 pixels (0..255) or floats in [0, 1], as the weights' normalisation expects;
    floats in any other range (0..255, standardised) are standardised with per-channel
    statistics learned in ``fit`` instead, as :class:`~sklearn_cnn.TransferClassifier`
    does, and ``transform`` warns on images scaled unlike the training images.

    Parameters
    ----------
    backbone : str, default="resnet18"
        A backbone by name (see :func:`sklearn_cnn.backbones.list_backbones`).
    weights : "DEFAULT", str, WeightsEnum, path or None, default="DEFAULT"
        Pretrained weights by name, a local state-dict file, or None for random
        initialisation; see :func:`sklearn_cnn.backbones.load_backbone`.
    input_size : int or None, default=None
        Side of the images the backbone sees; None takes the weights' size, or 224.
    batch_size : int, default=64
        Images per forward pass.
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input.
    device : str or torch.device, default="auto"
        Where the backbone runs.
    random_state : int, RandomState instance or None, default=None
        Seeds the random initialisation when ``weights=None``.

    Attributes
    ----------
    model_ : torch.nn.Module
        The headless backbone behind its input adapter.
    device_ : torch.device
        The device it runs on.
    input_size_ : int
        Side of the square images the backbone sees.
    n_features_in_ : int
        Values per input image.
    n_features_out_ : int
        Embedding features per image (the columns of the output).
    pixel_range_ : tuple of float
        (min, max) of the training pixels as the backbone saw them (uint8 scaled to
        [0, 1]).

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_cnn.datasets import load_sample_patches
    >>> from sklearn_cnn.feature_extraction import PretrainedFeatures
    >>> X, y = load_sample_patches(patch_size=32, n_patches=10)
    >>> features = PretrainedFeatures(backbone="mobilenet_v3_small", weights=None,
    ...                               input_size=32, device="cpu", random_state=0)
    >>> features.fit_transform(X).shape
    (20, 1024)
    >>> make_pipeline(features, LogisticRegression()).fit(X, y).predict(X[:3]).shape
    (3,)
    """

    _parameter_constraints: dict = {
        "backbone": [str],
        "weights": [None, str, os.PathLike, WEIGHTS_ENUM],
        "input_size": [None, Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "data_format": [StrOptions({"channels_last", "channels_first"})],
        "device": [str, torch.device],
        "random_state": ["random_state"],
    }

    def __init__(self, *, backbone="resnet18", weights="DEFAULT", input_size=None,
                 batch_size=64, data_format="channels_last", device="auto", random_state=None):
        self.backbone = backbone
        self.weights = weights
        self.input_size = input_size
        self.batch_size = batch_size
        self.data_format = data_format
        self.device = device
        self.random_state = random_state

    def fit(self, X, y=None):
        """Load the backbone, drop its classifier layer, and learn the input scale.

        Parameters
        ----------
        X : array-like of images
        y : None
            Ignored.

        Returns
        -------
        self : object
        """
        self._validate_params()
        images = to_channels_last(self._validate(X, reset=True), data_format=self.data_format)
        check_backbone_channels(images.shape[-1], self.backbone)
        device = resolve_device(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed_of(self.random_state))
            loaded = load_backbone(self.backbone, self.weights, self.input_size)
        model = _headless(loaded.model, loaded.head_name, InputAdapter(
            size=(loaded.input_size,) * 2, mean=loaded.mean, std=loaded.std))
        fit_pixel_scale(model.adapter, images)
        self.model_, self.device_ = model, device
        self.input_size_, self.n_features_out_ = loaded.input_size, loaded.in_features
        self.pixel_range_ = pixel_range(images)
        return self

    @property
    def _n_features_out(self) -> int:
        # What scikit-learn's ClassNamePrefixFeaturesOutMixin names the output columns by.
        return self.n_features_out_

    def transform(self, X):
        """The pooled embeddings of the images.

        Parameters
        ----------
        X : array-like of images

        Returns
        -------
        ndarray of shape (n_samples, n_features_out), float32
        """
        check_is_fitted(self)
        images = to_channels_last(self._validate(X, reset=False), data_format=self.data_format)
        check_backbone_channels(images.shape[-1], self.backbone)
        warn_if_other_pixel_scale(self, images)
        model = self.model_.to(device=self.device_, memory_format=memory_format_for(
            self.device_))
        features = embed(model, ImageDataset(to_compact_tensor(images)),
                         batch_size=self.batch_size, device=self.device_)
        return features.cpu().numpy()

    def __getstate__(self):
        state = super().__getstate__()
        if "model_" in state and next(self.model_.buffers()).device.type != "cpu":
            # Saved models load on machines without a GPU.
            state["model_"] = copy.deepcopy(self.model_).cpu()
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "device_" in state and self.device_.type == "cuda" and not torch.cuda.is_available():
            self.device_ = torch.device("cpu")


def _headless(model: nn.Module, head_name: str, adapter: InputAdapter) -> TransferNet:
    model.set_submodule(head_name, nn.Identity())
    return TransferNet(adapter=adapter, backbone=model).eval()


def restore(features: PretrainedFeatures, *, state_dict: dict,
            device: torch.device) -> PretrainedFeatures:
    """A fitted PretrainedFeatures from its fitted attributes (already set) and the weights
    :func:`sklearn_cnn.save` wrote: the architecture is rebuilt, nothing is downloaded."""
    loaded = load_backbone(features.backbone, None, int(features.input_size_))
    model = _headless(loaded.model, loaded.head_name, InputAdapter(
        size=(loaded.input_size,) * 2, mean=loaded.mean, std=loaded.std))
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"the weights do not fit the network: {exc}") from None
    features.model_, features.device_ = model, device
    features.n_features_out_ = loaded.in_features
    return features
