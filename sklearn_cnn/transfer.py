"""TransferClassifier and TransferRegressor: a pretrained backbone, its head replaced, frozen
or fine-tuned; and the frozen-feature cache, which trains a frozen backbone's head on
features computed once.

The backbones and their weights come from :mod:`sklearn_cnn.backbones`.
"""

from __future__ import annotations

import math
import os
import warnings
from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from . import _docstrings
from ._classification import CNNClassifierBase
from ._data import ImageDataset, prediction_batch_size
from ._embeddings import embed, fit_pixel_scale, layer_inputs
from ._regression import CNNRegressorBase
from ._training import training_mode_layers
from ._weights import WEIGHTS_ENUM
from .backbones import Backbone, check_backbone_channels, check_backbone_name, load_backbone
from .networks import InputAdapter, TransferNet, eval_mode, uncompiled

__all__ = ["TransferClassifier", "TransferRegressor"]


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


class _TransferEstimator:
    """The pretrained backbone of TransferClassifier (and of TransferRegressor): loaded,
    its head replaced, frozen as asked, and its frozen features cached."""

    _parameter_constraints: dict = {
        "backbone": [str],
        "weights": [None, str, os.PathLike, WEIGHTS_ENUM],
        "freeze": [StrOptions({"backbone", "none"}), Interval(Integral, 0, None, closed="left")],
        "unfreeze_at": [None, Interval(Integral, 1, None, closed="left")],
        "backbone_lr": [Interval(Real, 0, None, closed="left")],
        "head_dropout": [Interval(Real, 0, 1, closed="left")],
        "input_size": [None, Interval(Integral, 1, None, closed="left")],
    }
    _architecture_params = ("backbone", "weights", "freeze", "head_dropout", "input_size")

    def _check_architecture(self) -> None:
        check_backbone_name(self.backbone)

    def _check_params(self) -> None:
        super()._check_params()
        if self.weights is None and self.freeze != "none":
            what = "the whole backbone" if self.freeze == "backbone" else (
                f"all but the last {self.freeze} stage(s)")
            warnings.warn(
                f"{type(self).__name__}(weights=None, freeze={self.freeze!r}) freezes {what} "
                "at its random initialisation: the head learns from random features, and the "
                "model will predict little better than chance. Pass pretrained weights (e.g. "
                "weights='DEFAULT' or a local weights file), or freeze='none' to train the "
                "whole network.", UserWarning, stacklevel=4)

    def _build_module(self, input_shape: tuple[int, int, int], n_outputs: int, *,
                      images: np.ndarray | None = None, config: dict | None = None
                      ) -> TransferNet:
        check_backbone_channels(input_shape[2], self.backbone)
        if config is None:
            loaded = load_backbone(self.backbone, self.weights, self.input_size)
        else:  # the architecture only: the saved weights (and normalisation) go into it
            loaded = load_backbone(self.backbone, None, int(config["input_size"]))
        module = self._assemble(loaded, n_outputs)
        if images is not None:
            fit_pixel_scale(module.adapter, images)
        return module

    def _assemble(self, loaded: Backbone, n_outputs: int) -> TransferNet:
        """The backbone with the new head, frozen as ``freeze`` asks, behind its adapter."""
        head_name = loaded.head_name
        loaded.model.set_submodule(head_name, nn.Sequential(
            nn.Dropout(self.head_dropout), nn.Linear(loaded.in_features, n_outputs)))
        stages = loaded.stages

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

    def _module_config(self, module: TransferNet) -> dict:
        return {"input_size": module.input_size[0]}

    def _training_extras(self, module: TransferNet) -> tuple[list, list]:
        callbacks = []
        if self.unfreeze_at is not None:
            from skorch.callbacks import Unfreezer

            callbacks.append(("unfreeze", Unfreezer("backbone.*", at=self.unfreeze_at)))
        groups = []
        if self.backbone_lr != 1.0:
            # First match wins: the head keeps lr, the rest of the backbone gets
            # lr * backbone_lr.
            groups = [(f"backbone.{module.head_name}.*", {"lr": self.lr}),
                      ("backbone.*", {"lr": self.lr * self.backbone_lr})]
        return callbacks, groups

    @contextmanager
    def _training_inputs(self, net, train_set, valid_set):
        """With the backbone frozen (and no augmentation or unfreezing), every epoch would
        recompute the same backbone outputs: compute the head's input once, on the device,
        and train the head on it. The same model, to float tolerance, in a fraction of the
        time; anything that makes the cache inexact falls back to the full pass."""
        module = uncompiled(net.module_)  # computing the features compiles nothing
        cached = None
        # In a data-parallel fit every process would compute all the features: the epochs
        # run the backbone on each process's share instead.
        if self.augment is None and self.unfreeze_at is None and net.distributed is None:
            cached = _cached_features(module, train_set, valid_set, device=torch.device(
                net.device), autocast_dtype=net.autocast_dtype, batch_size=self.batch_size)
        if cached is None:
            yield train_set, valid_set
            return
        tail, train_features, valid_features = cached
        module.use_feature_tail(tail)
        try:
            yield train_features, valid_features
        finally:
            module.use_feature_tail(None)

    @property
    def head_name_(self) -> str:
        """Dotted name of the replaced classifier layer in the backbone."""
        return self.module_.head_name

    @property
    def stage_names_(self) -> list[str]:
        """The backbone's stages, input to output, that ``freeze=k`` counts from the end."""
        return self.module_.stage_names


def _cached_features(module: TransferNet, train_set: ImageDataset,
                     valid_set: ImageDataset | None, *, device: torch.device, autocast_dtype,
                     batch_size: int):
    """(the trainable tail, the training and validation sets as the tail's inputs), or None
    where caching would not be exact (see :func:`feature_cache_split`) or the tail does not
    end the network (checked on two images)."""
    split = feature_cache_split(module)
    if split is None:
        return None
    cut, tail = split
    size = prediction_batch_size(device, pixels=math.prod(module.input_size),
                                 batch_size=batch_size, bfloat16=autocast_dtype is not None)
    features = [None if data is None else ImageDataset(layer_inputs(
        module, cut, data, batch_size=size, device=device, autocast_dtype=autocast_dtype),
        data.y) for data in (train_set, valid_set)]
    sample = ImageDataset(train_set.X[:2], train_set.y[:2])
    expected = embed(module, sample, batch_size=2, device=device,
                     autocast_dtype=autocast_dtype)
    with eval_mode(module), torch.no_grad(), torch.autocast(
            device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        got = tail(features[0].X[:2]).float()
    if not torch.allclose(got, expected, rtol=1e-3, atol=1e-4):
        return None
    return tail, features[0], features[1]


class TransferClassifier(_TransferEstimator, CNNClassifierBase):
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
$backbone_parameters
$training_parameters

    Attributes
    ----------
$classifier_attributes
$fitted_attributes
    module_ : torch.nn.Module
        The trained network, a :class:`~sklearn_cnn.networks.TransferNet`.
    stage_names_ : list of str
        The backbone's stages, input to output, that ``freeze=k`` counts from the end.
    head_name_ : str
        Name of the replaced classifier layer in the backbone.

    See Also
    --------
    CNNClassifier : a CNN trained from scratch.
    sklearn_cnn.feature_extraction.PretrainedFeatures : the backbone's embeddings for any
        model.

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
        **CNNClassifierBase._parameter_constraints,
        **_TransferEstimator._parameter_constraints,
    }

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
        validation_fraction=None,
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
        verbose="auto",
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


_docstrings.fill(
    TransferClassifier,
    backbone_parameters=_docstrings.BACKBONE_PARAMETERS,
    training_parameters=_docstrings.training_parameters(
        optimizer="adamw", lr=0.001, max_epochs=10, task="classifier"),
    classifier_attributes=_docstrings.CLASSIFIER_ATTRIBUTES,
    fitted_attributes=_docstrings.FITTED_ATTRIBUTES,
)


class TransferRegressor(_TransferEstimator, CNNRegressorBase):
    """Fine-tune a pretrained network to predict numbers from your images (regression).

    :class:`TransferClassifier`'s backbone, freezing and fine-tuning, with one linear output
    per target in place of the classes. The targets are standardised inside ``fit`` with
    their mean and standard deviation (``target_mean_``, ``target_scale_``, saved with the
    model); ``predict`` returns them on their own scale, in the shape ``fit`` saw, and
    ``score`` is R².

    Parameters
    ----------
$backbone_parameters
$training_parameters

    Attributes
    ----------
$regressor_attributes
$fitted_attributes
    module_ : torch.nn.Module
        The trained network, a :class:`~sklearn_cnn.networks.TransferNet`.
    stage_names_ : list of str
        The backbone's stages, input to output, that ``freeze=k`` counts from the end.
    head_name_ : str
        Name of the replaced classifier layer in the backbone.

    See Also
    --------
    TransferClassifier : the same for class labels and label sets.
    CNNRegressor : a CNN regressor trained from scratch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import TransferRegressor
    >>> from sklearn_cnn.datasets import load_sample_patches
    >>> X, _ = load_sample_patches(patch_size=32, n_patches=40)
    >>> y = X.mean(axis=(1, 2, 3))                # each patch's brightness
    >>> reg = TransferRegressor(backbone="resnet18", weights=None, freeze="none",
    ...                         input_size=32, max_epochs=5, device="cpu", random_state=0)
    >>> reg.fit(X, y).predict(X[:2]).shape
    (2,)
    >>> reg.score(X, y) > 0.5
    True
    """

    _parameter_constraints: dict = {
        **CNNRegressorBase._parameter_constraints,
        **_TransferEstimator._parameter_constraints,
    }

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
        validation_fraction=None,
        patience=5,
        lr_schedule="cosine",
        loss="squared_error",
        tta=False,
        data_format="channels_last",
        image_shape=None,
        device="auto",
        precision="auto",
        compile=False,
        callbacks=None,
        random_state=None,
        verbose="auto",
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
        self.loss = loss
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


_docstrings.fill(
    TransferRegressor,
    backbone_parameters=_docstrings.BACKBONE_PARAMETERS,
    training_parameters=_docstrings.training_parameters(
        optimizer="adamw", lr=0.001, max_epochs=10, task="regressor"),
    regressor_attributes=_docstrings.REGRESSOR_ATTRIBUTES,
    fitted_attributes=_docstrings.FITTED_ATTRIBUTES,
)
