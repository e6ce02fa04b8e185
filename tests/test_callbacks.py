"""Our skorch callbacks (``callbacks.py``): metrics counted from the batches, the
finite-loss check and the learning-rate schedules."""

import math

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, r2_score

from sklearn_cnn import CNNClassifier
from sklearn_cnn.callbacks import Accuracy, CheckFiniteLoss, R2Score, make_lr_scheduler

FAST = dict(filters=(8,), max_epochs=4, batch_size=32, device="cpu", random_state=0)


class _History:
    """The part of a skorch net that the metric callbacks touch."""

    def __init__(self):
        self.rows = [{"epoch": 1}]

    def record(self, key, value):
        self.rows[-1][key] = value

    def __getitem__(self, index):
        return self.rows[index]


class _Net:
    def __init__(self, lr=0.1):
        self.history, self.lr = _History(), lr


def _run(metric, batches, training=True):
    net = _Net()
    metric.on_epoch_begin(net)
    for y_pred, target in batches:
        metric.on_batch_end(net, batch=(None, target), training=training, y_pred=y_pred)
    metric.on_epoch_end(net)
    return net.history[-1]


def test_accuracy_counts_the_batches_it_is_given():
    rng = np.random.RandomState(0)
    logits, labels = rng.normal(size=(50, 4)), rng.randint(0, 4, 50)
    batches = [(torch.tensor(logits[i:i + 16]), torch.tensor(labels[i:i + 16]))
               for i in range(0, 50, 16)]
    row = _run(Accuracy(on_train=True), batches)
    assert row["train_acc"] == pytest.approx(accuracy_score(labels, logits.argmax(1)))
    assert "valid_acc" not in _run(Accuracy(on_train=False), batches, training=True)
    # Soft targets (mixup) count their larger share.
    soft = [(p, torch.nn.functional.one_hot(t, 4) * 0.7 + 0.075) for p, t in batches]
    assert _run(Accuracy(), soft)["train_acc"] == row["train_acc"]


def test_multilabel_accuracy_is_subset_accuracy():
    rng = np.random.RandomState(0)
    logits, labels = rng.normal(size=(40, 3)), rng.randint(0, 2, size=(40, 3))
    labels[:20] = logits[:20] > 0  # half of them all right
    row = _run(Accuracy(multilabel=True), [(torch.tensor(logits), torch.tensor(labels))])
    assert row["train_acc"] == pytest.approx(accuracy_score(labels, logits > 0))


def test_r2_is_scikit_learns_averaged_over_outputs():
    rng = np.random.RandomState(0)
    target = rng.normal(size=(60, 2)) * [1.0, 5.0]
    pred = target + rng.normal(size=(60, 2))
    batches = [(torch.tensor(pred[i:i + 25]), torch.tensor(target[i:i + 25]))
               for i in range(0, 60, 25)]
    row = _run(R2Score(on_train=False), batches, training=False)
    assert row["valid_r2"] == pytest.approx(r2_score(target, pred), rel=1e-9)
    one = _run(R2Score(), [(torch.tensor(pred[:, 0]), torch.tensor(target[:, 0]))])
    assert one["train_r2"] == pytest.approx(r2_score(target[:, 0], pred[:, 0]), rel=1e-9)


def test_a_non_finite_loss_stops_training_with_advice():
    net = _Net(lr=0.5)
    net.history.rows[-1].update(train_loss=math.nan)
    with pytest.raises(FloatingPointError, match=r"train loss became nan in epoch 1.*lr=0.05"):
        CheckFiniteLoss().on_epoch_end(net)
    net.history.rows[-1].update(train_loss=0.3, valid_loss=math.inf)
    with pytest.raises(FloatingPointError, match="valid loss became inf"):
        CheckFiniteLoss().on_epoch_end(net)
    net.history.rows[-1].update(valid_loss=0.2)
    CheckFiniteLoss().on_epoch_end(net)  # finite: nothing happens


def test_schedules_by_name():
    step = make_lr_scheduler("step", epochs=9, batches_per_epoch=2, monitor="train_loss")
    assert (step.policy, step.step_size, step.gamma) == ("StepLR", 3, 0.1)
    plateau = make_lr_scheduler("plateau", epochs=9, batches_per_epoch=2, monitor="valid_loss")
    assert (plateau.policy, plateau.monitor) == ("ReduceLROnPlateau", "valid_loss")
    onecycle = make_lr_scheduler("onecycle", epochs=3, batches_per_epoch=5, monitor="x")
    assert onecycle.step_every == "batch" and onecycle.total_steps == 15


@pytest.mark.parametrize("schedule, expected", [
    (None, [0.01] * 6),
    ("cosine", [0.01 * (1 + np.cos(np.pi * e / 6)) / 2 for e in range(6)]),
    ("step", [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001]),
])
def test_epoch_schedules(digits, schedule, expected):
    X, y = digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 6}, lr=0.01, lr_schedule=schedule)
    np.testing.assert_allclose(clf.fit(X[:100], y[:100]).history_[:, "lr"], expected, rtol=1e-6)


def test_onecycle_steps_per_batch(digits):
    X, y = digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 4}, lr=0.01, lr_schedule="onecycle").fit(
        X[:128], y[:128])
    lrs = clf.history_[:, "lr"]
    assert lrs[0] == pytest.approx(0.01 / 25)  # OneCycleLR starts at max_lr / div_factor
    assert max(lrs) > lrs[0] and lrs[-1] < max(lrs)
    assert clf.net_.callbacks_[[n for n, _ in clf.net_.callbacks_].index("lr_schedule")][
        1].lr_scheduler_.last_epoch == 4 * 4


def test_plateau_halves_the_rate_when_the_loss_stalls(digits):
    X, y = digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 12}, lr=0.5, optimizer="sgd",
                        lr_schedule="plateau", early_stopping=True, patience=12)
    lrs = clf.fit(X[:300], y[:300]).history_[:, "lr"]
    assert lrs[0] == 0.5 and min(lrs) <= 0.25
    assert all(b in (a, a / 2) for a, b in zip(lrs, lrs[1:]))
