"""The skorch side of training: the optimizer registry, our callbacks and the
``NeuralNetClassifier`` subclass that runs the epochs (precision, loss reading, pickling).

The estimators (``_base.py``) decide what to train; this module is how an epoch runs.
"""

from __future__ import annotations

import inspect
import math
import re
import signal
import sys
import threading
import warnings
from contextlib import contextmanager

import torch
from sklearn.exceptions import ConvergenceWarning
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler, PrintLog
from torch import nn

from .devices import native_bfloat16
from .inspection import probe

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


def needs_closure(optimizer: type) -> bool:
    """Whether ``optimizer.step`` requires a closure (LBFGS), which skorch's loop never passes."""
    closure = inspect.signature(optimizer.step).parameters.get("closure")
    return closure is not None and closure.default is inspect.Parameter.empty


class RecordLR(Callback):
    """Records the learning rate each epoch starts with (the head's, with backbone_lr)."""

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class ShareCPUThreads(Callback):
    """Splits the process's torch threads among the fits running in its threads at once.

    joblib's loky backend (GridSearchCV's default) limits each worker process's threads
    itself; its threading backend, and Dask workers with several threads, run fits side
    by side in one process, each of which would use every core. ``torch.set_num_threads``
    sets the calling thread's OpenMP team size only, so each fit takes its share, and
    re-takes it every epoch as other fits start and end.
    """

    active = 0
    lock = threading.Lock()
    local = threading.local()

    def on_epoch_begin(self, net, **kwargs):
        budget = getattr(self.local, "budget", None)
        if budget is not None:
            torch.set_num_threads(max(1, budget // max(1, ShareCPUThreads.active)))

    @classmethod
    @contextmanager
    def taken(cls, device: torch.device):
        """Counts a fit in a worker thread among the active ones; restores its threads."""
        if device.type != "cpu" or threading.current_thread() is threading.main_thread():
            yield
            return
        budget = cls.local.budget = torch.get_num_threads()
        with cls.lock:
            cls.active += 1
        try:
            yield
        finally:
            with cls.lock:
                cls.active -= 1
            cls.local.budget = None
            torch.set_num_threads(budget)


class TrainAccuracy(Callback):
    """Training accuracy per epoch, from the predictions the training steps made anyway.

    skorch's ``EpochScoring(on_train=True)`` keeps every batch's predictions, autograd
    graphs included, until the epoch ends (8% slower at 32×32); counting the correct ones
    per batch keeps nothing and adds no device synchronisation.
    """

    def on_epoch_begin(self, net, **kwargs):
        self.correct_, self.seen_ = 0, 0

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        if training and y_pred is not None:
            target = batch[1]
            if target.dim() == 2:  # soft targets of mixup/cutmix: their larger share
                target = target.argmax(1)
            self.correct_ = self.correct_ + (y_pred.detach().argmax(1) == target).sum()
            self.seen_ += len(batch[1])

    def on_epoch_end(self, net, **kwargs):
        if self.seen_:
            net.history.record("train_acc", float(self.correct_) / self.seen_)
        self.correct_, self.seen_ = 0, 0  # no device tensor outlives the epoch


class CheckFiniteLoss(Callback):
    """Stops training with a clear error when the loss stops being a finite number.

    A NaN or infinite loss poisons every weight it touches; a model trained on through it
    predicts garbage without a word. The check reads the epoch's losses from the history
    (already on the host), so it costs nothing per batch.
    """

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        for key in ("train_loss", "valid_loss"):
            value = row.get(key)
            if value is not None and not math.isfinite(value):
                raise FloatingPointError(
                    f"Training diverged: the {key.replace('_', ' ')} became {value} in epoch "
                    f"{row['epoch']}, so the weights are no longer numbers and the model would "
                    f"predict garbage. Likely causes: a learning rate too high for the "
                    f"optimizer (lr={net.lr}); pixel values far from 0..1 without scaling"
                    f"{self._precision_hint(net)}. Lower lr (e.g. lr="
                    f"{net.lr / 10:g}), scale the images (PixelScaler), or add "
                    "lr_schedule='onecycle' for a warm-up."
                )


    @staticmethod
    def _precision_hint(net) -> str:
        if getattr(net, "autocast_dtype", None) is None:
            return ""
        return "; rounding in bfloat16 (precision='float32' trains without it)"


class TerminalPrintLog(PrintLog):
    """skorch's epoch table, with its colour codes only when printing to a terminal.

    In logs, pipes and CI the ANSI escape codes would be raw characters on every line.
    """

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not is_terminal():
            text = self._ANSI.sub("", text)
        return text


def is_terminal() -> bool:
    """Whether standard output is an interactive terminal (progress bars and colours)."""
    stream = sys.stdout
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def training_mode_layers(module: nn.Module) -> list[nn.Module]:
    """The layers that run in training mode while ``module`` trains: all of them, but those a
    module keeps in eval mode (TransferNet's frozen batch norm). The mode is restored."""
    was_training = module.training
    module.train()
    layers = [m for m in module.modules() if m.training]
    module.train(was_training)
    return layers


def recalibrate_batch_norm(module: nn.Module, batches, autocast_dtype=None,
                           max_batches: int | None = None) -> None:
    """Recompute the running statistics of the batch-norm layers that trained.

    During training, batch norm normalises with each batch's statistics while its running
    averages (momentum 0.1) trail far behind weights that change every step: after a short
    fit, eval-mode predictions can be at chance while the training log shows 0.99. One pass
    over (a sample of) the training images with the final weights, averaging its batches
    equally, makes eval mode agree with what training measured.

    Not ``torch.optim.swa_utils.update_bn``: it resets every batch-norm layer, including
    the frozen ones of a pretrained backbone, whose statistics must stay as loaded. Here
    only layers in training mode under ``module.train()`` are recomputed.
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


def carry_optimizer_state(optimizer: torch.optim.Optimizer, state: dict | None) -> bool:
    """Load an earlier optimizer's per-parameter state (moments, step counts) into a new
    optimizer of the same class over the same parameters, keeping the new optimizer's
    hyper-parameters (lr, momentum, weight decay). Returns whether it could."""
    if not state or not state.get("state"):
        return False
    merged = optimizer.state_dict()
    if [len(g["params"]) for g in merged["param_groups"]] != [
            len(g["params"]) for g in state["param_groups"]]:
        return False
    merged["state"] = state["state"]
    optimizer.load_state_dict(merged)
    return True


def one_cycle(optimizer, *, total_steps, last_epoch=-1):
    # Peaks at each parameter group's own learning rate, so backbone_lr keeps its ratio.
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps,
        last_epoch=last_epoch,
    )


def make_lr_scheduler(name: str, *, epochs: int, batches_per_epoch: int,
                      monitor: str) -> LRScheduler:
    """skorch's LRScheduler callback for ``lr_schedule=name``, over ``epochs`` epochs (those
    of one ``fit`` or ``partial_fit`` call: each call runs its own schedule)."""
    common = dict(event_name=None, last_epoch=-1)
    if name == "cosine":
        return LRScheduler("CosineAnnealingLR", T_max=epochs, **common)
    if name == "step":
        return LRScheduler("StepLR", step_size=max(1, epochs // 3), gamma=0.1, **common)
    if name == "plateau":
        return LRScheduler("ReduceLROnPlateau", monitor=monitor, factor=0.5, patience=2,
                           event_name=None)
    return LRScheduler(one_cycle, total_steps=epochs * batches_per_epoch,
                       step_every="batch", **common)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, None for float32: "auto" is
    bfloat16 where the device computes it natively (see ``devices.native_bfloat16``)."""
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "auto" and native_bfloat16(device):
        return torch.bfloat16
    return None


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


def has_tiny_convolutions(module: nn.Module, input_shape: tuple[int, int, int]) -> bool:
    """Whether a strided convolution of the network sees a feature map smaller than its
    kernel (ResNet's last stage, stride 2 and 3×3, on the 1×1 map of a 16-pixel image).

    With bfloat16 on the CPU with two threads, oneDNN 3.12 (torch 2.14) sporadically returns
    NaN weight gradients for such a convolution: ResNet-18 at 16×16 failed within 25 fits in
    each of 3 runs; never in float32, nor in 40 fits with one thread, nor at 32×32 (40
    fits). ``precision="auto"`` trains such networks in float32 on the CPU; maps
    that small gain nothing from bfloat16.
    """
    tiny = []

    def check(layer, inputs, _):
        height, width = inputs[0].shape[-2:]
        kernel_h, kernel_w = layer.kernel_size
        strided = tuple(layer.stride) != (1, 1)
        tiny.append(strided and (height < kernel_h or width < kernel_w))

    probe(module, input_shape, [m for m in module.modules() if isinstance(m, nn.Conv2d)],
          check)
    return any(tiny)


def warn_if_not_learned(name: str, logits: torch.Tensor, y_true: torch.Tensor,
                        reported: float | None, *, max_epochs: int, lr: float) -> None:
    """Warns when eval-mode predictions of training images (``logits``) do no better than
    the most frequent class, or fall clearly below the accuracy training ``reported``."""
    accuracy = float((logits.argmax(1) == y_true).float().mean())
    majority = float(torch.bincount(y_true).max()) / len(y_true)
    if accuracy <= majority and (reported is None or reported <= majority + 0.05):
        warnings.warn(
            f"{name} predicts its own training images no better than always answering the "
            f"most frequent class (accuracy {accuracy:.3f}, majority class "
            f"{majority:.3f}): it has not learned. Train longer (max_epochs="
            f"{max_epochs}), try another learning rate (lr={lr}; "
            "sklearn_cnn.inspection.lr_find suggests one), or check that X and y match.",
            ConvergenceWarning, stacklevel=5)
    elif reported is not None and reported - accuracy > max(
            0.05, 2 * math.sqrt(reported * (1 - reported) / len(y_true))):
        # More than 0.05 apart, and more than sampling noise on a small training set.
        warnings.warn(
            f"{name} predicts its training images with accuracy {accuracy:.3f} in eval "
            f"mode, but training reported {reported:.3f} in the last epoch: predictions "
            "will be worse than the training log suggests. Train longer (max_epochs), "
            "or lower lr or dropout.", ConvergenceWarning, stacklevel=5)


class Net(NeuralNetClassifier):
    """skorch's classifier with autocast around the forward pass, train/eval mode set once
    per epoch, and interrupts that stop the fit."""

    def __init__(self, *args, autocast_dtype=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype

    @property
    def _default_callbacks(self):
        # skorch's epoch table, without colour codes outside a terminal.
        return [(name, TerminalPrintLog() if name == "print_log" else callback)
                for name, callback in super()._default_callbacks]

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
    # BaseCNNClassifier._fit). Callbacks that stop training the skorch way still do.
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

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        # skorch sets the mode on every batch, and module.train() recurses through every
        # submodule: ~5% of a training step on small images. Once per epoch is enough.
        self._training_mode_ = None
        self._set_training(training)
        if iterator is None or torch.device(self.device).type == "cpu":
            super().run_single_epoch(iterator, training, prefix, step_fn, **fit_params)
            return
        # On an accelerator, skorch's per-batch `loss.item()` makes the host wait for the
        # device after every step, so the next step's kernels cannot be queued while this
        # one runs. The batch losses stay on the device and are written into the history
        # in one copy at the end of the epoch, before the epoch-level scores read them.
        losses = []
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            losses.append(step["loss"].detach().float())
            self.history.record_batch(prefix + "_batch_size", len(batch[0]))
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
