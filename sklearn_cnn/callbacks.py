"""sklearn-cnn's skorch callbacks: per-epoch metrics counted from the batches, the
finite-loss check, learning-rate schedules and records, CPU thread sharing and the log.

The estimators add these themselves; they are public, as skorch's own callbacks are, for
use in a skorch net of your own or to read what a fit recorded. Each holds its
configuration from ``__init__`` and resets its state when an epoch begins.
"""

from __future__ import annotations

import math
import re
import sys
import threading
import warnings
from contextlib import contextmanager

import torch
from skorch.callbacks import Callback, LRScheduler, PrintLog

from .distributed import is_main_process

__all__ = ["Accuracy", "CheckFiniteLoss", "EpochProgress", "R2Score", "RecordLR",
           "ShareCPUThreads", "TerminalPrintLog", "interactive", "is_terminal",
           "make_lr_scheduler"]


class _BatchMetric(Callback):
    """A metric accumulated from the predictions the steps made anyway, recorded in the
    history at the end of each epoch as ``train_<name>`` or ``valid_<name>``.

    skorch's ``EpochScoring`` keeps every batch's predictions (with ``on_train=True`` their
    autograd graphs too) until the epoch ends: 8% slower at 32×32. Running sums on the
    device keep nothing and add no device synchronisation.
    """

    name = ""

    def __init__(self, on_train: bool = True):
        self.on_train = on_train

    def on_epoch_begin(self, net, **kwargs):
        self.sums_ = None
        self.seen_ = 0

    def on_batch_end(self, net, batch, training, y_pred=None, **kwargs):
        if training != self.on_train or y_pred is None:
            return
        sums = self.batch_sums(y_pred.detach(), batch[1])
        self.sums_ = sums if self.sums_ is None else [a + b for a, b in zip(self.sums_, sums)]
        self.seen_ += len(batch[1])

    def on_epoch_end(self, net, **kwargs):
        sums, seen = self.sums_, self.seen_
        distributed = getattr(net, "distributed", None)
        if distributed is not None and sums is not None:  # over every process's share
            sums = [distributed.sum(s) for s in sums]
            seen = int(distributed.sum(sums[0].new_tensor(float(seen))).item())
        if seen:
            prefix = "train" if self.on_train else "valid"
            net.history.record(f"{prefix}_{self.name}", self.value(sums, seen))
        self.sums_, self.seen_ = None, 0  # no device tensor outlives the epoch

    def batch_sums(self, y_pred: torch.Tensor, target: torch.Tensor) -> list:
        raise NotImplementedError

    def value(self, sums: list, n: int) -> float:
        raise NotImplementedError


class Accuracy(_BatchMetric):
    """Accuracy per epoch (``train_acc`` or ``valid_acc``), from the steps' own predictions.

    Single-label outputs are logits (the largest one is the prediction) and targets class
    indices, or soft targets (mixup, cutmix: their largest share counts). With
    ``multilabel=True`` outputs are one logit per label and the accuracy is the subset
    accuracy (every label of an image right), as scikit-learn's ``accuracy_score`` has it.

    Parameters
    ----------
    on_train : bool, default=True
        Count the training batches (``train_acc``), else the validation batches
        (``valid_acc``).
    multilabel : bool, default=False
        Outputs and targets are label sets.

    Examples
    --------
    >>> from sklearn_cnn.callbacks import Accuracy
    >>> Accuracy(on_train=False).name
    'acc'
    """

    name = "acc"

    def __init__(self, on_train: bool = True, multilabel: bool = False):
        super().__init__(on_train)
        self.multilabel = multilabel

    def batch_sums(self, y_pred, target):
        if self.multilabel:
            right = ((y_pred > 0) == (target > 0.5)).all(dim=1)
        else:
            if target.dim() == 2:  # soft targets of mixup/cutmix: their larger share
                target = target.argmax(1)
            right = y_pred.argmax(1) == target
        return [right.sum()]

    def value(self, sums, n):
        return float(sums[0]) / n


class R2Score(_BatchMetric):
    """The coefficient of determination per epoch (``train_r2`` or ``valid_r2``) of a
    regression's outputs, averaged over the outputs as scikit-learn's ``r2_score`` does.

    Computed on the standardised targets the network learns, which gives the same R² as on
    the original scale (R² does not change under a shift and a scaling of each output).

    Parameters
    ----------
    on_train : bool, default=True
        Count the training batches (``train_r2``), else the validation batches
        (``valid_r2``).

    Examples
    --------
    >>> from sklearn_cnn.callbacks import R2Score
    >>> R2Score().name
    'r2'
    """

    name = "r2"

    def batch_sums(self, y_pred, target):
        y_pred, target = y_pred.double().reshape(len(target), -1), target.double().reshape(
            len(target), -1)
        return [((y_pred - target) ** 2).sum(0), target.sum(0), (target ** 2).sum(0)]

    def value(self, sums, n):
        residual, total, total_sq = sums
        variance = total_sq - total ** 2 / n
        r2 = torch.where(variance > 0, 1 - residual / variance.clamp_min(1e-300),
                         torch.zeros_like(variance))
        return float(r2.mean())


class RecordLR(Callback):
    """Records the learning rate each epoch starts with (``lr``; the head's, when the
    backbone has its own).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = np.random.default_rng(0).random((16, 8, 8)), np.arange(16) % 2
    >>> model = CNNClassifier(max_epochs=3, lr_schedule="step", verbose=0).fit(X, y)
    >>> [float(f"{lr:.0e}") for lr in model.history_[:, "lr"]]  # ×0.1 every third
    [0.002, 0.0002, 2e-05]
    """

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class ShareCPUThreads(Callback):
    """Splits the process's torch threads among the fits running in its threads at once, and
    says when a seeded fit cannot be reproducible because of them.

    joblib's loky backend (GridSearchCV's default) limits each worker process's threads
    itself; its threading backend, and Dask workers with several threads, run fits side
    by side in one process, each of which would use every core. ``torch.set_num_threads``
    sets the calling thread's OpenMP team size only, so each CPU fit takes its share, and
    re-takes it every epoch as other fits start and end.

    Fits side by side in one process also draw their dropout masks (and initial weights)
    from PyTorch's one random generator, in whatever order the threads interleave: a seeded
    fit then gives other results from run to run. It warns, once per fit, naming the fix.

    Parameters
    ----------
    seeded : bool, default=False
        The fit has an int ``random_state``, so it is meant to be reproducible.

    Examples
    --------
    The estimators add it to every fit; a skorch net of your own takes it as any callback:

    >>> from skorch import NeuralNetClassifier
    >>> from sklearn_cnn.callbacks import ShareCPUThreads
    >>> from sklearn_cnn.networks import ConvNet
    >>> net = NeuralNetClassifier(ConvNet, callbacks=[ShareCPUThreads(seeded=True)])
    """

    active = 0
    lock = threading.Lock()
    local = threading.local()

    def __init__(self, seeded: bool = False):
        self.seeded = seeded

    def on_train_begin(self, net, **kwargs):
        self.warned_ = False

    def on_epoch_begin(self, net, **kwargs):
        budget = getattr(self.local, "budget", None)
        if budget is not None:
            torch.set_num_threads(max(1, budget // max(1, ShareCPUThreads.active)))
        if self.seeded and ShareCPUThreads.active > 1 and not getattr(self, "warned_", True):
            self.warned_ = True
            warnings.warn(
                f"This seeded fit runs beside {ShareCPUThreads.active - 1} other fit(s) in "
                "threads of the same process (joblib's threading backend, or a Dask worker "
                "with several threads). They share PyTorch's random generator, so random_state "
                "cannot make it reproducible. For bit-identical seeded fits, run them in "
                "worker processes: joblib's default (loky) backend, or Dask workers with "
                "threads_per_worker=1.", UserWarning, stacklevel=2)

    @classmethod
    @contextmanager
    def taken(cls, device: torch.device):
        """Counts a fit in a worker thread among the active ones; on the CPU, restores its
        threads afterwards."""
        if threading.current_thread() is threading.main_thread():
            yield
            return
        if device.type == "cpu":
            cls.local.budget = torch.get_num_threads()
        budget = getattr(cls.local, "budget", None)
        with cls.lock:
            cls.active += 1
        try:
            yield
        finally:
            with cls.lock:
                cls.active -= 1
            cls.local.budget = None
            if budget is not None:
                torch.set_num_threads(budget)


class CheckFiniteLoss(Callback):
    """Stops training with a clear error when the loss stops being a finite number.

    A NaN or infinite loss poisons every weight it touches; a model trained on through it
    predicts garbage without a word. The check reads the epoch's losses from the history
    (already on the host), so it costs nothing per batch.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = np.random.default_rng(0).random((16, 8, 8)), np.arange(16) % 2
    >>> CNNClassifier(lr=1e30, optimizer="sgd", max_epochs=3, verbose=0).fit(X, y)
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FloatingPointError: Training diverged: the train loss became ... in epoch ...
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


def is_terminal() -> bool:
    """Whether standard output is an interactive terminal (progress bars and colours).

    Examples
    --------
    >>> from sklearn_cnn.callbacks import is_terminal
    >>> is_terminal()  # doctests capture standard output
    False
    """
    stream = sys.stdout
    return bool(getattr(stream, "isatty", None) and stream.isatty())


def interactive() -> bool:
    """Whether a person is watching this process: it runs in a notebook, or writes its
    standard error to a terminal, in the main thread of the main process (not in a worker of
    a search, nor a data-parallel fit's process but the first, whose bars would
    interleave). Pipes, logs, tests and CI are not.

    Examples
    --------
    >>> from sklearn_cnn.callbacks import interactive
    >>> interactive()  # True in a terminal or a notebook
    False
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    if not is_main_process():
        return False
    import multiprocessing

    if multiprocessing.parent_process() is not None:  # loky, Dask and DataLoader workers
        return False
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    if shell is not None and hasattr(shell, "kernel"):
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", None) and stream.isatty())


class EpochProgress(Callback):
    """One progress line per fit: the epochs done, the last losses and the time left.

    tqdm's automatic bar, so it renders in terminals and notebooks alike. What
    ``verbose="auto"`` (the estimators' default) shows where a person is watching (see
    :func:`interactive`); nothing otherwise.

    Parameters
    ----------
    epochs : int
        Epochs this fit runs (the bar's length).
    description : str, default="fit"
        The text before the bar.

    Examples
    --------
    ``verbose="auto"`` adds it where a person is watching; ``verbose=0`` never does:

    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.callbacks import EpochProgress
    >>> X, y = np.random.default_rng(0).random((16, 8, 8)), np.arange(16) % 2
    >>> model = CNNClassifier(max_epochs=2, verbose=0,
    ...                       callbacks=[EpochProgress(2, "digits")]).fit(X, y)
    >>> len(model.history_)
    2
    """

    def __init__(self, epochs: int, description: str = "fit"):
        self.epochs = epochs
        self.description = description

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar_ = tqdm(total=self.epochs, desc=self.description, unit="epoch",
                         dynamic_ncols=True, leave=True)

    def on_epoch_end(self, net, **kwargs):
        row = net.history[-1]
        shown = {name: f"{row[key]:.4g}" for key, name in (("train_loss", "loss"),
                                                           ("valid_loss", "valid_loss"))
                 if key in row}
        self.bar_.set_postfix(shown, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()
            self.bar_ = None


class TerminalPrintLog(PrintLog):
    """skorch's epoch table, with its colour codes only when printing to a terminal.

    In logs, pipes and CI the ANSI escape codes would be raw characters on every line.

    Examples
    --------
    ``verbose=1`` prints it; captured, as here, without colour codes:

    >>> import numpy as np
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = np.random.default_rng(0).random((16, 8, 8)), np.arange(16) % 2
    >>> _ = CNNClassifier(max_epochs=1, verbose=1).fit(X, y)  # doctest: +ELLIPSIS
      epoch      lr    train_acc    train_loss     dur
    -------  ------  -----------  ------------  ------
          1  0.0020  ...
    """

    _ANSI = re.compile(r"\x1b\[[0-9;]*m")

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and not is_terminal():
            text = self._ANSI.sub("", text)
        return text


def _one_cycle(optimizer, *, total_steps, last_epoch=-1):
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
    of one ``fit`` or ``partial_fit`` call: each call runs its own schedule).

    Parameters
    ----------
    name : {"cosine", "step", "plateau", "onecycle"}
        Cosine annealing to 0; ×0.1 every third of the epochs; ×0.5 after 2 epochs without
        improvement of ``monitor``; one cycle per batch, peaking at each group's rate.
    epochs : int
        Epochs of this call.
    batches_per_epoch : int
        Training batches per epoch (one-cycle steps per batch).
    monitor : str
        The history key "plateau" watches.

    Returns
    -------
    skorch.callbacks.LRScheduler

    Examples
    --------
    >>> from sklearn_cnn.callbacks import make_lr_scheduler
    >>> make_lr_scheduler("cosine", epochs=10, batches_per_epoch=5, monitor="train_loss").policy
    'CosineAnnealingLR'
    """
    common = dict(event_name=None, last_epoch=-1)
    if name == "cosine":
        return LRScheduler("CosineAnnealingLR", T_max=epochs, **common)
    if name == "step":
        return LRScheduler("StepLR", step_size=max(1, epochs // 3), gamma=0.1, **common)
    if name == "plateau":
        return LRScheduler("ReduceLROnPlateau", monitor=monitor, factor=0.5, patience=2,
                           event_name=None)
    return LRScheduler(_one_cycle, total_steps=epochs * batches_per_epoch,
                       step_every="batch", **common)
