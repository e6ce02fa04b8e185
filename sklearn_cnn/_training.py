"""The skorch side of training: the optimizer registry, the ``NeuralNet`` subclass that runs
the epochs, :func:`build_net`, the user's interrupts, and batch-norm recalibration after the
last epoch. (The precision a fit trains in is chosen in ``devices.py``.)

The estimators (``_base.py``) decide what to train; this module is how it is trained.
"""

from __future__ import annotations

import copy
import inspect
import math
import signal
import threading

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, ProgressBar
from skorch.helper import predefined_split
from torch import nn

from ._data import BatchIterator, count_batches
from .callbacks import (
    CheckFiniteLoss,
    EpochProgress,
    RecordLR,
    ShareCPUThreads,
    TerminalPrintLog,
    interactive,
    is_terminal,
    make_lr_scheduler,
)
from .devices import memory_format_for
from .networks import uncompiled

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}
WITH_MOMENTUM = (torch.optim.SGD, torch.optim.RMSprop)
# Optimizers with a single-kernel CUDA implementation in this torch (SGD gained it in 2.3).
FUSED_ON_CUDA = tuple(o for o in OPTIMIZERS.values()
                      if "fused" in inspect.signature(o).parameters)
# Training images (a seeded random sample) whose batches recompute the batch-norm
# statistics after fit: their average is as good as one over all of them.
_RECALIBRATION_IMAGES = 1024


def needs_closure(optimizer: type) -> bool:
    """Whether ``optimizer.step`` requires a closure (LBFGS), which skorch's loop never passes."""
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


# ----------------------------------------------------------------------- interrupts
class _Interrupted(Exception):
    """Carries a user's KeyboardInterrupt past skorch's ``partial_fit``, which swallows it."""


class UserInterrupts:
    """Tells the user's Ctrl-C apart from skorch's way of stopping a fit.

    skorch callbacks (``EarlyStopping`` among them) stop training by raising
    ``KeyboardInterrupt``, and skorch's ``partial_fit`` swallows every KeyboardInterrupt, a
    real Ctrl-C included. While a fit runs in the main thread, this context wraps the SIGINT
    handler to record that the signal came; only such an interrupt stops the fit for good.
    In other threads SIGINT never arrives (Python delivers it to the main thread).
    """

    def __init__(self):
        self.seen = False
        self._previous = None

    def __enter__(self) -> UserInterrupts:
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if callable(previous):
                self._previous = previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.seen = True
        self._previous(signum, frame)

    def __exit__(self, *exc_info):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None


# ------------------------------------------------------------------------------ Net
class Net(NeuralNet):
    """skorch's net with autocast around the forward pass, train/eval mode set once per
    epoch, device-side loss records on accelerators, lean pickles, and interrupts that
    stop the fit. The task (classification or regression) is the estimator's business:
    the net gets its criterion and metric callbacks."""

    def __init__(self, *args, autocast_dtype=None, distributed=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype
        self.distributed = distributed

    @property
    def _default_callbacks(self):
        # skorch's epoch table, without colour codes outside a terminal; none when nothing
        # prints it (verbose=0): skorch formats it every epoch all the same.
        return [(name, TerminalPrintLog() if name == "print_log" else callback)
                for name, callback in super()._default_callbacks
                if name != "print_log" or self.verbose]

    def initialize(self):
        super().initialize()
        # skorch pickles module_, optimizer_ and criterion_ through torch, so that a net
        # saved on a GPU loads on a machine without one. The module we passed in (the same
        # object as module_) and the callbacks (the LR scheduler holds the optimizer) were
        # pickled a second time outside that: twice the size, and unloadable without CUDA.
        # In one pickle with the rest, each tensor is written once and mapped to the CPU.
        self.cuda_dependent_attributes_ = [
            *self.cuda_dependent_attributes_,
            *(p for p in ("module", "callbacks") if p not in self.cuda_dependent_attributes_),
        ]
        return self

    # skorch's partial_fit catches KeyboardInterrupt and returns normally, so that a notebook
    # keeps its half-trained net. A scikit-learn estimator must let the user's Ctrl-C through:
    # a script or a GridSearchCV stops, and the estimator keeps its earlier state (see
    # BaseCNNEstimator._fit). Callbacks that stop training the skorch way still do.
    def fit_loop(self, X, y=None, **fit_params):
        try:
            return super().fit_loop(X, y, **fit_params)
        except KeyboardInterrupt as exc:
            interrupts = getattr(self, "_user_interrupts", None)
            if interrupts is not None and interrupts.seen:
                raise _Interrupted() from exc
            raise

    def partial_fit(self, X, y=None, classes=None, **fit_params):
        with UserInterrupts() as self._user_interrupts:
            try:
                return super().partial_fit(X, y, classes, **fit_params)
            except _Interrupted as exc:
                raise exc.__cause__ from None
            finally:
                del self._user_interrupts

    def __getstate__(self):
        # A pickle (joblib) of a fitted model keeps the weights, not the optimizer's state:
        # Adam's moments are twice the weights, and prediction needs none of them. A
        # warm-start fit after loading starts the optimizer afresh; sklearn_cnn.save(...,
        # optimizer=True) keeps the state for continuing exactly.
        optimizer = self.__dict__.get("optimizer_")
        if optimizer is None or not optimizer.state:
            return super().__getstate__()
        state, optimizer.state = optimizer.state, type(optimizer.state)()
        try:
            return super().__getstate__()
        finally:
            optimizer.state = state

    def train_step_single(self, batch, **fit_params):
        step = super().train_step_single(batch, **fit_params)
        if self.distributed is not None:  # the whole batch's gradient, in every process
            self.distributed.average_gradients(
                [p for p in self.module_.parameters() if p.requires_grad], len(batch[0]))
        return step

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:  # no validation split: nothing to run, no mode to set
            return
        # skorch sets the mode on every batch, and module.train() recurses through every
        # submodule: ~5% of a training step on small images. Once per epoch is enough.
        self._training_mode_ = None
        self._set_training(training)
        distributed = self.distributed
        if torch.device(self.device).type == "cpu" and distributed is None:
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
            return
        # On an accelerator, skorch's per-batch `loss.item()` makes the host wait for the
        # device after every step, so the next step's kernels cannot be queued while this
        # one runs. The batch losses stay on the device and are written into the history
        # in one copy at the end of the epoch, before the epoch-level scores read them.
        # In a data-parallel fit, the history records the whole batch's loss and size.
        losses = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            loss, size = step["loss"].detach().float(), len(batch[0])
            if distributed is not None:
                loss, size = distributed.mean(loss, size)
            losses.append(loss)
            self.history.record_batch(prefix + "_batch_size", size)
            self.notify("on_batch_end", batch=batch, training=training, **step)
        if losses:
            records = self.history[-1]["batches"][-len(losses):]
            for record, loss in zip(records, torch.stack(losses).tolist()):
                record[prefix + "_loss"] = loss
        self.history.record(prefix + "_batch_count", len(losses))

    def _set_training(self, training=True):
        if getattr(self, "_training_mode_", None) is training:
            return
        super()._set_training(training)
        self._training_mode_ = training

    def infer(self, x, **fit_params):
        if self.autocast_dtype is None:
            return super().infer(x, **fit_params)
        with torch.autocast(torch.device(self.device).type, dtype=self.autocast_dtype):
            return super().infer(x, **fit_params).float()


def training_callbacks(*, metrics: list, lr_schedule: str | None, early_stopping: bool,
                       patience: int, epochs: int, batches_per_epoch: int, validation: bool,
                       device: torch.device, verbose: int | str, seeded: bool,
                       description: str = "fit", extra: list = (),
                       user: list | None = None) -> list:
    """The named callbacks of one fit call: the task's ``metrics``, the learning-rate record
    and schedule (on the validation loss where there is a ``validation`` split), early
    stopping, the finite-loss check, progress, thread sharing (which
    warns when a ``seeded`` fit cannot be reproducible), then the estimator's ``extra``
    ones and the user's."""
    callbacks = [*metrics, ("lr", RecordLR())]
    if lr_schedule is not None:
        monitor = "valid_loss" if validation else "train_loss"
        callbacks.append(("lr_schedule", make_lr_scheduler(
            lr_schedule, epochs=epochs, batches_per_epoch=batches_per_epoch,
            monitor=monitor)))
    if early_stopping:
        callbacks.append(("early_stopping", EarlyStopping(
            monitor="valid_loss", patience=patience, load_best=True)))
    callbacks.append(("check_finite_loss", CheckFiniteLoss()))
    if verbose == "auto":
        if interactive():
            callbacks.append(("progress", EpochProgress(epochs, description)))
    elif verbose and is_terminal():
        callbacks.append(("progress_bar", ProgressBar()))
    callbacks.append(("share_cpu_threads", ShareCPUThreads(seeded=seeded)))
    callbacks += list(extra)
    for i, callback in enumerate(user or []):
        callbacks.append(callback if isinstance(callback, tuple) else (f"user_{i}", callback))
    return callbacks


def build_net(*, module: nn.Module, criterion: type, criterion_params: dict,
              optimizer: str | type, lr: float, momentum: float, weight_decay: float,
              param_groups: list, batch_size: int, max_epochs: int, device: torch.device,
              seed: int, transform, mix, callbacks: list, verbose: int | str, compile: bool,
              autocast: torch.dtype | None, distributed=None) -> Net:
    """An initialised :class:`Net` around ``module`` (moved to ``device`` in the memory format
    convolutions run fastest in there), batches from :class:`~sklearn_cnn._data.
    BatchIterator` (shuffled and augmented with ``transform`` and ``mix`` when training,
    seeded by ``seed``; each process's share of them in a ``distributed`` fit), and the
    optimizer by name or class."""
    memory_format = memory_format_for(device)
    module = module.to(device=device, memory_format=memory_format)
    optimizer = OPTIMIZERS.get(optimizer, optimizer)
    optimizer_params = {"optimizer__weight_decay": weight_decay}
    if issubclass(optimizer, WITH_MOMENTUM):
        optimizer_params["optimizer__momentum"] = momentum
    if device.type == "cuda" and optimizer in FUSED_ON_CUDA:
        # One kernel for the whole update instead of PyTorch's default multi-tensor
        # path: small networks on a GPU are bound by kernel launches.
        optimizer_params["optimizer__fused"] = True
    if param_groups:
        optimizer_params["optimizer__param_groups"] = param_groups
    net = Net(
        module=module,
        criterion=criterion,
        **{f"criterion__{name}": value for name, value in criterion_params.items()},
        optimizer=optimizer,
        lr=lr,
        max_epochs=max_epochs,
        batch_size=batch_size,
        iterator_train=BatchIterator,
        iterator_train__shuffle=True,
        iterator_train__device=device,
        iterator_train__seed=seed,
        iterator_train__transform=transform,
        iterator_train__mix=mix,
        iterator_train__drop_single=True,
        iterator_train__memory_format=memory_format,
        iterator_train__shard=distributed,
        iterator_valid=BatchIterator,
        iterator_valid__device=device,
        iterator_valid__memory_format=memory_format,
        iterator_valid__shard=distributed,
        train_split=None,
        callbacks=callbacks,
        verbose=0 if verbose == "auto" else int(verbose),
        device=device,
        compile=compile,
        autocast_dtype=autocast,
        distributed=distributed,
        **optimizer_params,
    )
    return net.initialize()


def continue_from(net: Net, fitted: Net) -> None:
    """Continue the fitted net's history and, with the same optimizer class, its state
    (Adam's moments, step counts) in a new net over a copy of the same network; the new
    net keeps its own hyper-parameters (lr, momentum, weight decay). Copies: the fitted
    net must stay as it is until the new fit succeeds."""
    net.history = copy.deepcopy(fitted.history)
    if type(net.optimizer_) is type(fitted.optimizer_):
        load_optimizer_state(net.optimizer_, copy.deepcopy(fitted.optimizer_.state_dict()))


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict | None) -> None:
    """Load an earlier optimizer's per-parameter state into a new optimizer of the same class
    over the same parameters, keeping the new optimizer's hyper-parameters. Nothing is
    loaded when there is no state or the parameter groups differ in size."""
    if not state or not state.get("state"):
        return
    merged = optimizer.state_dict()
    if [len(g["params"]) for g in merged["param_groups"]] != [
            len(g["params"]) for g in state["param_groups"]]:
        return
    merged["state"] = state["state"]
    optimizer.load_state_dict(merged)
    # load_state_dict moves each state tensor to its parameter's device and dtype but keeps
    # the saved memory layout: moments read from a file are contiguous, while on a GPU the
    # convolution weights are channels-last, and the fused optimizers refuse the mix.
    for param, param_state in optimizer.state.items():
        for key, value in param_state.items():
            if (torch.is_tensor(value) and value.shape == param.shape
                    and value.stride() != param.stride()):
                param_state[key] = torch.empty_like(param).copy_(value)


def train(net: Net, train_data, valid_data, *, epochs: int, seed: int) -> None:
    """Run ``epochs`` epochs on ``train_data`` (validating on ``valid_data`` when given), then
    recompute the running statistics of the batch-norm layers that trained."""
    net.train_split = None if valid_data is None else predefined_split(valid_data)
    try:
        net.partial_fit(train_data, y=None, epochs=epochs)
        device = torch.device(net.device)
        batches = BatchIterator(train_data, net.batch_size, device=device, shuffle=True,
                                seed=seed, drop_single=True,
                                memory_format=memory_format_for(device),
                                shard=net.distributed)
        # The module itself, not torch.compile's wrapper: no graphs compiled for this.
        recalibrate_batch_norm(
            uncompiled(net.module_), batches,
            autocast_dtype=net.autocast_dtype,
            max_batches=math.ceil(_RECALIBRATION_IMAGES / net.batch_size),
            distributed=net.distributed)
    finally:
        # The net is pickled with the model: keep no reference to the data.
        net.train_split = None


def training_mode_layers(module: nn.Module) -> list[nn.Module]:
    """The layers that run in training mode while ``module`` trains: all of them, but those a
    module keeps in eval mode (TransferNet's frozen batch norm). The mode is restored."""
    was_training = module.training
    module.train()
    layers = [m for m in module.modules() if m.training]
    module.train(was_training)
    return layers


def trains_batch_norm(module: nn.Module) -> bool:
    """Whether a batch-norm layer of ``module`` learns statistics while it trains."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm)
               for m in training_mode_layers(module))


def recalibrate_batch_norm(module: nn.Module, batches, autocast_dtype=None,
                           max_batches: int | None = None, distributed=None) -> None:
    """Recompute the running statistics of the batch-norm layers that trained.

    During training, batch norm normalises with each batch's statistics while its running
    averages (momentum 0.1) trail far behind weights that change every step: after a short
    fit, eval-mode predictions can be at chance while the training log shows 0.99. One pass
    over (a sample of) the training images with the final weights, averaging its batches
    equally, makes eval mode agree with what training measured.

    Not ``torch.optim.swa_utils.update_bn``: it resets every batch-norm layer, including
    the frozen ones of a pretrained backbone, whose statistics must stay as loaded. Here
    only layers in training mode under ``module.train()`` are recomputed. In a
    ``distributed`` fit each process passes over its share of the batches and the
    statistics are then pooled over all of them, so every process ends with the same.
    """
    layers = [m for m in training_mode_layers(module)
              if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not layers:
        return
    was_training = module.training
    module.train()
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # a cumulative average over the pass
    device_type = next(module.parameters()).device.type
    try:
        with torch.no_grad(), torch.autocast(device_type, dtype=autocast_dtype,
                                             enabled=autocast_dtype is not None):
            for i, (xb, _) in enumerate(batches):
                if max_batches is not None and i >= max_batches:
                    break
                module(xb)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        module.train(was_training)
    if distributed is not None:
        world = distributed.world_size
        with torch.no_grad():
            for layer in layers:
                mean = distributed.sum(layer.running_mean) / world
                square = distributed.sum(layer.running_var + layer.running_mean ** 2) / world
                layer.running_mean.copy_(mean)
                layer.running_var.copy_(square - mean ** 2)


def batches_per_epoch(n_train: int, batch_size: int, distributed=None) -> int:
    """Training batches per epoch (a trailing single image is dropped; in a data-parallel
    fit, a trailing batch with fewer images than processes)."""
    return count_batches(n_train, batch_size, drop_single=True,
                         world_size=1 if distributed is None else distributed.world_size)


# ---------------------------------------------------------------- checks before training
def check_training_params(*, optimizer, callbacks) -> None:
    """What ``_parameter_constraints`` cannot say of ``optimizer`` (a class must be a
    first-order torch optimizer) and ``callbacks`` (skorch callbacks, or (name, callback))."""
    if isinstance(optimizer, type):
        if not issubclass(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be one of {sorted(OPTIMIZERS)} or a "
                            f"torch.optim.Optimizer subclass, got {optimizer!r}.")
        if needs_closure(optimizer):
            raise ValueError(
                f"optimizer={optimizer.__name__} needs a closure that re-evaluates the "
                "loss at every step (a full-batch method), which mini-batch training does "
                f"not provide. Use one of {sorted(OPTIMIZERS)} or another first-order "
                "torch.optim optimizer.")
    for i, callback in enumerate(callbacks or []):
        named = isinstance(callback, tuple) and len(callback) == 2 and isinstance(
            callback[0], str)
        if not isinstance(callback[1] if named else callback, Callback):
            raise TypeError(
                f"callbacks[{i}] is {callback!r}; callbacks must hold skorch callback "
                "instances (e.g. skorch.callbacks.Checkpoint()) or (name, callback) tuples.")


def _differs(value, fitted) -> bool:
    """Whether a parameter changed since the network was built (lists equal tuples)."""
    if isinstance(value, (list, tuple)) and isinstance(fitted, (list, tuple)):
        return tuple(value) != tuple(fitted)
    try:
        return bool(value != fitted)
    except (TypeError, ValueError, RuntimeError):
        return value is not fitted


def check_architecture_unchanged(built_with: dict, current: dict) -> None:
    """A warm-start fit keeps the fitted network: refuse when a parameter that shapes it
    (``current``, by name) differs from what it was built with (``built_with``)."""
    changed = [name for name, value in current.items()
               if _differs(value, built_with.get(name))]
    if changed:
        details = ", ".join(f"{name}={current[name]!r} (fitted with "
                            f"{built_with.get(name)!r})" for name in changed)
        raise ValueError(
            f"warm_start and partial_fit continue training the fitted network, but {details} "
            f"would need a different network. Set warm_start=False (or clone the estimator) "
            "to train a new one, or set the parameters back.")


def check_batch_norm_batches(module: nn.Module, *, n_train: int, batch_size: int) -> None:
    """Batch normalisation needs at least 2 samples a batch: refuse a fit that would give
    it 1 (one training sample, or ``batch_size=1``)."""
    if n_train == 1 and trains_batch_norm(module):
        raise ValueError(
            "fit got 1 sample to train on (after any validation split): batch "
            "normalisation computes statistics over the samples of a batch and needs at "
            "least 2. Pass more samples, or a network without trainable batch "
            "normalisation (batch_norm=False, or TransferClassifier(freeze='backbone')).")
    if batch_size == 1 and trains_batch_norm(module):
        raise ValueError(
            "batch_size=1 cannot train this network: batch normalisation computes "
            "statistics over the samples of a batch and needs at least 2. Use batch_size=2 "
            "or more, or a network without trainable batch normalisation (batch_norm=False, "
            "or TransferClassifier(freeze='backbone')).")
