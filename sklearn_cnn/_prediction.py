"""What a fitted estimator offers besides fit: predictions through the network (the task's
scores, optionally averaged over mirrored images), the model summary, and the fitted views
(``module_``, ``history_``, ``device_``).

:class:`PredictionMixin` is one of ``BaseCNNEstimator``'s bases; its methods use the
estimator's input hook ``_prediction_inputs`` and its task (``_fitted_task``).
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._data import (
    PREDICT_AT_ONCE_BYTES,
    BatchIterator,
    ImageDataset,
    place_dataset,
    prediction_batch_size,
)
from ._training import Net
from .devices import memory_format_for
from .networks import ModelSummary, network_input_size, uncompiled

__all__ = ["PredictionMixin"]


class PredictionMixin:
    """Prediction, the summary and the fitted views of a sklearn-cnn estimator."""

    # What the axes of one sample are called (``input_shape_``, summary's input_shape).
    _input_axes: tuple[str, ...] = ("height", "width", "channels")

    # ----------------------------------------------------------- prediction
    def _scores(self, X) -> np.ndarray:
        """The task's scores for images ``X`` (class probabilities, or target values),
        averaged with those of the mirrored images when ``tta``."""
        check_is_fitted(self)
        if not (isinstance(self.batch_size, Integral) and self.batch_size >= 1
                and getattr(self, "tta", False) in (True, False)):
            # What prediction reads, broken by set_params after fit (batch_size=0): the full
            # validation says what is wrong. (Running it every time costs as much as
            # predicting one small image.)
            self._validate_params()
        data = self._prediction_inputs(X)
        # On a GPU, a few images go over at once; more are copied batch by batch, each
        # copy overlapping the work on the batch before.
        device = torch.device(self.net_.device)
        dataset = place_dataset(ImageDataset(data), device, max_bytes=PREDICT_AT_ONCE_BYTES)
        task = self._fitted_task()
        outputs = self._network_outputs(self.net_, dataset)
        with torch.inference_mode():
            finite = torch.isfinite(outputs).all(dim=1)
            if not bool(finite.all()):
                bad = torch.nonzero(~finite).flatten().cpu().numpy()
                values = ""
                if isinstance(data, torch.Tensor):
                    low, high = float(data.float().nan_to_num().min()), float(data.max())
                    values = f" (from {low:.3g} to {high:.3g})"
                raise ValueError(
                    f"The network's outputs overflowed (inf or NaN) for {bad.size} of the "
                    f"{len(data)} {self._samples}, e.g. at positions {bad[:5].tolist()}: "
                    f"their values{values} are far outside what the network was trained on. "
                    f"Scale them as the training {self._samples} were.")
            scores = task.scores(outputs)
            if getattr(self, "tta", False):  # images only: a mirrored series is another series
                mirrored = self._network_outputs(self.net_, dataset, mirror=True)
                scores = (scores + task.scores(mirrored)) / 2
        return scores.cpu().numpy()

    def _input_positions(self, module: nn.Module, dataset: ImageDataset) -> int:
        """Positions (pixels) of one sample at the network's input: what sizes a
        prediction batch."""
        return math.prod(network_input_size(module, dataset.image_size))

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
            device, pixels=self._input_positions(module, dataset),
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
            (height, width, channels) of the images, or (channels, time points) of the
            series (time-series estimators); defaults to ``input_shape_``.
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
        axes = ", ".join(self._input_axes)
        if input_shape is None and not fitted:
            raise ValueError(f"Pass input_shape=({axes}) to summarise a network "
                             "before fit.")
        if fitted and input_shape in (None, self.input_shape_) and n_outputs in (
                None, self._fitted_task().n_outputs):
            module, input_shape = self.module_, self.input_shape_
        else:
            self._validate_params()
            self._check_architecture()
            input_shape = tuple(int(s) for s in input_shape)
            if len(input_shape) != len(self._input_axes) or min(input_shape) < 1:
                raise ValueError(f"input_shape must be ({axes}) of positive ints, got "
                                 f"{input_shape!r}.")
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
