"""The estimator: parameters, fit (validate → build → train → commit), predict, tags.

The estimators are plain scikit-learn estimators whose ``__init__`` stores flat,
grid-searchable parameters. ``fit`` validates them and the data, builds the network (the
subclass's ``_build_module``) and a skorch net around it (``_training.build_net``), trains,
and only then sets the fitted attributes, together. What differs between classification
and regression is a task object (``_tasks.py``); what differs between a CNN from scratch
and a pretrained backbone is the subclass.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback
from torch import nn

from . import distributed
from ._data import (
    PREDICT_AT_ONCE_BYTES,
    BatchIterator,
    ImageDataset,
    pixel_range,
    place_dataset,
    prediction_batch_size,
)
from ._training import (
    OPTIMIZERS,
    Net,
    autocast_dtype,
    batches_per_epoch,
    build_net,
    continue_from,
    load_optimizer_state,
    needs_closure,
    train,
    training_callbacks,
    trains_batch_norm,
)
from ._validation import (
    commit_bookkeeping,
    other_pixel_scale,
    seed_of,
    validate_images,
    warn_if_other_pixel_scale,
)
from .augmentation import MIXING, PRESETS, check_augment, make_augmentation, make_mixing
from .callbacks import ShareCPUThreads
from .devices import memory_format_for, resolve_device
from .files import decoded_or_sample, stored
from .networks import ModelSummary, network_input_size, uncompiled

# Training images that the end-of-fit check predicts in eval mode.
_CHECK_SAMPLES = 512


def _differs(value, fitted) -> bool:
    """Whether a parameter changed since the network was built (lists equal tuples)."""
    if isinstance(value, (list, tuple)) and isinstance(fitted, (list, tuple)):
        return tuple(value) != tuple(fitted)
    try:
        return bool(value != fitted)
    except (TypeError, ValueError, RuntimeError):
        return value is not fitted


class BaseCNNEstimator(BaseEstimator):
    """What every sklearn-cnn estimator shares: the training parameters, fit, predict.

    A subclass builds the network (``_build_module``) and may check its own parameters
    (``_check_architecture``), add callbacks and optimizer parameter groups
    (``_training_extras``), say what rebuilds its network from a file
    (``_module_config``), and train on something computed from the images
    (``_training_inputs``). ``_architecture_params`` names the parameters that shape the
    network, which a warm-start fit cannot change. A task mixin (classifier, regressor)
    supplies the task.
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
        "tta": ["boolean"],
        "data_format": [StrOptions({"channels_last", "channels_first"})],
        "image_shape": [None, tuple, list],
        "device": [str, torch.device],
        "precision": [StrOptions({"auto", "float32", "bfloat16"})],
        "compile": ["boolean"],
        "callbacks": [None, list],
        "random_state": ["random_state"],
        "verbose": [StrOptions({"auto"}), "verbose"],
        "warm_start": ["boolean"],
    }
    _architecture_params: tuple[str, ...] = ()

    # ------------------------------------------------------------------ hooks
    def _build_module(self, input_shape: tuple[int, int, int], n_outputs: int, *,
                      images: np.ndarray | None = None, config: dict | None = None
                      ) -> nn.Module:
        """The network for images of ``input_shape`` and ``n_outputs`` outputs. With
        ``images``, it learns from them what its input layer normalises with; with
        ``config`` (from ``_module_config``), only the architecture is built, to load saved
        weights into (nothing is read or downloaded)."""
        raise NotImplementedError

    def _module_config(self, module: nn.Module) -> dict:
        """What besides the parameters rebuilds the fitted network's architecture."""
        return {}

    def _check_architecture(self) -> None:
        """Checks of subclass parameters that ``_parameter_constraints`` cannot express."""

    def _training_extras(self, module: nn.Module) -> tuple[list, list]:
        """(named skorch callbacks, optimizer parameter groups) the subclass adds."""
        return [], []

    @contextmanager
    def _training_inputs(self, net: Net, train_set: ImageDataset,
                         valid_set: ImageDataset | None):
        """What the epochs train and validate on: the images, or (a subclass's choice)
        something computed from them once; set up for the ``with`` block and undone after
        it, whether training succeeded or not."""
        yield train_set, valid_set

    def _new_task(self, y, n_images: int, classes=None):
        raise NotImplementedError

    def _fitted_task(self):
        raise NotImplementedError

    # -------------------------------------------------------------- fitting
    def fit(self, X, y):
        """Train the network on images ``X`` and targets ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, height, width[, channels]) or (n_samples, n_pixels)
            Training images, channels-last unless ``data_format="channels_first"``, or a
            lazy collection of image files. uint8 pixels are scaled to [0, 1]; other dtypes
            are used as given.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Class labels of any dtype (classifiers), or target values (regressors).

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, epochs=self.max_epochs, warm=self.warm_start)

    def _fit(self, X, y, *, epochs: int, warm: bool, classes=None):
        """The one training path of fit, warm-start fit and partial_fit.

        Everything is built aside (a new net, and for a warm start a copy of the fitted
        network) and the fitted attributes are set together at the end, only when training
        succeeded: an error or an interrupt (Ctrl-C) leaves the estimator as it was before
        the call, unfitted or with its earlier model intact.
        """
        self._check_params()
        warm = warm and hasattr(self, "net_")
        if warm:
            self._check_architecture_unchanged()
        device = self._training_device(warm)
        parallel = distributed.context(device)
        fork_devices = [device.index] if device.type == "cuda" else []
        with ShareCPUThreads.taken(device), torch.random.fork_rng(
                devices=fork_devices, device_type=device.type):
            # In a data-parallel fit every process prepares, then all agree: one process's
            # bad input fails them all with its error, instead of leaving them waiting.
            error = None
            try:
                fit = self._prepare(X, y, warm=warm, classes=classes, device=device,
                                    epochs=epochs, parallel=parallel)
            except (ValueError, TypeError) as exc:
                error = exc
            if parallel is not None:
                parallel.agree(error)
                parallel.broadcast_module(fit.net.module_)
            if error is not None:
                raise error
            net = fit.net
            with self._training_inputs(net, fit.train_set, fit.valid_set) as (train_data,
                                                                              valid_data):
                train(net, train_data, valid_data, epochs=epochs, seed=fit.seed)
                self._check_learned(net, fit.task, train_data)
        # Only now, together: a fit that fails leaves a fitted estimator as it was.
        commit_bookkeeping(self, fit.bookkeeping)
        for name, value in fit.task.fitted_attributes().items():
            setattr(self, name, value)
        self.input_shape_, self.pixel_range_, self.net_ = fit.input_shape, fit.pixels, net
        return self

    def _prepare(self, X, y, *, warm: bool, classes, device: torch.device, epochs: int,
                 parallel) -> SimpleNamespace:
        """Everything a fit checks and builds before training: the validated images and
        targets, the task, the splits, the seeded network and the net around it."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        images, bookkeeping = validate_images(self, X, fitting=not warm)
        task = self._fitted_task() if warm else self._new_task(y, len(images), classes)
        targets = task.encode(y, len(images))
        seed = seed_of(self.random_state)
        input_shape = tuple(int(s) for s in images.shape[1:])
        # In a data-parallel fit, image files stream: each process decodes only its share.
        images, seen = decoded_or_sample(images, stream=parallel is not None)
        pixels = pixel_range(seen)
        if warm:
            self._check_pixel_scale(seen, pixels)
        dataset = ImageDataset(stored(images), torch.from_numpy(targets))
        train_set, valid_set = self._split(dataset, targets if task.stratify else None, seed)
        train_set = place_dataset(train_set, device)
        if valid_set is not None:
            valid_set = place_dataset(valid_set, device)
        torch.manual_seed(seed)
        if warm:
            module = copy.deepcopy(self.module_)
        else:
            module = self._build_module(input_shape, task.n_outputs, images=seen)
        self._check_batch_size(module, len(train_set))
        net = self._new_net(module, task=task, targets=targets, input_shape=input_shape,
                            device=device, seed=seed, epochs=epochs, n_train=len(train_set),
                            parallel=parallel)
        if warm:
            continue_from(net, self.net_)
        return SimpleNamespace(net=net, task=task, seed=seed, train_set=train_set,
                               valid_set=valid_set, bookkeeping=bookkeeping,
                               input_shape=input_shape, pixels=pixels)

    def _check_pixel_scale(self, images, pixels: tuple[float, float]) -> None:
        """A warm start on images scaled far beyond the first fit's (0..255 floats after
        uint8, whose network sees 0..1) would train on inputs the network never saw and
        lose what it knew: refused. Images spanning much less than before (a dark batch,
        or 0..1 floats after 0..255 floats) get the warning predict gives."""
        problem = other_pixel_scale(self, images, pixels)
        if problem is None:
            return
        low, high = pixels
        train_low, train_high = self.pixel_range_
        if (high - low) > (train_high - train_low):
            raise ValueError(
                f"{problem}. A warm-start fit (or partial_fit) continues that network, which "
                "would see inputs it never saw and learn anew from them, silently losing what "
                "it knew. Scale X as the first fit's images were (uint8 for uint8, or the same "
                "PixelScaler), or set warm_start=False (or clone the estimator) to train a new "
                "network.")
        warn_if_other_pixel_scale(self, images)

    def _training_device(self, warm: bool) -> torch.device:
        """``device`` resolved; for a warm start of a model unpickled onto another machine,
        an error that says how to continue where the model now is."""
        try:
            return distributed.local_device(resolve_device(self.device))
        except ValueError as exc:
            if not warm:
                raise
            raise ValueError(f"{exc} This model was fitted on device={self.device!r} and now "
                             f"sits on {self.device_}; to continue training it here, "
                             f"set_params(device={str(self.device_)!r}) first.") from None

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

    def _check_batch_size(self, module: nn.Module, n_train: int) -> None:
        if n_train == 1 and trains_batch_norm(module):
            raise ValueError(
                "fit got 1 sample to train on (after any validation split): batch "
                "normalisation computes statistics over the images of a batch and needs at "
                "least 2. Pass more images, or a network without trainable batch "
                "normalisation (CNNClassifier(batch_norm=False), or freeze='backbone').")
        if self.batch_size == 1 and trains_batch_norm(module):
            raise ValueError(
                "batch_size=1 cannot train this network: batch normalisation computes "
                "statistics over the images of a batch and needs at least 2. Use batch_size=2 "
                "or more, or a network without trainable batch normalisation (CNNClassifier("
                "batch_norm=False), or TransferClassifier(freeze='backbone').")

    def _split(self, dataset: ImageDataset, stratify, seed: int):
        """The seeded validation split that early stopping monitors (stratified by class
        for classifiers)."""
        if not self.early_stopping:
            return dataset, None
        n = len(dataset)
        try:
            train_idx, valid_idx = train_test_split(
                np.arange(n), test_size=self.validation_fraction, stratify=stratify,
                random_state=seed)
        except ValueError as exc:
            how = ", stratified by class," if stratify is not None else ""
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                f"the {n} training images{how} and cannot: {exc} Use more data, a larger "
                "validation_fraction, or early_stopping=False."
            ) from None
        train_idx, valid_idx = torch.from_numpy(train_idx), torch.from_numpy(valid_idx)
        return (ImageDataset(dataset.X[train_idx], dataset.y[train_idx]),
                ImageDataset(dataset.X[valid_idx], dataset.y[valid_idx]))

    def _new_net(self, module: nn.Module, *, task, targets: np.ndarray | None,
                 input_shape: tuple, device: torch.device, seed: int, epochs: int,
                 n_train: int, parallel=None) -> Net:
        """The skorch net for one fit call, around ``module``, from the current parameters."""
        extra_callbacks, param_groups = self._training_extras(module)
        criterion, criterion_params = task.criterion(self, targets)
        callbacks = training_callbacks(
            metrics=task.metrics(), lr_schedule=self.lr_schedule,
            early_stopping=self.early_stopping, patience=self.patience, epochs=epochs,
            batches_per_epoch=batches_per_epoch(n_train, self.batch_size, parallel),
            device=device,
            verbose=self.verbose, seeded=isinstance(self.random_state, Integral),
            description=type(self).__name__, extra=extra_callbacks, user=self.callbacks)
        net = build_net(
            module=module, criterion=criterion, criterion_params=criterion_params,
            optimizer=self.optimizer, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, param_groups=param_groups,
            batch_size=self.batch_size, max_epochs=self.max_epochs, device=device, seed=seed,
            transform=make_augmentation(self.augment, input_shape),
            mix=make_mixing(self.augment, task.n_outputs), callbacks=callbacks,
            verbose=self.verbose, compile=self.compile,
            autocast=autocast_dtype(self.precision, device, module=module,
                                    input_shape=input_shape), distributed=parallel)
        net.built_with_ = {name: copy.deepcopy(getattr(self, name))
                           for name in self._architecture_params}
        return net

    def _check_learned(self, net: Net, task, train_data: ImageDataset) -> None:
        """Predicts (up to ``_CHECK_SAMPLES``) training images in eval mode, as predict will,
        and lets the task warn when the model learned nothing, or when eval mode disagrees
        with what training reported. ``train_data`` is what the epochs trained on (images,
        or a frozen backbone's cached features, which give the same outputs)."""
        index = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(0))
        index = index[:_CHECK_SAMPLES]
        if not train_data.streams:
            index = index.to(train_data.X.device)
        sample = ImageDataset(train_data.X[index], train_data.y[index.to(train_data.y.device)])
        outputs = self._network_outputs(net, sample)
        task.check_learned(type(self).__name__, outputs, sample.y.to(outputs.device),
                           net.history[-1].get(f"train_{task.metric}"),
                           max_epochs=self.max_epochs, lr=self.lr)

    # ----------------------------------------------------------- prediction
    def _scores(self, X) -> np.ndarray:
        """The task's scores for images ``X`` (class probabilities, or target values),
        averaged with those of the mirrored images when ``tta``."""
        check_is_fitted(self)
        if not (isinstance(self.batch_size, Integral) and self.batch_size >= 1
                and self.tta in (True, False)):
            # What prediction reads, broken by set_params after fit (batch_size=0): the full
            # validation says what is wrong. (Running it every time costs as much as
            # predicting one small image.)
            self._validate_params()
        images, _ = validate_images(self, X, fitting=False)
        images, seen = decoded_or_sample(images, sample=256)
        warn_if_other_pixel_scale(self, seen)
        # On a GPU, a few images go over at once; more are copied batch by batch, each
        # copy overlapping the work on the batch before.
        device = torch.device(self.net_.device)
        dataset = place_dataset(ImageDataset(stored(images)), device,
                                max_bytes=PREDICT_AT_ONCE_BYTES)
        task = self._fitted_task()
        outputs = self._network_outputs(self.net_, dataset)
        with torch.inference_mode():
            finite = torch.isfinite(outputs).all(dim=1)
            if not bool(finite.all()):
                bad = torch.nonzero(~finite).flatten().cpu().numpy()
                raise ValueError(
                    f"The network's outputs overflowed (inf or NaN) for {bad.size} of the "
                    f"{len(images)} images, e.g. at positions {bad[:5].tolist()}: their pixel "
                    f"values (from {float(images.min()):.3g} to {float(images.max()):.3g}) are "
                    "far outside what the network was trained on. Scale them as the training "
                    "images were.")
            scores = task.scores(outputs)
            if self.tta:
                mirrored = self._network_outputs(self.net_, dataset, mirror=True)
                scores = (scores + task.scores(mirrored)) / 2
        return scores.cpu().numpy()

    def _network_outputs(self, net: Net, dataset: ImageDataset, *,
                         mirror: bool = False) -> torch.Tensor:
        """The network's float32 outputs for a dataset, in eval mode, on the device.

        Our own loop rather than skorch's forward_iter: inference_mode and autocast, and the
        outputs kept on the device until the end.
        """
        device = torch.device(net.device)
        # With compile=True, prediction runs the module itself: each inference batch size,
        # grad mode and dtype would otherwise compile the network anew, until torch.compile
        # reaches its recompile limit and silently runs the training steps eagerly too.
        module = uncompiled(net.module_)
        size = prediction_batch_size(
            device, pixels=math.prod(network_input_size(module, dataset.image_size)),
            batch_size=self.batch_size, bfloat16=net.autocast_dtype is not None)
        batches = BatchIterator(dataset, size, device=device,
                                memory_format=memory_format_for(device))
        module.eval()
        dtype = net.autocast_dtype
        outputs = []
        with torch.inference_mode(), torch.autocast(device.type, dtype=dtype,
                                                    enabled=dtype is not None):
            for xb, _ in batches:
                outputs.append(module(xb.flip(-1) if mirror else xb).float())
        return torch.cat(outputs)

    # ------------------------------------------------------------ diagnostics
    def summary(self, input_shape=None, n_outputs=None) -> ModelSummary:
        """A table of the network's layers, output shapes and parameter counts.

        Works after ``fit`` (for the fitted input shape) and before it, given an input shape:
        the way to debug shapes before training.

        Parameters
        ----------
        input_shape : tuple of int, default=None
            (height, width, channels) of the images; defaults to ``input_shape_``.
        n_outputs : int, default=None
            Outputs of the network (classes, labels or targets); defaults to the fitted
            number, or 2 before fit.

        Returns
        -------
        ModelSummary
            A string (printed as the table) with ``total_params`` and ``trainable_params``.
        """
        fitted = hasattr(self, "net_")
        if n_outputs is not None and (not isinstance(n_outputs, Integral) or n_outputs < 1):
            raise ValueError(f"n_outputs must be a positive int (the classes, labels or "
                             f"targets the network outputs), got {n_outputs!r}.")
        if input_shape is None and not fitted:
            raise ValueError("Pass input_shape=(height, width, channels) to summarise a network "
                             "before fit.")
        if fitted and input_shape in (None, self.input_shape_) and n_outputs in (
                None, self._fitted_task().n_outputs):
            module, input_shape = self.module_, self.input_shape_
        else:
            self._validate_params()
            self._check_architecture()
            input_shape = tuple(int(s) for s in input_shape)
            if len(input_shape) != 3 or min(input_shape) < 1:
                raise ValueError(f"input_shape must be (height, width, channels) of positive "
                                 f"ints, got {input_shape!r}.")
            with torch.random.fork_rng(devices=[]):
                module = self._build_module(input_shape, 2 if n_outputs is None else n_outputs)
        return ModelSummary.of(module, input_shape, title=type(self).__name__)

    # ------------------------------------------------------------ fitted views
    @property
    def module_(self) -> nn.Module:
        """The trained ``torch.nn.Module`` (the module itself also with ``compile=True``)."""
        check_is_fitted(self, "net_")
        return uncompiled(self.net_.module_)

    @property
    def history_(self):
        """skorch's per-epoch history: train/valid loss and metric, lr, duration."""
        check_is_fitted(self, "net_")
        return self.net_.history

    @property
    def device_(self) -> torch.device:
        """The device the network predicts on (and a warm-start fit trains on)."""
        check_is_fitted(self, "net_")
        return torch.device(self.net_.device)

    def __setstate__(self, state):
        super().__setstate__(state)
        if "net_" in state:
            # skorch maps CUDA tensors to the CPU when a model saved on a GPU is loaded on a
            # machine without one; the precision follows the device the net now lives on.
            net = self.net_
            net.criterion_.to(net.device)
            net.autocast_dtype = autocast_dtype(self.precision, torch.device(net.device),
                                                module=self.module_,
                                                input_shape=self.input_shape_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        return tags


# ---------------------------------------------------------------- files and back
def network_config(estimator: BaseCNNEstimator) -> dict:
    """What besides its parameters rebuilds a fitted estimator's network architecture
    (written by :func:`sklearn_cnn.save` next to the weights)."""
    return estimator._module_config(estimator.module_)


def restore(estimator: BaseCNNEstimator, *, fitted: dict, config: dict, state_dict: dict,
            history: list, optimizer_state: dict | None, device: torch.device
            ) -> BaseCNNEstimator:
    """A fitted estimator from what :func:`sklearn_cnn.save` wrote: its fitted attributes,
    the network's config and weights, the training history and, optionally, the optimizer
    state (``torch.optim.Optimizer.state_dict``'s, with the optimizer's ``"class"`` name:
    loaded into an optimizer of that class only). Nothing is downloaded: the architecture
    is rebuilt and the weights loaded."""
    from skorch.history import History

    for name, value in fitted.items():
        setattr(estimator, name, value)
    input_shape = tuple(fitted["input_shape_"])
    estimator.input_shape_ = input_shape
    task = estimator._fitted_task()
    with torch.random.fork_rng(devices=[]):
        module = estimator._build_module(input_shape, task.n_outputs, config=config)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"the weights do not fit the network: {exc}") from None
    net = estimator._new_net(module, task=task, targets=None, input_shape=input_shape,
                             device=device, seed=0, epochs=estimator.max_epochs, n_train=1)
    net.history = History(history)
    if optimizer_state is not None and optimizer_state["class"] == type(
            net.optimizer_).__name__:
        load_optimizer_state(net.optimizer_, optimizer_state)
    estimator.net_ = net
    return estimator
