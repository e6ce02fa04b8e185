"""What differs between the tasks the estimators learn: one small object per task, and the
estimator face of each (the classifier and regressor bases).

A task turns the user's targets into what the loss sees (and back), names the loss, the
number of network outputs and the per-epoch metrics, holds the fitted attributes that
describe the targets (``classes_``), and says when a fitted model has learned nothing.
The estimator (``_base.py``) runs the same fit and predict for every task; the bases here
add what scikit-learn expects of a classifier or a regressor.
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import BaseCNNEstimator
from ._validation import check_class_labels
from .callbacks import Accuracy


class Classification:
    """Single-label classification: one logit per class, softmax, cross-entropy.

    Parameters
    ----------
    classes : ndarray of shape (n_classes,)
        The sorted class labels (``classes_``).
    """

    stratify = True
    metric = "acc"

    def __init__(self, classes: np.ndarray):
        self.classes = classes

    @classmethod
    def from_targets(cls, estimator, y, n_images: int, classes=None) -> Classification:
        """The task of a first fit: the classes are ``classes`` when given (partial_fit),
        else those in ``y``."""
        y = check_class_labels(y, n_images)
        given = classes is not None
        classes = np.unique(np.asarray(classes) if given else y)
        if len(classes) < 2:
            if given:
                raise ValueError(
                    f"partial_fit's classes argument must list every class that any call will "
                    f"see, at least 2, but it holds only {classes.tolist()!r}. Pass "
                    "classes=[...] with all of them on the first call.")
            raise ValueError(f"{type(estimator).__name__} needs at least 2 classes to train, "
                             f"but y has only one class: {classes[0]!r}.")
        return cls(classes)

    @classmethod
    def from_fitted(cls, estimator) -> Classification:
        return cls(estimator.classes_)

    def fitted_attributes(self) -> dict:
        return {"classes_": self.classes}

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def encode(self, y, n_images: int) -> np.ndarray:
        """Class indices (int64) of the labels in ``y``."""
        y = check_class_labels(y, n_images)
        unseen = np.setdiff1d(y, self.classes)
        if unseen.size:
            raise ValueError(f"y has labels {unseen.tolist()} that are not among the classes "
                             f"{self.classes.tolist()}; pass every class in `classes` on the "
                             "first call to partial_fit.")
        return np.searchsorted(self.classes, y).astype(np.int64)

    def criterion(self, estimator, targets: np.ndarray | None) -> tuple[type, dict]:
        """Cross-entropy with the estimator's ``class_weight`` (learned from the encoded
        ``targets``; None when only rebuilding a fitted model) and ``label_smoothing``."""
        weights = None if targets is None else self._class_weights(estimator.class_weight,
                                                                    targets)
        return nn.CrossEntropyLoss, {
            "weight": weights,
            "label_smoothing": float(estimator.label_smoothing)}

    def _class_weights(self, class_weight, targets) -> torch.Tensor | None:
        if class_weight is None:
            return None
        classes = self.classes
        if class_weight == "balanced":
            weights = compute_class_weight("balanced", classes=np.arange(len(classes)),
                                           y=targets)
        else:
            unknown = set(class_weight) - set(classes.tolist())
            if unknown:
                raise ValueError(f"class_weight names classes that are not in y: "
                                 f"{sorted(map(str, unknown))}; the classes are "
                                 f"{classes.tolist()}.")
            weights = [class_weight.get(c, 1.0) for c in classes.tolist()]
            present = np.bincount(targets, minlength=len(classes)) > 0
            if not np.any(np.asarray(weights)[present] > 0):
                raise ValueError(
                    f"class_weight={class_weight!r} gives every class in y a weight of 0: "
                    "the loss would be 0/0 (NaN) and nothing would train. Give at least one "
                    "class a positive weight.")
        return torch.as_tensor(weights, dtype=torch.float32)

    def metrics(self) -> list:
        return [("train_acc", Accuracy(on_train=True)), ("valid_acc", Accuracy(on_train=False))]

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """Probabilities from logits: one softmax in float64, so that each row sums to 1 to
        the last bit scikit-learn checks."""
        return outputs.double().softmax(dim=1)

    def check_learned(self, name: str, outputs: torch.Tensor, targets: torch.Tensor,
                      reported: float | None, *, max_epochs: int, lr: float) -> None:
        """Warns when eval-mode predictions of training images (``outputs``) do no better
        than the most frequent class, or fall clearly below the accuracy training
        ``reported``."""
        accuracy = float((outputs.argmax(1) == targets).float().mean())
        majority = float(torch.bincount(targets).max()) / len(targets)
        _warn_unless_learned(name, accuracy, majority, reported,
                             ("the most frequent class", "majority class"), n=len(targets),
                             max_epochs=max_epochs, lr=lr)


def _warn_unless_learned(name: str, score: float, baseline: float, reported: float | None,
                         baseline_names: tuple[str, str], *, n: int, max_epochs: int,
                         lr: float, metric: str = "accuracy") -> None:
    """The two warnings of a model that did not learn: no better than a ``baseline`` that
    ignores the images (``baseline_names``: what it answers, and its short name), or clearly
    worse in eval mode than training ``reported``, beyond the sampling noise of ``n``
    images."""
    answer, short = baseline_names
    if score <= baseline and (reported is None or reported <= baseline + 0.05):
        warnings.warn(
            f"{name} predicts its own training images no better than always answering "
            f"{answer} ({metric} {score:.3f}, {short} {baseline:.3f}): it has "
            f"not learned. Train longer (max_epochs={max_epochs}), try another learning rate "
            f"(lr={lr}; sklearn_cnn.inspection.lr_find suggests one), or check that X and y "
            "match.", ConvergenceWarning, stacklevel=6)
    elif reported is not None and reported - score > max(
            0.05, 2 * math.sqrt(max(reported * (1 - reported), 0.0) / n)):
        # More than 0.05 apart, and more than sampling noise on a small training set.
        warnings.warn(
            f"{name} predicts its training images with {metric} {score:.3f} in eval "
            f"mode, but training reported {reported:.3f} in the last epoch: predictions "
            "will be worse than the training log suggests. Train longer (max_epochs), "
            "or lower lr or dropout.", ConvergenceWarning, stacklevel=6)


class CNNClassifierBase(ClassifierMixin, BaseCNNEstimator):
    """Classification: ``classes_``, ``predict_proba``, ``predict``, ``partial_fit`` with
    ``classes``, class weights and label smoothing."""

    _parameter_constraints: dict = {
        **BaseCNNEstimator._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def _new_task(self, y, n_images: int, classes=None):
        return Classification.from_targets(self, y, n_images, classes)

    def _fitted_task(self):
        return Classification.from_fitted(self)

    def _check_params(self) -> None:
        super()._check_params()
        if isinstance(self.class_weight, dict):
            for label, weight in self.class_weight.items():
                if not isinstance(weight, Real) or not math.isfinite(weight) or weight < 0:
                    raise ValueError(
                        f"class_weight[{label!r}] is {weight!r}; class weights must be finite "
                        "numbers >= 0 (a negative weight makes the loss reward mistakes).")

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
        return self._fit(X, y, epochs=1, warm=True, classes=classes)

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
        return self._scores(X)

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
