"""What the tasks share: the warning of a model that did not learn.

A task is one small object (``_classification.Classification`` and ``MultiLabel``,
``_regression.Regression``) that turns the user's targets into what the loss sees (and
back), names the loss, the number of network outputs and the per-epoch metrics, holds the
fitted attributes that describe the targets (``classes_``), and says when a fitted model
has learned nothing, through :func:`warn_unless_learned`. The estimator (``_base.py``) runs
the same fit and predict for every task.
"""

from __future__ import annotations

import math
import warnings

from sklearn.exceptions import ConvergenceWarning

__all__ = ["EVAL_GAP_FIX", "warn_unless_learned"]

# What the eval-mode warning advises; an estimator can say more about its inputs.
EVAL_GAP_FIX = "Train longer (max_epochs), or lower lr or dropout."


def warn_unless_learned(name: str, score: float, baseline: float, reported: float | None,
                         baseline_names: tuple[str, str], *, n: int, max_epochs: int,
                         lr: float, metric: str = "accuracy", samples: str = "images",
                        gap_fix: str = EVAL_GAP_FIX) -> None:
    """The two warnings of a model that did not learn: no better than a ``baseline`` that
    ignores the inputs (``baseline_names``: what it answers, and its short name), or clearly
    worse in eval mode than training ``reported``, beyond the sampling noise of ``n``
    training ``samples`` ("images", "series"); ``gap_fix`` says what to do about the latter."""
    answer, short = baseline_names
    if score <= baseline and (reported is None or reported <= baseline + 0.05):
        warnings.warn(
            f"{name} predicts its own training {samples} no better than always answering "
            f"{answer} ({metric} {score:.3f}, {short} {baseline:.3f}): it has "
            f"not learned. Train longer (max_epochs={max_epochs}), try another learning rate "
            f"(lr={lr}; sklearn_cnn.inspection.lr_find suggests one), or check that X and y "
            "match.", ConvergenceWarning, stacklevel=6)
    elif reported is not None and reported - score > max(
            0.05, 2 * math.sqrt(max(reported * (1 - reported), 0.0) / n)):
        # More than 0.05 apart, and more than sampling noise on a small training set.
        warnings.warn(
            f"{name} predicts its training {samples} with {metric} {score:.3f} in eval "
            f"mode, but training reported {reported:.3f} in the last epoch: predictions "
            f"will be worse than the training log suggests. {gap_fix}", ConvergenceWarning,
            stacklevel=6)
