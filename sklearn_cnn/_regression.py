"""Regression: the task object (targets standardised in fit and saved with the model) and
the estimator face scikit-learn expects of a regressor (``predict`` in the shape fit saw,
R² as ``score``).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import RegressorMixin
from sklearn.utils._param_validation import StrOptions
from torch import nn

from ._base import BaseCNNEstimator
from ._tasks import EVAL_GAP_FIX, warn_unless_learned
from ._validation import check_regression_targets
from .callbacks import R2Score

__all__ = ["CNNRegressorBase", "Regression"]


_REGRESSION_LOSSES = {"squared_error": nn.MSELoss, "absolute_error": nn.L1Loss,
                      "huber": nn.HuberLoss}


class Regression:
    """Regression: one output per target, on targets standardised with the training
    targets' mean and standard deviation (learned in fit, saved with the model).

    Parameters
    ----------
    mean, scale : ndarray of shape (n_outputs,)
        What the targets are standardised with (``target_mean_``, ``target_scale_``).
    two_d : bool
        Whether fit saw y of shape (n, k) (``predict`` returns that shape) or (n,).
    """

    stratify = False
    metric = "r2"

    def __init__(self, mean: np.ndarray, scale: np.ndarray, two_d: bool):
        self.mean, self.scale, self.two_d = mean, scale, two_d

    @classmethod
    def from_targets(cls, estimator, y, n_images: int, classes=None) -> Regression:
        targets = check_regression_targets(y, n_images, estimator_name=type(estimator).__name__)
        two_d = targets.ndim == 2
        targets = targets.reshape(len(targets), -1)
        mean, scale = targets.mean(axis=0), targets.std(axis=0)
        scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(mean)), scale, 1.0)
        return cls(mean, scale, two_d)

    @classmethod
    def from_fitted(cls, estimator) -> Regression:
        return cls(np.asarray(estimator.target_mean_, dtype=np.float64),
                   np.asarray(estimator.target_scale_, dtype=np.float64),
                   bool(estimator.outputs_2d_))

    def fitted_attributes(self) -> dict:
        return {"target_mean_": self.mean, "target_scale_": self.scale,
                "n_outputs_": len(self.mean), "outputs_2d_": self.two_d}

    @property
    def n_outputs(self) -> int:
        return len(self.mean)

    def encode(self, y, n_images: int) -> np.ndarray:
        """The standardised targets, float32 of shape (n, n_outputs)."""
        targets = check_regression_targets(y, n_images, estimator_name="the regressor",
                                           warn=False)
        targets = targets.reshape(len(targets), -1)
        if targets.shape[1] != self.n_outputs:
            raise ValueError(f"y has {targets.shape[1]} target(s) per image, but the model "
                             f"was fitted on {self.n_outputs}.")
        return ((targets - self.mean) / self.scale).astype(np.float32)

    def criterion(self, estimator, targets: np.ndarray | None) -> tuple[type, dict]:
        return _REGRESSION_LOSSES[estimator.loss], {}

    def metrics(self) -> list:
        return [("train_r2", R2Score(on_train=True)), ("valid_r2", R2Score(on_train=False))]

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """The outputs on the targets' own scale, float64 (n, n_outputs)."""
        mean = torch.as_tensor(self.mean, dtype=torch.float64, device=outputs.device)
        scale = torch.as_tensor(self.scale, dtype=torch.float64, device=outputs.device)
        return outputs.double() * scale + mean

    def check_learned(self, name: str, outputs: torch.Tensor, targets: torch.Tensor,
                      reported: float | None, *, max_epochs: int, lr: float,
                      samples: str = "images",
                      gap_fix: str = EVAL_GAP_FIX) -> None:
        """Warns when eval-mode predictions of training images explain no more than their
        mean does (R² <= 0), or clearly less than training reported."""
        residual = ((outputs.double() - targets.double()) ** 2).sum(0)
        variance = ((targets.double() - targets.double().mean(0)) ** 2).sum(0)
        r2 = float(torch.where(variance > 0, 1 - residual / variance.clamp_min(1e-300),
                               torch.zeros_like(variance)).mean())
        warn_unless_learned(name, r2, 0.0, reported, ("the mean of the targets", "the mean"),
                             n=len(targets), max_epochs=max_epochs, lr=lr, metric="R²",
                             samples=samples, gap_fix=gap_fix)


class CNNRegressorBase(RegressorMixin, BaseCNNEstimator):
    """Regression: targets of shape (n,) or (n, k), standardised inside fit; ``predict``
    returns the shape fit saw; ``score`` is R²."""

    _parameter_constraints: dict = {
        **BaseCNNEstimator._parameter_constraints,
        "loss": [StrOptions(set(_REGRESSION_LOSSES))],
    }

    def _new_task(self, y, n_images: int, classes=None):
        return Regression.from_targets(self, y, n_images)

    def _fitted_task(self):
        return Regression.from_fitted(self)

    def partial_fit(self, X, y):
        """Train for one epoch, keeping the weights (and the target standardisation) from
        earlier calls.

        Parameters
        ----------
        X : array-like of images, or of series
            As in :meth:`fit`; the image shape (the series' channels) must not change
            between calls.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets; the first call's mean and standard deviation standardise all calls'.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        return self._fit(X, y, epochs=1, warm=True)

    def predict(self, X) -> np.ndarray:
        """Predicted targets for ``X``.

        Parameters
        ----------
        X : array-like of images, or of series
            As in :meth:`fit`: images of the training images' height, width and channels;
            series of the training series' channels.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The shape of the y that fit saw. With ``tta=True`` averaged with the
            predictions for the left-right mirrored images.
        """
        values = self._scores(X)
        return values if self.outputs_2d_ else values[:, 0]

    def score(self, X, y, sample_weight=None) -> float:
        """R² of the predictions for ``X`` against the true targets ``y``.

        Scikit-learn's :func:`sklearn.metrics.r2_score`, averaged uniformly over outputs
        when there are several: 1.0 is perfect, 0.0 is what predicting the mean of ``y``
        gets, and it is negative for worse.

        Parameters
        ----------
        X : array-like of images, or of series
            As in :meth:`fit`: images of the training images' height, width and channels;
            series of the training series' channels.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            True targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples in the score.

        Returns
        -------
        float
        """
        return super().score(X, y, sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        # The networks pool over positions (global average pooling): on tabular rows they
        # cannot weigh each column on its own, which scikit-learn's check of R² > 0.5 on
        # linear tabular data asks for (R² 0.1 there; 0.98 on the image task of
        # CNNRegressor's example).
        tags.regressor_tags.poor_score = True
        return tags
