"""BaseCNNClassifier: validation, labels, device, skorch wiring, predict.

The estimators are plain scikit-learn estimators whose ``__init__`` stores flat,
grid-searchable parameters. ``fit`` validates them and the data, then builds a skorch
``NeuralNetClassifier`` around the module that the subclass builds, and trains it. The
net is kept as ``net_``; its module and history are ``module_`` and ``history_``.
"""

from __future__ import annotations

import copy
import math
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback, EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from torch import nn

from ._data import (
    BatchIterator,
    ImageDataset,
    count_batches,
    decoded_or_sample,
    place_dataset,
    stored,
)
from ._training import (
    FUSED_ON_CUDA,
    OPTIMIZERS,
    WITH_MOMENTUM,
    CheckFiniteLoss,
    Net,
    RecordLR,
    ShareCPUThreads,
    TrainAccuracy,
    autocast_dtype,
    carry_optimizer_state,
    has_tiny_convolutions,
    is_terminal,
    make_lr_scheduler,
    needs_closure,
    recalibrate_batch_norm,
    training_mode_layers,
    warn_if_not_learned,
)
from ._validation import (
    check_targets,
    commit_bookkeeping,
    pixel_range,
    validate_images,
    warn_if_other_pixel_scale,
)
from .augmentation import MIXING, PRESETS, check_augment, make_augmentation, make_mixing
from .devices import memory_format_for, resolve_device
from .inspection import ModelSummary

# Prediction copies images up to this size to a GPU at once, larger sets batch by batch.
_PREDICT_AT_ONCE_BYTES = 64 * 2**20
# Pixels per prediction batch on a GPU (2048 images of 32×32): fewer launches per image,
# while a first layer of 32 float32 channels takes 256 MB.
_PREDICT_PIXELS = 2**21
# Input pixels per prediction batch on the CPU in float32 (twice as many in bfloat16).
_CPU_PREDICT_PIXELS = 2**16
# Training images that the end-of-fit check predicts in eval mode.
_CHECK_SAMPLES = 512
# Training images (a seeded random sample) whose batches recompute the batch-norm
# statistics after fit: their average is as good as one over all of them.
_RECALIBRATION_IMAGES = 1024


def _differs(value, fitted) -> bool:
    """Whether a parameter changed since the network was built (lists equal tuples)."""
    if isinstance(value, (list, tuple)) and isinstance(fitted, (list, tuple)):
        return tuple(value) != tuple(fitted)
    try:
        return bool(value != fitted)
    except (TypeError, ValueError, RuntimeError):
        return value is not fitted


class BaseCNNClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery of :class:`CNNClassifier` and :class:`TransferClassifier`.

    Subclasses implement ``_build_module(input_shape, n_classes)`` and may add callbacks
    (``_module_callbacks``), optimizer parameter groups (``_param_groups``), what the
    module learns from the training images before training (``_learn_input_statistics``)
    and name the parameters that shape the network (``_architecture_params``), which a
    warm-start fit cannot change.
    """

    _parameter_constraints: dict = {
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "augment": [None, StrOptions({*PRESETS, *MIXING}), callable, tuple, list],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left")],
        "lr_schedule": [None, StrOptions({"cosine", "onecycle", "step", "plateau"})],
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
        "tta": ["boolean"],
        "data_format": [StrOptions({"channels_last", "channels_first"})],
        "image_shape": [None, tuple, list],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "float32", "bfloat16"})],
        "compile": ["boolean"],
        "callbacks": [None, list],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
    }
    # Parameters that shape the network: a warm-start fit keeps the network, so it refuses
    # to run when one of them changed.
    _architecture_params: tuple[str, ...] = ()

    # ------------------------------------------------------------------ hooks
    def _build_module(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _check_architecture(self) -> None:
        """Checks of subclass parameters that ``_parameter_constraints`` cannot express."""

    def _module_config(self, module: nn.Module) -> dict:
        """What besides the parameters rebuilds the fitted network's architecture (saved
        by :func:`sklearn_cnn.save` next to the weights)."""
        return {}

    def _rebuild_module(self, input_shape: tuple[int, int, int], n_classes: int,
                        config: dict) -> nn.Module:
        """The fitted network's architecture, to load saved weights into (no weights are
        read or downloaded)."""
        return self._build_module(input_shape, n_classes)

    def _learn_input_statistics(self, module: nn.Module, images: np.ndarray) -> None:
        """Sets what the module's input layer normalises with, from the training images."""

    def _module_callbacks(self) -> list:
        return []

    def _training_data(self, net, train: ImageDataset, valid: ImageDataset | None):
        """What the epochs train and validate on: the images, or (a subclass's choice)
        something computed from them once."""
        return train, valid

    def _training_done(self, net) -> None:
        """Undo what ``_training_data`` set up, whether training succeeded or not."""

    def _param_groups(self, module: nn.Module) -> list:
        return []

    # -------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Train the network on images ``X`` and labels ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_pixels)
            Training images, channels-last unless ``data_format="channels_first"``.
            uint8 pixels are scaled to [0, 1]; other dtypes are used as given.
        y : array-like of shape (n_samples,)
            Class labels of any dtype (strings, integers with gaps, ...).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, epochs=self.max_epochs, keep=self.warm_start)

    def partial_fit(self, X, y, classes=None):
        """Train for one epoch, keeping the weights from earlier calls.

        Parameters
        ----------
        X : array-like of images
            As in :meth:`fit`; the image shape must not change between calls.
        y : array-like of shape (n_samples,)
            Labels, all among ``classes``.
        classes : array-like of shape (n_classes,), default=None
            Every class that any call will see; needed on the first call unless ``y``
            holds them all. Ignored on later calls.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        return self._fit(X, y, epochs=1, keep=True, classes=classes)

    def _fit(self, X, y, *, epochs, keep, classes=None):
        """The one training path of fit, warm-start fit and partial_fit.

        Everything is built aside (a new net, and for a warm start a copy of the fitted
        network) and the fitted attributes are set together at the end, only when training
        succeeded: an error or an interrupt (Ctrl-C) leaves the estimator as it was before
        the call, unfitted or with its earlier model intact.
        """
        self._check_params()
        keep = keep and hasattr(self, "net_")
        if keep:
            self._check_architecture_unchanged()
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        images, bookkeeping = self._validate_images(X, fitting=not keep)
        y = check_targets(y, images)
        if keep:
            classes = self.classes_
        else:
            given = classes is not None
            classes = np.unique(np.asarray(classes) if given else y)
            if len(classes) < 2:
                source = "classes" if given else "y"
                raise ValueError(f"{type(self).__name__} needs at least 2 classes to train, "
                                 f"but {source} has only one class: {classes[0]!r}.")
        unseen = np.setdiff1d(y, classes)
        if unseen.size:
            raise ValueError(f"y has labels {unseen.tolist()} that are not among the classes "
                             f"{classes.tolist()}; pass every class in `classes` on the first "
                             "call to partial_fit.")
        y_encoded = np.searchsorted(classes, y).astype(np.int64)
        class_weight = self._class_weights(classes, y_encoded)
        device = resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        input_shape = tuple(int(s) for s in images.shape[1:])
        images, seen = decoded_or_sample(images)
        pixels = pixel_range(seen)

        dataset = ImageDataset(stored(images), torch.from_numpy(y_encoded))
        train, valid = self._split(dataset, y_encoded, seed)
        train = place_dataset(train, device)
        if valid is not None:
            valid = place_dataset(valid, device)

        fork_devices = [device.index] if device.type == "cuda" else []
        with ShareCPUThreads.taken(device), torch.random.fork_rng(
                devices=fork_devices, device_type=device.type):
            torch.manual_seed(seed)
            if keep:
                module = copy.deepcopy(getattr(self.module_, "_orig_mod", self.module_))
            else:
                module = self._build_module(input_shape, len(classes))
                self._learn_input_statistics(module, seen)
            self._check_batch_size(module)
            net = self._make_net(module, input_shape, device, class_weight, len(train), seed,
                                 epochs, len(classes))
            if keep:
                # The next epochs continue the history and, with the same optimizer, its
                # state (Adam's moments); the hyper-parameters are this call's.
                net.history = copy.deepcopy(self.net_.history)
                if type(net.optimizer_) is type(self.net_.optimizer_):
                    # A copy: the fitted optimizer's tensors must stay as they are until
                    # this call succeeds.
                    carry_optimizer_state(net.optimizer_,
                                          copy.deepcopy(self.net_.optimizer_.state_dict()))
            train_data, valid_data = self._training_data(net, train, valid)
            net.train_split = None if valid_data is None else predefined_split(valid_data)
            try:
                net.partial_fit(train_data, y=None, epochs=epochs)
                memory_format = memory_format_for(device)
                recalibrate_batch_norm(
                    net.module_, BatchIterator(train_data, self.batch_size, device=device,
                                               shuffle=True, seed=seed, drop_single=True,
                                               memory_format=memory_format),
                    autocast_dtype=net.autocast_dtype,
                    max_batches=math.ceil(_RECALIBRATION_IMAGES / self.batch_size))
                self._warn_if_not_learned(net, train_data)
            finally:
                # The net is pickled with the model: keep no reference to the data.
                net.train_split = None
                self._training_done(net)
        # Only now, together: a fit that fails leaves a fitted estimator as it was.
        commit_bookkeeping(self, bookkeeping)
        self.input_shape_, self.pixel_range_, self.classes_, self.device_, self.net_ = (
            input_shape, pixels, classes, device, net)
        return self

    def _check_params(self) -> None:
        """Every parameter check, in one place, before any data is looked at."""
        self._validate_params()
        if isinstance(self.optimizer, type):
            if not issubclass(self.optimizer, torch.optim.Optimizer):
                raise TypeError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a "
                                f"torch.optim.Optimizer subclass, got {self.optimizer!r}.")
            if needs_closure(self.optimizer):
                raise ValueError(
                    f"optimizer={self.optimizer.__name__} needs a closure that re-evaluates the "
                    "loss at every step (a full-batch method), which mini-batch training does "
                    f"not provide. Use one of {sorted(OPTIMIZERS)} or another first-order "
                    "torch.optim optimizer.")
        for i, callback in enumerate(self.callbacks or []):
            named = isinstance(callback, tuple) and len(callback) == 2 and isinstance(
                callback[0], str)
            if not isinstance(callback[1] if named else callback, Callback):
                raise TypeError(
                    f"callbacks[{i}] is {callback!r}; callbacks must hold skorch callback "
                    "instances (e.g. skorch.callbacks.Checkpoint()) or (name, callback) tuples.")
        if isinstance(self.class_weight, dict):
            for label, weight in self.class_weight.items():
                if not isinstance(weight, Real) or not math.isfinite(weight) or weight < 0:
                    raise ValueError(
                        f"class_weight[{label!r}] is {weight!r}; class weights must be finite "
                        "numbers >= 0 (a negative weight makes the loss reward mistakes).")
        check_augment(self.augment)
        self._check_architecture()

    def _check_architecture_unchanged(self) -> None:
        """A warm-start fit keeps the fitted network: refuse when its shape should change."""
        built = self.net_.built_with_
        changed = [name for name in self._architecture_params
                   if _differs(getattr(self, name), built.get(name))]
        if changed:
            details = ", ".join(f"{name}={getattr(self, name)!r} (fitted with "
                                f"{built.get(name)!r})" for name in changed)
            raise ValueError(
                f"warm_start and partial_fit continue training the fitted network, but {details} "
                f"would need a different network. Set warm_start=False (or clone the estimator) "
                "to train a new one, or set the parameters back.")

    def _check_batch_size(self, module: nn.Module) -> None:
        if self.batch_size > 1:
            return
        if any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in training_mode_layers(module)):
            raise ValueError(
                "batch_size=1 cannot train this network: batch normalisation computes "
                "statistics over the images of a batch and needs at least 2. Use batch_size=2 "
                "or more, or a network without trainable batch normalisation (CNNClassifier("
                "batch_norm=False), or TransferClassifier(freeze='backbone').")

    def _split(self, dataset, y_encoded, seed):
        """The stratified, seeded validation split that early stopping monitors."""
        if not self.early_stopping:
            return dataset, None
        try:
            train_idx, valid_idx = train_test_split(
                np.arange(len(y_encoded)), test_size=self.validation_fraction,
                stratify=y_encoded, random_state=seed,
            )
        except ValueError as exc:
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                f"the {len(y_encoded)} training images, stratified by class, and cannot: {exc} "
                "Use more data, a larger validation_fraction, or early_stopping=False."
            ) from None
        train_idx, valid_idx = torch.from_numpy(train_idx), torch.from_numpy(valid_idx)
        return (ImageDataset(dataset.X[train_idx], dataset.y[train_idx]),
                ImageDataset(dataset.X[valid_idx], dataset.y[valid_idx]))

    def _make_net(self, module, input_shape, device, class_weight, n_train, seed,
                  epochs, n_classes) -> Net:
        """The skorch net for one fit call, around ``module``, from the current parameters."""
        memory_format = memory_format_for(device)
        module = module.to(device=device, memory_format=memory_format)

        optimizer = OPTIMIZERS.get(self.optimizer, self.optimizer)
        optimizer_kwargs = {"optimizer__weight_decay": self.weight_decay}
        if issubclass(optimizer, WITH_MOMENTUM):
            optimizer_kwargs["optimizer__momentum"] = self.momentum
        if device.type == "cuda" and optimizer in FUSED_ON_CUDA:
            # One kernel for the whole update instead of PyTorch's default multi-tensor
            # path: small networks on a GPU are bound by kernel launches.
            optimizer_kwargs["optimizer__fused"] = True
        param_groups = self._param_groups(module)
        if param_groups:
            optimizer_kwargs["optimizer__param_groups"] = param_groups

        batches_per_epoch = count_batches(n_train, self.batch_size, drop_single=True)
        net = Net(
            module=module,
            criterion=nn.CrossEntropyLoss,
            criterion__weight=class_weight,
            criterion__label_smoothing=float(self.label_smoothing),
            optimizer=optimizer,
            lr=self.lr,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train=BatchIterator,
            iterator_train__shuffle=True,
            iterator_train__device=device,
            iterator_train__seed=seed,
            iterator_train__transform=make_augmentation(self.augment, input_shape),
            iterator_train__mix=make_mixing(self.augment, n_classes),
            iterator_train__drop_single=True,
            iterator_train__memory_format=memory_format,
            iterator_valid=BatchIterator,
            iterator_valid__device=device,
            iterator_valid__memory_format=memory_format,
            train_split=None,
            callbacks=self._callbacks(device, batches_per_epoch, epochs),
            verbose=int(self.verbose),
            device=device,
            compile=self.compile,
            autocast_dtype=self._autocast_dtype(device, module, input_shape),
            **optimizer_kwargs,
        )
        net.initialize()
        net.built_with_ = {name: copy.deepcopy(getattr(self, name))
                           for name in self._architecture_params}
        return net

    def _callbacks(self, device: torch.device, batches_per_epoch: int, epochs: int) -> list:
        callbacks = [
            ("train_acc", TrainAccuracy()),
            ("lr", RecordLR()),
        ]
        if self.lr_schedule is not None:
            monitor = "valid_loss" if self.early_stopping else "train_loss"
            callbacks.append(("lr_schedule", make_lr_scheduler(
                self.lr_schedule, epochs=epochs, batches_per_epoch=batches_per_epoch,
                monitor=monitor)))
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, load_best=True)))
        callbacks.append(("check_finite_loss", CheckFiniteLoss()))
        if self.verbose and is_terminal():
            callbacks.append(("progress_bar", ProgressBar()))
        if device.type == "cpu":
            callbacks.append(("share_cpu_threads", ShareCPUThreads()))
        callbacks += self._module_callbacks()
        for i, callback in enumerate(self.callbacks or []):
            callbacks.append(callback if isinstance(callback, tuple) else (f"user_{i}", callback))
        return callbacks

    def _class_weights(self, classes, y_encoded) -> torch.Tensor | None:
        if self.class_weight is None:
            return None
        if self.class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=np.arange(len(classes)),
                                           y=y_encoded)
        else:
            unknown = set(self.class_weight) - set(classes.tolist())
            if unknown:
                raise ValueError(f"class_weight names classes that are not in y: "
                                 f"{sorted(map(str, unknown))}; the classes are "
                                 f"{classes.tolist()}.")
            weights = [self.class_weight.get(c, 1.0) for c in classes.tolist()]
            present = np.bincount(y_encoded, minlength=len(classes)) > 0
            if not np.any(np.asarray(weights)[present] > 0):
                raise ValueError(
                    f"class_weight={self.class_weight!r} gives every class in y a weight of 0: "
                    "the loss would be 0/0 (NaN) and nothing would train. Give at least one "
                    "class a positive weight.")
        return torch.as_tensor(weights, dtype=torch.float32)

    def _warn_if_not_learned(self, net: Net, train: ImageDataset) -> None:
        """Predicts (up to ``_CHECK_SAMPLES``) training images in eval mode, as predict will,
        and warns when the model learned nothing, or when eval mode disagrees with the
        accuracy that training reported. ``train`` is what the epochs trained on (images,
        or a frozen backbone's cached features, which give the same outputs)."""
        index = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))
        index = index[:_CHECK_SAMPLES]
        if not train.streams:
            index = index.to(train.X.device)
        sample = ImageDataset(train.X[index], train.y[index.to(train.y.device)])
        logits = self._logits(net, sample)
        warn_if_not_learned(type(self).__name__, logits, sample.y.to(logits.device),
                            net.history[-1].get("train_acc"), max_epochs=self.max_epochs,
                            lr=self.lr)

    def _network_input_pixels(self, module: nn.Module, image_size: tuple[int, int]) -> int:
        """Pixels per image that the network's first layer sees (height × width)."""
        return image_size[0] * image_size[1]

    def _predict_batch_size(self, device: torch.device, pixels: int,
                            bfloat16: bool = False) -> int:
        """Images per prediction batch.

        On a GPU, 4 training batches or more, up to ``_PREDICT_PIXELS`` pixels a batch: small
        networks there are bound by kernel launches, which a batch costs whatever its size.
        On the CPU, as many images as keep a batch's activations in the cache: the default
        ConvNet ran fastest at 2**17 input pixels a batch in bfloat16 (128 images of 32×32,
        2048 of 8×8; 2× faster than 256 and 128 images) and at 2**16 in float32; at least
        16 images, which suits ResNets at 224×224 (measured on 2 cores with a 2 MB L2).
        """
        if device.type == "cuda":
            return max(4 * self.batch_size, _PREDICT_PIXELS // pixels)
        budget = _CPU_PREDICT_PIXELS * (2 if bfloat16 else 1)
        return max(16, budget // pixels)

    def _autocast_dtype(self, device: torch.device, module: nn.Module | None = None,
                        input_shape: tuple | None = None):
        dtype = autocast_dtype(self.precision, device)
        if (dtype is not None and self.precision == "auto" and device.type == "cpu"
                and module is not None and has_tiny_convolutions(module, input_shape)):
            return None  # oneDNN's bfloat16 gradients are unreliable there: see the helper
        return dtype

    # ----------------------------------------------------------- validation
    def _validate_images(self, X, *, fitting: bool):
        """Checked images and the input bookkeeping (see ``_validation.validate_images``)."""
        return validate_images(self, X, fitting=fitting)

    # ----------------------------------------------------------- prediction
    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for images ``X``.

        Parameters
        ----------
        X : array-like of images
            Of the same height, width and channels as the training images.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``. With ``tta=True`` they are
            averaged with those of the left-right mirrored images.
        """
        check_is_fitted(self)
        if not (isinstance(self.batch_size, Integral) and self.batch_size >= 1
                and self.tta in (True, False)):
            # What prediction reads, broken by set_params after fit (batch_size=0): the full
            # validation says what is wrong. (Running it every time costs as much as
            # predicting one small image.)
            self._validate_params()
        images, _ = self._validate_images(X, fitting=False)
        images, seen = decoded_or_sample(images, sample=256)
        warn_if_other_pixel_scale(self, seen)
        # On a GPU, a few images go over at once; more are copied batch by batch, each
        # copy overlapping the work on the batch before.
        device = torch.device(self.net_.device)
        dataset = place_dataset(ImageDataset(stored(images)), device,
                                max_bytes=_PREDICT_AT_ONCE_BYTES)
        logits = self._logits(self.net_, dataset)
        with torch.inference_mode():
            finite = torch.isfinite(logits).all(dim=1)
            if not bool(finite.all()):
                bad = torch.nonzero(~finite).flatten().cpu().numpy()
                raise ValueError(
                    f"The network's outputs overflowed (inf or NaN) for {bad.size} of the "
                    f"{len(images)} images, e.g. at positions {bad[:5].tolist()}: their pixel "
                    f"values (from {float(images.min()):.3g} to {float(images.max()):.3g}) are "
                    "far outside what the network was trained on. Scale them as the training "
                    "images were.")
            # One softmax for all, in float64, so that each row sums to 1 to the last bit
            # scikit-learn checks.
            proba = logits.double().softmax(dim=1)
            if self.tta:
                mirrored = self._logits(self.net_, dataset, mirror=True)
                proba = (proba + mirrored.double().softmax(dim=1)) / 2
        return proba.cpu().numpy()

    def _logits(self, net: Net, dataset: ImageDataset, *, mirror: bool = False) -> torch.Tensor:
        """The network's float32 outputs for a dataset, in eval mode, on the device.

        Our own loop rather than skorch's forward_iter: inference_mode and autocast, and the
        logits kept on the device until the end.
        """
        device = torch.device(net.device)
        module = net.module_
        pixels = self._network_input_pixels(module, dataset.image_size)
        size = self._predict_batch_size(device, pixels, net.autocast_dtype is not None)
        batches = BatchIterator(dataset, size,
                                device=device, memory_format=memory_format_for(device))
        module.eval()
        dtype = net.autocast_dtype
        outputs = []
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            for xb, _ in batches:
                outputs.append(module(xb.flip(-1) if mirror else xb).float())
        return torch.cat(outputs)

    def predict(self, X) -> np.ndarray:
        """Predicted class labels for images ``X``.

        Parameters
        ----------
        X : array-like of images
            Of the same height, width and channels as the training images.

        Returns
        -------
        ndarray of shape (n_samples,)
            Labels from ``classes_``.
        """
        check_is_fitted(self)
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # ------------------------------------------------------------ diagnostics
    def summary(self, input_shape=None, n_classes=None) -> ModelSummary:
        """A table of the network's layers, output shapes and parameter counts.

        Works after ``fit`` (for the fitted input shape) and before it, given an input shape:
        the way to debug shapes before training.

        Parameters
        ----------
        input_shape : tuple of int, default=None
            (height, width, channels) of the images; defaults to ``input_shape_``.
        n_classes : int, default=None
            Outputs; defaults to ``len(classes_)``, or 2 before fit.

        Returns
        -------
        ModelSummary
            A string (printed as the table) with ``total_params`` and ``trainable_params``.
        """
        fitted = hasattr(self, "net_")
        if input_shape is None and not fitted:
            raise ValueError("Pass input_shape=(height, width, channels) to summarise a network "
                             "before fit.")
        if fitted and input_shape in (None, self.input_shape_) and n_classes in (
                None, len(self.classes_)):
            module, input_shape = self.module_, self.input_shape_
        else:
            self._validate_params()
            self._check_architecture()
            input_shape = tuple(int(s) for s in input_shape)
            if len(input_shape) != 3:
                raise ValueError(f"input_shape must be (height, width, channels), got "
                                 f"{input_shape!r}.")
            with torch.random.fork_rng(devices=[]):
                module = self._build_module(input_shape, int(n_classes or 2))
        return ModelSummary.of(module, input_shape, title=type(self).__name__)

    # ------------------------------------------------------------ fitted views
    @property
    def module_(self) -> nn.Module:
        """The trained ``torch.nn.Module``."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    @property
    def history_(self):
        """skorch's per-epoch history: train/valid loss and accuracy, lr, duration."""
        check_is_fitted(self, "net_")
        return self.net_.history

    def __setstate__(self, state):
        super().__setstate__(state)
        if "net_" in state:
            # skorch maps CUDA tensors to the CPU when a model saved on a GPU is loaded on a
            # machine without one; keep the rest in step with where the net now lives.
            device = torch.device(self.net_.device)
            if device.type != self.device_.type:
                self._move_fitted_net(device)

    def _move_fitted_net(self, device: torch.device) -> None:
        """Points the fitted net and its precision at ``device``, so that predict runs there.
        (A warm-start fit builds a new net on its own device; a pickle keeps no optimizer
        state to move.)"""
        net = self.net_
        net.device = device
        net.module_.to(device)
        net.criterion_.to(device)
        net.autocast_dtype = self._autocast_dtype(device, net.module_, self.input_shape_)
        self.device_ = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
