"""sklearn_cnn.inspection: Grad-CAM, top losses, the learning-rate range test, the summary;
and the pictures of them in sklearn_cnn.plotting (which depends on inspection)."""

import matplotlib
import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline

matplotlib.use("Agg")

from sklearn_cnn import (  # noqa: E402
    CNNClassifier,
    CNNRegressor,
    TransferClassifier,
    inspection,
    plotting,
)
from sklearn_cnn.preprocessing import PixelScaler  # noqa: E402

FAST = dict(filters=(8, 16), batch_size=16, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def quadrants():
    """16×16 noise with one 6×6 patch of stripes in a random quadrant: horizontal stripes for
    class 'h', vertical for 'v'. The evidence for each image's class sits in a known
    quadrant, which differs from image to image."""
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 0.3, size=(160, 16, 16)).astype(np.float32)
    y = np.array(["h", "v"] * 80)
    quadrant = rng.randint(0, 4, size=160)
    stripes = np.zeros((6, 6), np.float32)
    stripes[::2] = 0.7
    for i in range(160):
        top, left = 8 * (quadrant[i] // 2) + 1, 8 * (quadrant[i] % 2) + 1
        X[i, top:top + 6, left:left + 6] += stripes if y[i] == "h" else stripes.T
    clf = CNNClassifier(**FAST, max_epochs=20, lr=0.01).fit(X, y)
    return clf, X, y, quadrant


def _mass_in_quadrant(maps, quadrant):
    masses = []
    for heat, q in zip(maps, quadrant):
        rows, cols = slice(8 * (q // 2), 8 * (q // 2) + 8), slice(8 * (q % 2), 8 * (q % 2) + 8)
        masses.append(heat[rows, cols].sum() / heat.sum())
    return np.array(masses)


def test_activation_maps_find_the_evidence(quadrants):
    clf, X, y, quadrant = quadrants
    assert clf.score(X, y) >= 0.95
    maps = inspection.class_activation_maps(clf, X)
    assert maps.shape == (160, 16, 16) and maps.dtype == np.float32
    assert maps.min() >= 0 and np.allclose(maps.max(axis=(1, 2)), 1)
    mass = _mass_in_quadrant(maps, quadrant)
    assert np.median(mass) > 0.5  # chance: 0.25
    assert (mass > 0.25).mean() > 0.8


def test_activation_maps_through_a_pipeline_and_other_layers(quadrants):
    _, X, y, _ = quadrants
    pipe = make_pipeline(PixelScaler(), CNNClassifier(**FAST, max_epochs=3)).fit(X * 255, y)
    maps = inspection.class_activation_maps(pipe, X[:4] * 255, layer="features.2")
    assert maps.shape == (4, 16, 16)
    with pytest.raises(ValueError, match="no layer 'nope'"):
        inspection.class_activation_maps(pipe, X[:4] * 255, layer="nope")
    with pytest.raises(ValueError, match=r"\['left'\] are not among the classes"):
        inspection.class_activation_maps(pipe, X[:4] * 255, target="left")


def test_activation_maps_of_a_transfer_classifier_with_a_frozen_backbone(
        quadrants, tmp_path, without_learning_check):
    import torchvision

    _, X, y, _ = quadrants
    path = tmp_path / "w.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with without_learning_check():  # random weights, frozen: the head cannot learn
        clf = TransferClassifier(backbone="resnet18", weights=path, input_size=32,
                                 max_epochs=1, device="cpu", random_state=0).fit(X, y)
    maps = inspection.class_activation_maps(clf, X[:3])  # gradients through frozen layers
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all() and maps.max() > 0


def test_top_losses_find_the_mislabelled_images(quadrants):
    clf, X, y, _ = quadrants
    wrong = y.copy()
    flipped = [3, 50, 77]
    wrong[flipped] = np.where(y[flipped] == "h", "v", "h")
    worst = inspection.top_losses(clf, X, wrong, k=5)
    assert set(flipped) <= set(worst.indices[:3].tolist())
    assert np.all(np.diff(worst.losses) <= 0) and worst.losses[0] > 1
    assert list(worst.y_true[:3]) == list(wrong[worst.indices[:3]])
    np.testing.assert_allclose(worst.losses, -np.log(worst.true_probability), rtol=1e-6)


def test_lr_find_leaves_the_estimator_untouched(digits):
    X, y = digits
    clf = CNNClassifier(**FAST, lr=0.05)
    params = clf.get_params()
    found = inspection.lr_find(clf, X[:256], y[:256], start=1e-5, end=10)
    assert clf.get_params() == params and not hasattr(clf, "net_")
    assert len(found.lrs) == len(found.losses) <= 100
    assert np.all(np.diff(found.lrs) > 0) and found.lrs[0] == pytest.approx(1e-5)
    assert 1e-5 <= found.suggestion <= 10
    # The loss falls, then rises again at the high end; the suggestion is on the way down.
    lowest = int(np.argmin(found.losses))
    assert found.losses[lowest] < found.losses[0] and found.losses[-1] > found.losses[lowest]
    assert found.suggestion < found.lrs[lowest]
    # Without batch norm, SGD at rates up to 1000 blows the loss up: the test stops there.
    exploding = CNNClassifier(**FAST, batch_norm=False, optimizer="sgd")
    blown = inspection.lr_find(exploding, X[:256], y[:256], start=1e-4, end=1e3)
    assert len(blown.lrs) < 100 and blown.suggestion < 1
    fig = plotting.plot_lr_find(found)
    assert "suggestion" in fig.axes[0].get_legend_handles_labels()[1][1]


@pytest.mark.slow
def test_the_suggested_lr_trains_digits(digits):
    from sklearn.model_selection import train_test_split

    X, y = digits
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    clf = CNNClassifier(random_state=0, max_epochs=10, device="cpu")
    found = inspection.lr_find(clf, X_train, y_train)
    tuned = clf.set_params(lr=found.suggestion).fit(X_train, y_train)
    assert tuned.score(X_test, y_test) >= 0.98, found.suggestion


def test_summary_of_an_estimator_or_a_pipeline(quadrants):
    clf, X, y, _ = quadrants
    assert inspection.summary(clf) == clf.summary()
    assert inspection.summary(make_pipeline(PixelScaler(), clf)) == clf.summary()
    with pytest.raises(TypeError, match="Expected a fitted sklearn-cnn estimator"):
        inspection.summary(PixelScaler())


def test_activation_maps_draw_over_the_images(quadrants):
    clf, X, y, _ = quadrants
    fig = plotting.plot_class_activation_maps(clf, X[:6], y[:6])
    assert len(fig.axes) == 6 and fig.axes[0].get_title().startswith("true")
    fig = plotting.plot_top_losses(clf, X, y, k=4)
    assert "p(true)" in fig.axes[0].get_title()


def test_regressors_and_label_sets_are_explained_too(quadrants):
    # The target: where the stripes are (a number: the quadrant), and label sets (top?
    # left?): Grad-CAM explains an output or a label, top losses rank by the task's loss.
    _, X, _, quadrant = quadrants
    reg = CNNRegressor(**FAST, max_epochs=15, lr=0.01).fit(X, quadrant.astype(float))
    maps = inspection.class_activation_maps(reg, X[:8])
    assert maps.shape == (8, 16, 16) and np.isfinite(maps).all()
    with pytest.raises(ValueError, match=r"index of an output, 0..0"):
        inspection.class_activation_maps(reg, X[:2], target=3)
    worst = inspection.top_losses(reg, X, quadrant.astype(float), k=4)
    errors = (reg.predict(X) - quadrant) ** 2
    np.testing.assert_allclose(worst.losses, np.sort(errors)[::-1][:4])
    sets = np.stack([quadrant < 2, quadrant % 2 == 0], axis=1).astype(int)
    clf = CNNClassifier(**FAST, max_epochs=15, lr=0.01).fit(X, sets)
    left = inspection.class_activation_maps(clf, X[:8], target=1)
    assert left.shape == (8, 16, 16)
    worst = inspection.top_losses(clf, X, sets, k=3)
    assert worst.y_true.shape == (3, 2) and worst.probability.shape == (3, 2)
    found = inspection.lr_find(CNNRegressor(**FAST), X, quadrant.astype(float), steps=20)
    assert 1e-6 <= found.suggestion <= 1
