"""BaseCNNClassifier: validation, labels, device, skorch wiring, predict.

The estimators are plain scikit-learn estimators whose ``__init__`` stores flat,
grid-searchable parameters. ``fit`` validates them and the data, then builds a skorch
``NeuralNetClassifier`` around the module that the subclass builds, and trains it. The
net is kept as ``net_``; its module and history are ``module_`` and ``history_``.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import (
    _assert_all_finite,
    check_consistent_length,
    check_is_fitted,
    column_or_1d,
)
from skorch.callbacks import EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from torch import nn

from ._data import (
    BatchIterator,
    ImageDataset,
    count_batches,
    place_dataset,
    to_channels_last,
    to_compact_tensor,
    validate_input,
)
from ._training import (
    FUSED_ON_CUDA,
    OPTIMIZERS,
    WITH_MOMENTUM,
    Net,
    RecordLR,
    ShareCPUThreads,
    TrainAccuracy,
    autocast_dtype,
    make_lr_scheduler,
)
from .augmentation import PRESETS, make_augmentation
from .devices import memory_format_for, resolve_device
from .inspection import ModelSummary

# Prediction copies images up to this size to a GPU at once, larger sets batch by batch.
_PREDICT_AT_ONCE_BYTES = 64 * 2**20
# Pixels per prediction batch on a GPU (2048 images of 32×32): fewer launches per image,
# while a first layer of 32 float32 channels takes 256 MB.
_PREDICT_PIXELS = 2**21


class BaseCNNClassifier(ClassifierMixin, BaseEstimator):
    """Shared machinery of :class:`CNNClassifier` and :class:`TransferClassifier`.

    Subclasses implement ``_build_module(input_shape, n_classes)`` and may add callbacks
    (``_module_callbacks``) and optimizer parameter groups (``_param_groups``).
    """

    _parameter_constraints: dict = {
        "optimizer": [StrOptions(set(OPTIMIZERS)), type],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "augment": [None, StrOptions(set(PRESETS)), callable],
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

    # ------------------------------------------------------------------ hooks
    def _build_module(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        raise NotImplementedError

    def _check_architecture(self) -> None:
        """Checks of subclass parameters that ``_parameter_constraints`` cannot express."""

    def _module_callbacks(self) -> list:
        return []

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
        self._validate_params()
        if isinstance(self.optimizer, type) and not issubclass(self.optimizer,
                                                              torch.optim.Optimizer):
            raise TypeError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a "
                            f"torch.optim.Optimizer subclass, got {self.optimizer!r}.")
        self._check_architecture()
        keep = keep and hasattr(self, "net_")
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        images = self._validate_images(X, reset=not keep)
        y = self._check_targets(y, images)
        if keep:
            classes = self.classes_
        else:
            classes = np.unique(y if classes is None else np.asarray(classes))
            if len(classes) < 2:
                raise ValueError(f"{type(self).__name__} needs at least 2 classes to train, "
                                 f"but y has only one class: {classes[0]!r}.")
        unseen = np.setdiff1d(y, classes)
        if unseen.size:
            raise ValueError(f"y has labels {unseen.tolist()} that are not among the classes "
                             f"{classes.tolist()}; pass every class in `classes` on the first "
                             "call to partial_fit.")
        y_encoded = np.searchsorted(classes, y).astype(np.int64)
        device = self.device_ if keep else resolve_device(self.device)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))

        dataset = ImageDataset(to_compact_tensor(images), torch.from_numpy(y_encoded))
        train, valid = self._split(dataset, y_encoded, seed)
        train = place_dataset(train, device)
        if valid is not None:
            valid = place_dataset(valid, device)

        fork_devices = [device.index] if device.type == "cuda" else []
        with ShareCPUThreads.taken(device), torch.random.fork_rng(
                devices=fork_devices, device_type=device.type):
            torch.manual_seed(seed)
            if keep:
                net = self.net_
                # Each call runs its own schedule, from the initial learning rates (a cosine
                # schedule ends at 0, where the next warm-start fit would otherwise stay).
                for group in net.optimizer_.param_groups:
                    group["lr"] = group.get("initial_lr", group["lr"])
            else:
                input_shape = tuple(int(s) for s in images.shape[1:])
                net = self._make_net(input_shape, classes, device, y_encoded, len(train), seed)
            # A plain attribute: skorch's set_params re-initialises nets for prefixed keys.
            net.iterator_train__seed = seed
            net.train_split = None if valid is None else predefined_split(valid)
            try:
                net.partial_fit(train, y=None, epochs=epochs)
            finally:
                # The net is pickled with the model: keep no reference to the data.
                net.train_split = None
        if not keep:
            # Only now, together: a fit that fails leaves a fitted estimator as it was.
            self.input_shape_, self.classes_, self.device_, self.net_ = (
                input_shape, classes, device, net)
        return self

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

    def _make_net(self, input_shape, classes, device, y_encoded, n_train, seed) -> Net:
        module = self._build_module(input_shape, len(classes))
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
            criterion__weight=self._class_weights(classes, y_encoded),
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
            iterator_train__drop_single=True,
            iterator_train__memory_format=memory_format,
            iterator_valid=BatchIterator,
            iterator_valid__device=device,
            iterator_valid__memory_format=memory_format,
            train_split=None,
            callbacks=self._callbacks(device, batches_per_epoch),
            verbose=int(self.verbose),
            device=device,
            compile=self.compile,
            autocast_dtype=self._autocast_dtype(device),
            **optimizer_kwargs,
        )
        return net.initialize()

    def _callbacks(self, device: torch.device, batches_per_epoch: int) -> list:
        callbacks = [
            ("train_acc", TrainAccuracy()),
            ("lr", RecordLR()),
        ]
        if self.lr_schedule is not None:
            monitor = "valid_loss" if self.early_stopping else "train_loss"
            callbacks.append(("lr_schedule", make_lr_scheduler(
                self.lr_schedule, max_epochs=self.max_epochs,
                batches_per_epoch=batches_per_epoch, monitor=monitor)))
        if self.early_stopping:
            callbacks.append(("early_stopping", EarlyStopping(
                monitor="valid_loss", patience=self.patience, load_best=True)))
        if self.verbose:
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
        return torch.as_tensor(weights, dtype=torch.float32)

    def _network_input_pixels(self) -> int:
        """Pixels per image that the network's first layer sees (height × width)."""
        height, width, _ = self.input_shape_
        return height * width

    def _predict_batch_size(self, device: torch.device) -> int:
        """Images per prediction batch: 4 training batches, or on a GPU more, up to
        ``_PREDICT_PIXELS`` pixels a batch. Small networks on a GPU are bound by kernel
        launches, which a batch costs whatever its size."""
        size = 4 * self.batch_size
        if device.type == "cuda":
            size = max(size, _PREDICT_PIXELS // self._network_input_pixels())
        return size

    def _autocast_dtype(self, device: torch.device):
        return autocast_dtype(self.precision, device)

    # ----------------------------------------------------------- validation
    def _validate_images(self, X, *, reset: bool) -> np.ndarray:
        """Checked channels-last images; at predict, they must match the training images."""
        X = validate_input(self, X, reset=reset)
        if reset:
            return to_channels_last(X, data_format=self.data_format,
                                    image_shape=self.image_shape)
        if X.ndim == 2:  # flat rows of the right length: the training images' shape
            return X.reshape(len(X), *self.input_shape_)
        images = to_channels_last(X, data_format=self.data_format)
        if tuple(images.shape[1:]) != self.input_shape_:
            raise ValueError(
                f"X holds images of shape {tuple(images.shape[1:])} (height, width, channels), "
                f"but {type(self).__name__} was fitted on images of shape {self.input_shape_}. "
                "Resize them (ImageResizer) and convert channels (GrayscaleToRGB) as the "
                "training images were."
            )
        return images

    def _check_targets(self, y, images) -> np.ndarray:
        """``y`` as a 1-D array of class labels, one per image."""
        y = column_or_1d(y, warn=True)
        check_consistent_length(images, y)
        if y.dtype.kind == "f":
            _assert_all_finite(y, input_name="y")
        check_classification_targets(y)
        return y

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
        images = self._validate_images(X, reset=False)
        module = self.net_.module_
        device = torch.device(self.net_.device)
        # On a GPU, a few images go over at once; more are copied batch by batch, each
        # copy overlapping the work on the batch before.
        dataset = place_dataset(ImageDataset(to_compact_tensor(images)), device,
                                max_bytes=_PREDICT_AT_ONCE_BYTES)
        memory_format = memory_format_for(device)
        autocast_dtype = self._autocast_dtype(device)
        # Our own loop rather than skorch's forward_iter: inference_mode, test-time
        # augmentation and autocast, with the logits kept on the device until the end.
        batches = BatchIterator(dataset, self._predict_batch_size(device), device=device,
                                memory_format=memory_format)
        module.eval()
        logits, mirrored = [], []
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast_dtype,
                                                    enabled=autocast_dtype is not None):
            for xb, _ in batches:
                logits.append(module(xb).float())
                if self.tta:
                    mirrored.append(module(xb.flip(-1)).float())
            # One softmax for all, in float64, so that each row sums to 1 to the last bit
            # scikit-learn checks.
            proba = torch.cat(logits).double().softmax(dim=1)
            if self.tta:
                proba = (proba + torch.cat(mirrored).double().softmax(dim=1)) / 2
        return proba.cpu().numpy()

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
        """Points the fitted net, its batch iterators, precision and optimizer at ``device``,
        so that predict and a warm-start fit both run there."""
        net = self.net_
        net.device = device
        net.module_.to(device)
        net.criterion_.to(device)
        for state in net.optimizer_.state.values():
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    state[key] = value.to(device)
        if device.type != "cuda":  # older torch has fused optimizers on CUDA only
            for group in net.optimizer_.param_groups:
                group["fused"] = None
        # Plain attributes: skorch's set_params would re-initialise the net.
        net.iterator_train__device = net.iterator_valid__device = device
        net.autocast_dtype = self._autocast_dtype(device)
        self.device_ = device

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags
