"""Classification, single-label and label sets: the task objects, and the estimator face
that scikit-learn expects of a classifier (``classes_``, ``predict_proba``,
``partial_fit(classes=)``, class weights and label smoothing).
"""

from __future__ import annotations

import math
import warnings
from numbers import Real

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.validation import check_is_fitted
from torch import nn

from ._base import BaseCNNEstimator
from ._tasks import EVAL_GAP_FIX, warn_unless_learned
from ._validation import check_class_labels, check_label_indicator
from .callbacks import Accuracy

__all__ = ["CNNClassifierBase", "Classification", "LabelSetLoss", "MultiLabel"]


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
        return {"classes_": self.classes,
                "target_type_": "binary" if len(self.classes) == 2 else "multiclass"}

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
                      reported: float | None, *, max_epochs: int, lr: float,
                      samples: str = "images",
                      gap_fix: str = EVAL_GAP_FIX) -> None:
        """Warns when eval-mode predictions of training images (``outputs``) do no better
        than the most frequent class, or fall clearly below the accuracy training
        ``reported``."""
        accuracy = float((outputs.argmax(1) == targets).float().mean())
        majority = float(torch.bincount(targets).max()) / len(targets)
        warn_unless_learned(name, accuracy, majority, reported,
                             ("the most frequent class", "majority class"), n=len(targets),
                             max_epochs=max_epochs, lr=lr, samples=samples, gap_fix=gap_fix)


class LabelSetLoss(nn.Module):
    """Binary cross-entropy over label sets, from logits, with per-label weights of the
    positive and negative examples and label smoothing.

    ``loss = -mean(w_pos * t * log σ(x) + w_neg * (1 - t) * log(1 - σ(x)))``, where the
    targets ``t`` become ``smoothing / 2`` and ``1 - smoothing / 2`` for 0 and 1 (soft
    targets of mixup mix in between). torch's ``BCEWithLogitsLoss`` weighs the positives
    only relative to the negatives (``pos_weight``), which cannot express scikit-learn's
    "balanced" weights for both.

    Parameters
    ----------
    pos_weight, neg_weight : torch.Tensor of shape (n_labels,) or None, default=None
        Weights of each label's positive and negative examples; None is 1.
    smoothing : float, default=0.0
        Label smoothing, in [0, 1).
    """

    def __init__(self, pos_weight: torch.Tensor | None = None,
                 neg_weight: torch.Tensor | None = None, smoothing: float = 0.0):
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.register_buffer("neg_weight", neg_weight)
        self.smoothing = smoothing

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        target = target.to(logits.dtype)
        if self.smoothing:
            target = target * (1 - self.smoothing) + self.smoothing / 2
        positive = target * nn.functional.logsigmoid(logits)
        negative = (1 - target) * nn.functional.logsigmoid(-logits)
        if self.pos_weight is not None:
            positive = positive * self.pos_weight
        if self.neg_weight is not None:
            negative = negative * self.neg_weight
        return -(positive + negative).mean()


class MultiLabel:
    """Multi-label classification: one logit per label, sigmoid, binary cross-entropy; y and
    predictions are binary indicator matrices (n_samples, n_labels).

    Parameters
    ----------
    n_labels : int
        Columns of the indicator matrix (``classes_`` is ``arange(n_labels)``, as
        MLPClassifier sets it).
    dtype : str
        The dtype of the training indicator matrix, which ``predict`` returns.
    """

    stratify = False
    metric = "acc"

    def __init__(self, n_labels: int, dtype: str):
        self.n_labels, self.dtype = n_labels, dtype

    @classmethod
    def from_targets(cls, estimator, y, n_images: int, classes=None) -> MultiLabel:
        y = check_label_indicator(y, n_images)
        if y.shape[1] < 1:
            raise ValueError("y has no label columns; give each image a set of labels, "
                             "one column per label.")
        if classes is not None and len(classes) != y.shape[1]:
            raise ValueError(f"partial_fit's classes argument has {len(classes)} entries, but "
                             f"y has {y.shape[1]} label columns; for label sets, classes is "
                             "the label indices 0..n_labels-1, or None.")
        constant = [(j, int(y[0, j])) for j in range(y.shape[1]) if (y[:, j] == y[0, j]).all()]
        if constant:
            described = ", ".join(f"{j} (always {v})" for j, v in constant[:5])
            warnings.warn(
                f"{len(constant)} label column(s) of y never change in the training data: "
                f"{described}. The model can only learn to always answer that for them; give "
                "it images with and without each label, or drop those columns.",
                UserWarning, stacklevel=5)
        return cls(y.shape[1], np.dtype(y.dtype).str)

    @classmethod
    def from_fitted(cls, estimator) -> MultiLabel:
        return cls(len(estimator.classes_), estimator.indicator_dtype_)

    def fitted_attributes(self) -> dict:
        return {"classes_": np.arange(self.n_labels), "target_type_": "multilabel-indicator",
                "indicator_dtype_": self.dtype}

    @property
    def n_outputs(self) -> int:
        return self.n_labels

    def encode(self, y, n_images: int) -> np.ndarray:
        if np.ndim(y) != 2:
            raise ValueError(f"y has shape {np.shape(y)}, but this model was fitted on label "
                             f"sets (an indicator matrix with {self.n_labels} columns). Pass "
                             "label sets, or clone the estimator to learn single labels.")
        y = check_label_indicator(y, n_images)
        if y.shape[1] != self.n_labels:
            raise ValueError(f"y has {y.shape[1]} label columns, but the model was fitted on "
                             f"{self.n_labels}.")
        return y.astype(np.float32)

    def criterion(self, estimator, targets: np.ndarray | None) -> tuple[type, dict]:
        """:class:`LabelSetLoss` with the estimator's ``class_weight`` per label and its
        ``label_smoothing``."""
        pos, neg = None, None
        if targets is not None and estimator.class_weight is not None:
            pos, neg = self._label_weights(estimator.class_weight, targets)
        return LabelSetLoss, {"pos_weight": pos, "neg_weight": neg,
                              "smoothing": float(estimator.label_smoothing)}

    def _label_weights(self, class_weight, targets: np.ndarray):
        if class_weight == "balanced":
            # scikit-learn's "balanced" per label: n / (2 * count) for positives and negatives.
            n, positives = len(targets), targets.sum(axis=0)
            pos = n / (2 * np.maximum(positives, 1))
            neg = n / (2 * np.maximum(n - positives, 1))
            return (torch.as_tensor(pos, dtype=torch.float32),
                    torch.as_tensor(neg, dtype=torch.float32))
        unknown = [k for k in class_weight if not (isinstance(k, (int, np.integer))
                                                    and 0 <= k < self.n_labels)]
        if unknown:
            raise ValueError(
                f"class_weight names {unknown[:5]}, but with label sets its keys are label "
                f"indices 0..{self.n_labels - 1} (the columns of y), each weighing that "
                "label's positive examples.")
        pos = [float(class_weight.get(j, 1.0)) for j in range(self.n_labels)]
        return torch.as_tensor(pos, dtype=torch.float32), None

    def metrics(self) -> list:
        return [("train_acc", Accuracy(on_train=True, multilabel=True)),
                ("valid_acc", Accuracy(on_train=False, multilabel=True))]

    def scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """Each label's probability."""
        return outputs.double().sigmoid()

    def check_learned(self, name: str, outputs: torch.Tensor, targets: torch.Tensor,
                      reported: float | None, *, max_epochs: int, lr: float,
                      samples: str = "images",
                      gap_fix: str = EVAL_GAP_FIX) -> None:
        """Warns when eval-mode predictions of training images get the labels right no
        more often than answering each label's more frequent value, or when their subset
        accuracy falls clearly below what training reported."""
        truth = targets > 0.5
        predicted = outputs > 0
        label_accuracy = float((predicted == truth).float().mean())
        majority = float(torch.maximum(truth.float().mean(0), 1 - truth.float().mean(0)).mean())
        subset = float((predicted == truth).all(dim=1).float().mean())
        if label_accuracy <= majority:
            warn_unless_learned(name, label_accuracy, majority, None,
                                 ("each label's more frequent value", "majority"),
                                 n=len(targets), max_epochs=max_epochs, lr=lr,
                                 metric="label accuracy", samples=samples, gap_fix=gap_fix)
        else:
            warn_unless_learned(name, subset, -1.0, reported, ("", ""), n=len(targets),
                                 max_epochs=max_epochs, lr=lr, metric="subset accuracy",
                                 samples=samples, gap_fix=gap_fix)


class CNNClassifierBase(ClassifierMixin, BaseCNNEstimator):
    """Classification: ``classes_``, ``predict_proba``, ``predict``, ``partial_fit`` with
    ``classes``, class weights and label smoothing."""

    _parameter_constraints: dict = {
        **BaseCNNEstimator._parameter_constraints,
        "class_weight": [None, StrOptions({"balanced"}), dict],
        "label_smoothing": [Interval(Real, 0, 1, closed="left")],
    }

    def _new_task(self, y, n_images: int, classes=None):
        if _is_label_sets(y):
            return MultiLabel.from_targets(self, y, n_images, classes)
        return Classification.from_targets(self, y, n_images, classes)

    def _fitted_task(self):
        if getattr(self, "target_type_", None) == "multilabel-indicator":
            return MultiLabel.from_fitted(self)
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
        X : array-like of images, or of series
            As in :meth:`fit`; the image shape (the series' channels) must not change
            between calls.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, all among ``classes``; or label sets (an indicator matrix).
        classes : array-like of shape (n_classes,), default=None
            Every class that any call will see; needed on the first call unless ``y``
            holds them all. Ignored on later calls, and for label sets (whose classes are
            the columns of y).

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        return self._fit(X, y, epochs=1, warm=True, classes=classes)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities for ``X``.

        Parameters
        ----------
        X : array-like of images, or of series
            As in :meth:`fit`: images of the training images' height, width and channels;
            series of the training series' channels.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Probabilities, columns in the order of ``classes_``; for label sets, each
            label's probability (rows need not sum to 1). With ``tta=True`` they are
            averaged with those of the left-right mirrored images.
        """
        return self._scores(X)

    def predict(self, X) -> np.ndarray:
        """Predicted class labels for ``X``.

        Parameters
        ----------
        X : array-like of images, or of series
            As in :meth:`fit`: images of the training images' height, width and channels;
            series of the training series' channels.

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_labels)
            Labels from ``classes_``; for a model fitted on label sets, the indicator
            matrix (0/1 in the dtype of the training y) of the labels whose probability
            is over 0.5.
        """
        check_is_fitted(self)
        proba = self.predict_proba(X)
        if getattr(self, "target_type_", None) == "multilabel-indicator":
            return (proba > 0.5).astype(self.indicator_dtype_)
        return self.classes_[proba.argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


def _is_label_sets(y) -> bool:
    """Whether ``y`` is meant as label sets: a matrix of several columns (scikit-learn's
    "multilabel-indicator"; one of other values gets the label-set checks' error, which
    says what label sets are, rather than "y should be a 1d array")."""
    from sklearn.utils.multiclass import type_of_target

    try:
        with warnings.catch_warnings():  # NaN cast inside type_of_target; refused later
            warnings.simplefilter("ignore", RuntimeWarning)
            if type_of_target(y) == "multilabel-indicator":
                return True
    except (ValueError, TypeError):  # NaN, mixed types: the shape decides whose checks explain
        pass
    try:
        shape = getattr(y, "shape", None) or np.shape(np.asarray(y, dtype=object))
    except ValueError:  # ragged rows: the classification checks say so
        return False
    return len(shape) == 2 and shape[1] > 1
