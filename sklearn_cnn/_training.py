"""The skorch side of training: the optimizer registry, our callbacks and the
``NeuralNetClassifier`` subclass that runs the epochs (precision, loss reading, pickling).

The estimators (``_base.py``) decide what to train; this module is how an epoch runs.
"""

from __future__ import annotations

import inspect
import threading
from contextlib import contextmanager

import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback, LRScheduler

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
            self.correct_ = self.correct_ + (y_pred.detach().argmax(1) == batch[1]).sum()
            self.seen_ += len(batch[1])

    def on_epoch_end(self, net, **kwargs):
        if self.seen_:
            net.history.record("train_acc", float(self.correct_) / self.seen_)
        self.correct_, self.seen_ = 0, 0  # no device tensor outlives the epoch


def one_cycle(optimizer, *, total_steps, last_epoch=-1):
    # Peaks at each parameter group's own learning rate, so backbone_lr keeps its ratio.
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[group["lr"] for group in optimizer.param_groups],
        total_steps=total_steps,
        last_epoch=last_epoch,
    )


def make_lr_scheduler(name: str, *, max_epochs: int, batches_per_epoch: int,
                      monitor: str) -> LRScheduler:
    """skorch's LRScheduler callback for ``lr_schedule=name``."""
    common = dict(event_name=None, last_epoch=-1)
    if name == "cosine":
        return LRScheduler("CosineAnnealingLR", T_max=max_epochs, **common)
    if name == "step":
        return LRScheduler("StepLR", step_size=max(1, max_epochs // 3), gamma=0.1, **common)
    if name == "plateau":
        return LRScheduler("ReduceLROnPlateau", monitor=monitor, factor=0.5, patience=2,
                           event_name=None)
    return LRScheduler(one_cycle, total_steps=max_epochs * batches_per_epoch,
                       step_every="batch", **common)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, None for float32."""
    if precision == "bfloat16":
        return torch.bfloat16
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


class Net(NeuralNetClassifier):
    """skorch's classifier with autocast around the forward pass, and train/eval mode set
    once per epoch."""

    def __init__(self, *args, autocast_dtype=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.autocast_dtype = autocast_dtype

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
