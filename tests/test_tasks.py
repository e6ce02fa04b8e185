"""The tasks (``_tasks.py``): regression (CNNRegressor, TransferRegressor) and label sets
in the classifiers, beside single-label classification."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.metrics import f1_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier, CNNRegressor, TransferClassifier, TransferRegressor
from sklearn_cnn._classification import LabelSetLoss
from sklearn_cnn.preprocessing import PixelScaler

FAST = dict(filters=(16, 32), max_epochs=20, lr=0.01, batch_size=32, device="cpu",
            random_state=0)


# ------------------------------------------------------------------------ regression
def test_regressor_predicts_numbers_in_the_shape_fit_saw(columns):
    X, y, _ = columns
    reg = CNNRegressor(**FAST).fit(X[:240], y[:240])
    assert reg.predict(X[240:]).shape == (120,) and reg.score(X[240:], y[240:]) > 0.9
    assert reg.n_outputs_ == 1 and not reg.outputs_2d_
    np.testing.assert_allclose(reg.target_mean_, [y[:240].mean()])
    np.testing.assert_allclose(reg.target_scale_, [y[:240].std()])
    assert "train_r2" in reg.history_[-1]
    two = np.stack([y, 10 * y], axis=1)
    reg2 = CNNRegressor(**FAST).fit(X[:240], two[:240])
    assert reg2.predict(X[240:]).shape == (120, 2) and reg2.score(X[240:], two[240:]) > 0.9
    column = CNNRegressor(**FAST).fit(X[:240], y[:240, None])
    assert column.predict(X[:3]).shape == (3, 1)


def test_targets_on_any_scale_train_alike(columns):
    # Standardised inside fit: degrees, thousands or fractions learn the same model.
    X, y, _ = columns
    small = CNNRegressor(**FAST).fit(X[:240], y[:240])
    large = CNNRegressor(**FAST).fit(X[:240], 1000 * y[:240] + 5e5)
    np.testing.assert_allclose((large.predict(X[240:]) - 5e5) / 1000, small.predict(X[240:]),
                               rtol=1e-3, atol=1e-3)
    assert large.score(X[240:], 1000 * y[240:] + 5e5) > 0.9


@pytest.mark.parametrize("loss, criterion", [("squared_error", torch.nn.MSELoss),
                                             ("absolute_error", torch.nn.L1Loss),
                                             ("huber", torch.nn.HuberLoss)])
def test_each_loss_trains(columns, loss, criterion):
    X, y, _ = columns
    reg = CNNRegressor(**FAST, loss=loss).fit(X[:240], y[:240])
    assert isinstance(reg.net_.criterion_, criterion)
    assert reg.score(X[240:], y[240:]) > 0.85


@pytest.mark.parametrize("y, error, match", [
    (lambda y: np.r_[y[:-1], np.nan], ValueError, "NaN"),
    (lambda y: np.zeros((len(y), 2, 2)), ValueError, r"3 dimensions.*\(n_samples, n_outputs\)"),
    (lambda y: np.array(["a", "b"] * (len(y) // 2)), ValueError,
     r"text values such as 'a'.*predicts numbers.*CNNClassifier"),
])
def test_bad_targets_are_refused(columns, y, error, match):
    X, targets, _ = columns
    with pytest.raises(error, match=match):
        CNNRegressor(**FAST).fit(X, y(targets))


def test_class_like_integer_targets_warn(columns):
    X, y, _ = columns
    with pytest.warns(UserWarning, match=r"integers with 8 distinct values.*class labels.*"
                                         r"y.astype\(float\)"):
        CNNRegressor(**{**FAST, "max_epochs": 1}).fit(X, np.round(y).astype(int))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        CNNRegressor(**{**FAST, "max_epochs": 1}).fit(X, np.round(y))  # floats: no warning


def test_a_regressor_that_learned_nothing_warns(columns):
    X, y, _ = columns
    with pytest.warns(ConvergenceWarning, match="no better than always answering the mean"):
        CNNRegressor(**{**FAST, "max_epochs": 2}).fit(np.zeros_like(X), y)


def test_warm_start_and_partial_fit_keep_the_standardisation(columns):
    X, y, _ = columns
    reg = CNNRegressor(**{**FAST, "max_epochs": 3, "batch_size": 8})
    reg.partial_fit(X[:120], y[:120])
    mean = reg.target_mean_.copy()
    reg.partial_fit(X[120:240], y[120:240])  # other targets: the first call's statistics
    assert reg.target_mean_ == mean != y[120:240].mean()
    assert len(reg.history_) == 2
    reg.set_params(warm_start=True).fit(X[:240], y[:240])
    assert len(reg.history_) == 5
    with pytest.raises(ValueError, match=r"y has 2 target\(s\) per image, but the model was "
                                         "fitted on 1"):
        reg.fit(X[:10], np.zeros((10, 2)))


def test_early_stopping_and_searches_use_regression_scorers(columns):
    X, y, _ = columns
    reg = CNNRegressor(**{**FAST, "max_epochs": 6}, early_stopping=True).fit(X, y)
    assert {"valid_loss", "valid_r2"} <= set(reg.history_[-1])
    search = GridSearchCV(CNNRegressor(**{**FAST, "max_epochs": 8}),
                          {"lr": [0.001, 0.01]}, cv=2, scoring="neg_mean_absolute_error")
    search.fit(X[:200], y[:200])
    assert search.best_params_ == {"lr": 0.01} and -search.best_score_ < 1.5


def test_transfer_regressor_trains_on_cached_features_as_on_images(tmp_path, monkeypatch):
    import torchvision

    import sklearn_cnn.transfer as transfer

    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(60, 16, 16, 3)).astype(np.uint8)
    brightness = images.mean(axis=(1, 2, 3))
    torch.manual_seed(0)
    path = tmp_path / "w.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    kwargs = dict(backbone="resnet18", weights=path, input_size=16, max_epochs=3, lr=0.01,
                  device="cpu", random_state=0, precision="float32")
    # Frozen random features explain no brightness: both fits say so.
    with pytest.warns(ConvergenceWarning, match="the mean of the targets"):
        cached = TransferRegressor(**kwargs).fit(images, brightness)
    with monkeypatch.context() as patch, pytest.warns(ConvergenceWarning):
        patch.setattr(transfer, "feature_cache_split", lambda module: None)
        full = TransferRegressor(**kwargs).fit(images, brightness)
    np.testing.assert_allclose(cached.history_[:, "train_loss"], full.history_[:, "train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(cached.predict(images), full.predict(images), rtol=1e-4)
    assert cached.predict(images[:4]).shape == (4,)


# ------------------------------------------------------------------------ label sets
def test_label_sets_in_and_out(columns):
    X, _, labels = columns
    clf = CNNClassifier(**FAST).fit(X[:240], labels[:240])
    predicted = clf.predict(X[240:])
    assert predicted.shape == (120, 3) and predicted.dtype == np.int8
    assert set(np.unique(predicted)) <= {0, 1}
    proba = clf.predict_proba(X[240:])
    assert proba.shape == (120, 3) and not np.allclose(proba.sum(1), 1)
    np.testing.assert_array_equal(predicted, proba > 0.5)
    assert clf.classes_.tolist() == [0, 1, 2] and clf.target_type_ == "multilabel-indicator"
    assert clf.score(X[240:], labels[240:]) > 0.8  # subset accuracy
    assert f1_score(labels[240:], predicted, average="samples") > 0.8
    assert isinstance(clf.net_.criterion_, LabelSetLoss)


def test_label_sets_in_a_pipeline_and_cross_validation(columns):
    X, _, labels = columns
    pipe = make_pipeline(PixelScaler(), CNNClassifier(**{**FAST, "max_epochs": 10}))
    scores = cross_val_score(pipe, X[:240], labels[:240], cv=2, scoring="f1_samples")
    assert scores.min() > 0.7


def test_a_label_that_never_changes_warns(columns):
    X, _, labels = columns
    constant = labels.copy()
    constant[:, 1] = 0
    with pytest.warns(UserWarning, match=r"1 label column\(s\) of y never change.*1 \(always "
                                         r"0\)"):
        CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, constant)


def test_label_weights_and_smoothing_per_label():
    loss = LabelSetLoss(pos_weight=torch.tensor([2.0, 1.0]), neg_weight=torch.tensor([1.0, 3.0]))
    logits, target = torch.tensor([[0.3, -1.2]]), torch.tensor([[1.0, 0.0]])
    expected = -(2.0 * torch.nn.functional.logsigmoid(torch.tensor(0.3))
                 + 3.0 * torch.nn.functional.logsigmoid(torch.tensor(1.2))) / 2
    torch.testing.assert_close(loss(logits, target), expected)
    smooth = LabelSetLoss(smoothing=0.2)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, torch.tensor([[0.9, 0.1]]))
    torch.testing.assert_close(smooth(logits, target), plain)


def test_class_weights_mean_positive_weights_per_label(columns):
    X, _, labels = columns
    balanced = CNNClassifier(**{**FAST, "max_epochs": 1}, class_weight="balanced").fit(
        X, labels)
    positives = labels.mean(axis=0)
    np.testing.assert_allclose(balanced.net_.criterion_.pos_weight.numpy(),
                               1 / (2 * positives), rtol=1e-5)
    manual = CNNClassifier(**{**FAST, "max_epochs": 1}, class_weight={2: 4.0}).fit(X, labels)
    np.testing.assert_allclose(manual.net_.criterion_.pos_weight.numpy(), [1, 1, 4])
    with pytest.raises(ValueError, match="label indices 0..2"):
        CNNClassifier(**FAST, class_weight={"a": 2.0}).fit(X, labels)


def test_mixup_mixes_label_sets(columns):
    X, _, labels = columns
    clf = CNNClassifier(**{**FAST, "max_epochs": 3}, augment="mixup").fit(X, labels)
    assert clf.predict(X[:5]).shape == (5, 3)


def test_warm_start_refuses_another_kind_of_target(columns):
    X, y, labels = columns
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}).fit(X, labels)
    with pytest.raises(ValueError, match="fitted on label sets"):
        clf.set_params(warm_start=True).fit(X, (y > 3).astype(int))
    single = clone(clf).set_params(warm_start=False).fit(X, (y > 3).astype(int))
    assert single.predict(X[:3]).shape == (3,)


def test_transfer_classifier_takes_label_sets(columns):
    X, _, labels = columns
    clf = TransferClassifier(backbone="mobilenet_v3_small", weights=None, freeze="none",
                             input_size=16, max_epochs=1, device="cpu", random_state=0)
    assert clf.fit(X[:64], labels[:64]).predict(X[:4]).shape == (4, 3)


@pytest.mark.parametrize("y, message", [
    ([[0, 1], [1]] * 4, "MultiLabelBinarizer"),
    ([{"cat"}, {"cat", "dog"}] * 4, "MultiLabelBinarizer"),
    (np.array([[0, 1], [1, np.nan]] * 4), "missing or infinite"),
])
def test_label_sets_in_the_wrong_form_are_explained(y, message):
    X = np.random.default_rng(0).random((8, 8, 8), dtype=np.float32)
    with pytest.raises(ValueError, match=message):
        CNNClassifier(max_epochs=1).fit(X, y)


def test_a_column_of_labels_as_nested_lists_is_one_label_per_image():
    X = np.random.default_rng(0).random((8, 8, 8), dtype=np.float32)
    with pytest.warns(DataConversionWarning):
        model = CNNClassifier(max_epochs=1, batch_size=4).fit(X, [[0], [1]] * 4)
    assert model.classes_.tolist() == [0, 1]
