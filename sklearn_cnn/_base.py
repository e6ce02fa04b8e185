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
from contextlib import contextmanager
from numbers import Integral, Real
from types import SimpleNamespace

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from . import distributed
from ._data import (
    ImageDataset,
    pixel_range,
    place_dataset,
    split_dataset,
)
from ._prediction import PredictionMixin
from ._tasks import EVAL_GAP_FIX
from ._training import (
    OPTIMIZERS,
    Net,
    batches_per_epoch,
    build_net,
    check_architecture_unchanged,
    check_batch_norm_batches,
    check_training_params,
    continue_from,
    load_optimizer_state,
    train,
    training_callbacks,
)
from ._validation import (
    check_warm_start_pixel_scale,
    commit_bookkeeping,
    seed_of,
    validate_images,
    warn_if_other_pixel_scale,
)
from .augmentation import MIXING, PRESETS, check_augment, make_augmentation, make_mixing
from .callbacks import ShareCPUThreads
from .devices import autocast_dtype, resolve_device
from .files import decoded_or_sample, stored

# Training images that the end-of-fit check predicts in eval mode.
_CHECK_SAMPLES = 512


class BaseCNNEstimator(PredictionMixin, BaseEstimator):
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
        "validation_fraction": [None, Interval(Real, 0, 1, closed="neither")],
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
    # What the samples are called in messages.
    _samples = "images"
    _eval_gap_fix = EVAL_GAP_FIX  # what the warning of an eval-mode gap advises

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

    # The input hooks: images here (arrays, lists, image files); an estimator of another
    # kind of input (time series) overrides these three and ``_augmentation``.
    def _validate_inputs(self, X, *, fitting: bool):
        """(validated X with a ``shape`` whose first axis counts the samples, scikit-learn's
        input bookkeeping to commit after training)."""
        return validate_images(self, X, fitting=fitting)

    def _load_inputs(self, X, *, warm: bool, stream: bool):
        """(what the training dataset stores, an array to learn the network's input
        statistics from, the fitted attributes that describe the inputs) of validated X."""
        images, seen = decoded_or_sample(X, stream=stream)
        pixels = pixel_range(seen)
        if warm:
            check_warm_start_pixel_scale(self, seen, pixels)
        return stored(images), seen, {"pixel_range_": pixels}

    def _prediction_inputs(self, X):
        """What the dataset stores for samples ``X`` to predict (after the checks)."""
        images, _ = validate_images(self, X, fitting=False)
        images, seen = decoded_or_sample(images, sample=256)
        warn_if_other_pixel_scale(self, seen)
        return stored(images)

    def _augmentation(self, input_shape: tuple, n_outputs: int):
        """(per-batch augmentation, label mixing) of training batches, from ``augment``."""
        return (make_augmentation(self.augment, input_shape),
                make_mixing(self.augment, n_outputs))

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
            check_architecture_unchanged(self.net_.built_with_, {
                name: getattr(self, name) for name in self._architecture_params})
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
        for name, value in fit.input_attributes.items():
            setattr(self, name, value)
        self.input_shape_, self.net_ = fit.input_shape, net
        return self

    def _prepare(self, X, y, *, warm: bool, classes, device: torch.device, epochs: int,
                 parallel) -> SimpleNamespace:
        """Everything a fit checks and builds before training: the validated images and
        targets, the task, the splits, the seeded network and the net around it."""
        if y is None:
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target y "
                             "is None.")
        inputs, bookkeeping = self._validate_inputs(X, fitting=not warm)
        task = self._fitted_task() if warm else self._new_task(y, len(inputs), classes)
        targets = task.encode(y, len(inputs))
        seed = seed_of(self.random_state)
        input_shape = tuple(int(s) for s in inputs.shape[1:])
        # In a data-parallel fit, image files stream: each process decodes only its share.
        data, seen, input_attributes = self._load_inputs(inputs, warm=warm,
                                                         stream=parallel is not None)
        dataset = ImageDataset(data, torch.from_numpy(targets))
        train_set, valid_set = split_dataset(
            dataset, fraction=self._validation_share(), stratify=task.stratify, seed=seed,
            why="early_stopping" if self.early_stopping else "validation_fraction")
        train_set = place_dataset(train_set, device)
        if valid_set is not None:
            valid_set = place_dataset(valid_set, device)
        torch.manual_seed(seed)
        if warm:
            module = copy.deepcopy(self.module_)
        else:
            module = self._build_module(input_shape, task.n_outputs, images=seen)
        check_batch_norm_batches(module, n_train=len(train_set), batch_size=self.batch_size)
        net = self._new_net(module, task=task, targets=targets, input_shape=input_shape,
                            device=device, seed=seed, epochs=epochs, n_train=len(train_set),
                            parallel=parallel)
        if warm:
            continue_from(net, self.net_)
        return SimpleNamespace(net=net, task=task, seed=seed, train_set=train_set,
                               valid_set=valid_set, bookkeeping=bookkeeping,
                               input_shape=input_shape, input_attributes=input_attributes)

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
        check_training_params(optimizer=self.optimizer, callbacks=self.callbacks)
        self._check_augment()
        self._check_architecture()

    def _validation_share(self) -> float | None:
        """The share of the training data held out and scored every epoch: the
        ``validation_fraction`` given, or 0.1 for early stopping, or None (no split)."""
        if self.validation_fraction is None and self.early_stopping:
            return 0.1
        return self.validation_fraction

    def _check_augment(self) -> None:
        """What ``augment`` may be beyond ``_parameter_constraints`` (the images' presets)."""
        check_augment(self.augment)

    def _new_net(self, module: nn.Module, *, task, targets: np.ndarray | None,
                 input_shape: tuple, device: torch.device, seed: int, epochs: int,
                 n_train: int, parallel=None) -> Net:
        """The skorch net for one fit call, around ``module``, from the current parameters."""
        extra_callbacks, param_groups = self._training_extras(module)
        criterion, criterion_params = task.criterion(self, targets)
        transform, mix = self._augmentation(input_shape, task.n_outputs)
        callbacks = training_callbacks(
            metrics=task.metrics(), lr_schedule=self.lr_schedule,
            early_stopping=self.early_stopping, patience=self.patience, epochs=epochs,
            validation=self._validation_share() is not None,
            batches_per_epoch=batches_per_epoch(n_train, self.batch_size, parallel),
            device=device,
            verbose=self.verbose, seeded=isinstance(self.random_state, Integral),
            description=type(self).__name__, extra=extra_callbacks, user=self.callbacks)
        net = build_net(
            module=module, criterion=criterion, criterion_params=criterion_params,
            optimizer=self.optimizer, lr=self.lr, momentum=self.momentum,
            weight_decay=self.weight_decay, param_groups=param_groups,
            batch_size=self.batch_size, max_epochs=self.max_epochs, device=device, seed=seed,
            transform=transform, mix=mix, callbacks=callbacks,
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
                           max_epochs=self.max_epochs, lr=self.lr, samples=self._samples,
                           gap_fix=self._eval_gap_fix)

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
