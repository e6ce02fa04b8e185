"""The pictures (``plotting.py``): learning curves, filters, class activation maps."""

import matplotlib
import numpy as np
import pytest
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.plotting import plot_filters, plot_history
from sklearn_cnn.preprocessing import ChannelStandardizer

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def fitted(digits):
    X, y = digits
    clf = CNNClassifier(filters=(16, 32), lr=0.01, max_epochs=8, early_stopping=True, device="cpu",
                        random_state=0)
    return make_pipeline(ChannelStandardizer(), clf).fit(X[:300], y[:300]), X, y


def test_plot_history_renders_curves(fitted, tmp_path):
    pipe, _, _ = fitted
    fig = plot_history(pipe)
    loss, acc = fig.axes
    assert len(loss.lines) == 2 and len(acc.lines) == 2
    assert list(loss.lines[0].get_xdata()) == list(range(1, 9))
    fig.savefig(tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 1000


def test_every_plot_draws_where_ax_says(fitted):
    import matplotlib.pyplot as plt

    pipe, _, _ = fitted
    fig, (left, right, third) = plt.subplots(1, 3)
    assert plot_history(pipe, ax=(left, right)) is fig and left.get_title() == "Loss"
    assert plot_filters(pipe, ax=third) is fig
    with pytest.warns(FutureWarning, match="plot_history\\(ax=...\\)"):
        plot_history(pipe, axes=(left, right))


def test_plot_filters_renders_a_grid(fitted, tmp_path, without_learning_check):
    pipe, _, _ = fitted
    fig = plot_filters(pipe)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (4 * 4 - 1, 4 * 4 - 1)  # 16 filters of 3×3 in 4 rows of 4, 1-pixel gaps
    fig.savefig(tmp_path / "filters.png")
    with without_learning_check():  # 20 images, one epoch: a shape check
        rgb = TransferClassifier(backbone="resnet18", weights=None, freeze="none",
                                 input_size=32, max_epochs=1, device="cpu", random_state=0)
        rgb.fit(fitted[1][:20, :, :, None].repeat(3, -1), fitted[2][:20])
    assert plot_filters(rgb, max_filters=16).axes[0].images[0].get_array().shape == (31, 31, 3)


def test_confusion_matrix_display(fitted):
    pipe, X, y = fitted
    display = ConfusionMatrixDisplay.from_estimator(pipe, X[300:400], y[300:400])
    assert display.confusion_matrix.sum() == 100
    assert display.confusion_matrix.trace() > 70


def test_unfitted_is_an_error():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_history(CNNClassifier())


def test_plot_history_marks_the_restored_epoch(digits):
    X, y = digits
    clf = CNNClassifier(filters=(8, 16), batch_size=16, device="cpu", random_state=0,
                        max_epochs=30, lr=0.5, optimizer="sgd", lr_schedule=None,
                        early_stopping=True, patience=3).fit(X[:400], y[:400])
    best = int(np.argmin(clf.history_[:, "valid_loss"])) + 1
    assert best < len(clf.history_)
    labels = plot_history(clf).axes[0].get_legend_handles_labels()[1]
    assert f"restored (epoch {best})" in labels


def test_regressor_history_and_pictures(digits):
    from sklearn_cnn import CNNRegressor
    from sklearn_cnn.plotting import plot_class_activation_maps, plot_top_losses

    X, y = digits
    reg = CNNRegressor(filters=(8, 16), lr=0.01, max_epochs=6, early_stopping=True,
                       device="cpu", random_state=0).fit(X[:300], y[:300].astype(float))
    fig = plot_history(reg)
    assert [ax.get_title() for ax in fig.axes] == ["Loss", "R²"]
    assert len(fig.axes[1].lines) == 2  # train and validation R²
    fig = plot_class_activation_maps(reg, X[:4], y[:4])
    assert fig.axes[0].get_title().startswith("true 0\npred ")
    fig = plot_top_losses(reg, X[:50], y[:50].astype(float), k=4)
    assert "loss" in fig.axes[0].get_title() and "p(true)" not in fig.axes[0].get_title()
