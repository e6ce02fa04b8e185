"""TimeSeriesClassifier and TimeSeriesRegressor: inputs, tasks, training parameters,
persistence, export, inspection and the errors of bad input."""

import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

import sklearn_cnn
from sklearn_cnn import TimeSeriesClassifier, TimeSeriesRegressor
from sklearn_cnn.inspection import class_activation_maps

# Small networks and few epochs: the mechanics, on data a few epochs learn.
FAST = dict(filters=(8, 16, 8), max_epochs=12, lr=0.01, device="cpu", random_state=0,
            verbose=0)


def _bumps(n=60, length=48, channels=1, seed=0):
    """Noise with a bump of 6 time points somewhere in channel 0: up for class "up", down
    for class "down". The evidence is where the bump is."""
    rng = np.random.RandomState(seed)
    X = 0.3 * rng.randn(n, channels, length)
    y = np.array(["down", "up"] * (n // 2))
    where = rng.randint(2, length - 8, size=n)
    for i in range(n):
        X[i, 0, where[i]:where[i] + 6] += 2.0 if y[i] == "up" else -2.0
    return X, y, where


@pytest.fixture(scope="module")
def bumps():
    return _bumps()


@pytest.fixture(scope="module")
def fitted(bumps):
    X, y, _ = bumps
    return TimeSeriesClassifier(**FAST).fit(X, y)


def _ragged(X):
    """The series of X cut to lengths 30..47, as a list."""
    return [x[:, :30 + i % 18] for i, x in enumerate(X)]


# ------------------------------------------------------------------------------ inputs
def test_string_labels_and_the_layouts_aeon_has(bumps, fitted):
    X, y, _ = bumps
    assert fitted.input_shape_ == (1, 48) and fitted.n_features_in_ == 48
    assert fitted.score(X, y) > 0.95
    assert set(fitted.classes_) == {"down", "up"}
    # (n, n_timepoints) is univariate: the same series, the same predictions
    np.testing.assert_array_equal(fitted.predict_proba(X[:, 0]), fitted.predict_proba(X))


def test_unequal_lengths_train_and_predict_with_padding_ignored(bumps):
    X, y, _ = bumps
    series = _ragged(X)
    clf = TimeSeriesClassifier(**FAST).fit(series, y)
    assert clf.input_shape_ == (1, 47) and not hasattr(clf, "n_features_in_")
    assert clf.score(series, y) > 0.9
    alone = np.vstack([clf.predict_proba([s]) for s in series[:6]])
    np.testing.assert_allclose(clf.predict_proba(series[:6]), alone, atol=1e-6)


def test_the_padding_changes_no_training_statistic(bumps):
    # Series padded in a batch train as they would alone: the same series, padded by a
    # longer one that is left out of the loss, give the same batch-norm statistics.
    from sklearn_cnn.networks1d import FCN

    torch.manual_seed(0)
    net = FCN(in_channels=1, n_outputs=2, filters=(4, 4))
    x = torch.randn(3, 1, 20)
    padded = torch.full((3, 1, 32), float("nan"))
    padded[:, :, :20] = x
    net.train()
    net(x)
    short = net.blocks[0].block.norm.running_mean.clone()
    net.blocks[0].block.norm.reset_running_stats()
    net(padded)
    torch.testing.assert_close(net.blocks[0].block.norm.running_mean, short)


def test_predict_takes_other_lengths_as_a_list(fitted, bumps):
    X, _, _ = bumps
    with pytest.raises(ValueError, match="expecting 48 features.*pass them as a list"):
        fitted.predict(X[:, :, :40])
    assert fitted.predict(list(X[:5, :, :40])).shape == (5,)


@pytest.mark.parametrize("X, match", [
    (np.zeros((4, 2, 3, 5)), "4 dimensions.*n_channels, n_timepoints"),
    (np.zeros(5), "1-D.*X.reshape\\(1, -1\\)"),
    ([np.zeros((2, 5)), np.zeros((3, 5))], "mixes channel counts.*X\\[1\\] has 3"),
    ([np.zeros((1, 5)), np.zeros((1, 0))], "X\\[1\\] has no time points"),
])
def test_malformed_input_is_refused_before_torch(fitted, X, match):
    with pytest.raises(ValueError, match=match):
        fitted.predict(X)


def test_nan_in_a_series_is_named_with_the_fix(bumps):
    X, y, _ = bumps
    X = X.copy()
    X[3, 0, 7] = np.nan
    with pytest.raises(ValueError, match="series 3, channel 0, time point 7.*interpolate.*"
                                         "list of arrays of their own lengths"):
        TimeSeriesClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="series 2, channel 0, time point 1"):
        TimeSeriesClassifier(**FAST).fit([x[0] for x in X[:2]] + [np.array([1.0, np.nan])],
                                         y[:3])


def test_series_shorter_than_the_network_needs_are_refused(fitted, bumps):
    X, y, _ = bumps
    with pytest.raises(ValueError, match="shorter than the 4 time points.*series 1 has 3"):
        fitted.predict([X[0, 0], X[1, 0, :3]])
    with pytest.raises(ValueError, match="shorter than the 8 time points.*fewer pooling"):
        TimeSeriesClassifier(architecture="convnet", **FAST).fit(X[:, :, :6], y)


def test_another_channel_count_at_predict_is_refused(bumps):
    X, y, _ = bumps
    clf = TimeSeriesClassifier(**{**FAST, "max_epochs": 1})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(np.repeat(X, 2, axis=1), y)
    with pytest.raises(ValueError, match="1 channel\\(s\\), but TimeSeriesClassifier was "
                                         "fitted on 2"):
        clf.predict(X)


@pytest.mark.parametrize("params, match", [
    (dict(architecture="fcn", pooling="avg"), "pooling='avg' applies to architecture="),
    (dict(architecture="convnet", kernel_size=4), "one odd int"),
    (dict(architecture="inception", kernel_size=(8, 4)), "odd kernel sizes"),
    (dict(architecture="fcn", filters=(8, 8), kernel_size=(5, 3, 3)), "one kernel size per"),
    (dict(filters=(8, 0)), "positive integers"),
    (dict(augment=("jitter", "flip")), "'flip' is for images"),
    (dict(architecture="lstm"), "architecture"),
])
def test_bad_parameters_are_named(bumps, params, match):
    X, y, _ = bumps
    with pytest.raises(ValueError, match=match):
        TimeSeriesClassifier(**{**FAST, **params}).fit(X, y)


# ------------------------------------------------------------------------ architectures
@pytest.mark.parametrize("params", [
    dict(architecture="fcn"),
    dict(architecture="resnet", filters=(8, 8)),
    dict(architecture="inception", filters=(4, 4, 4), kernel_size=(9, 5, 3)),
    dict(architecture="convnet", pooling=("max", None, "stride")),
    dict(architecture="convnet", pooling="avg", batch_norm=False, hidden_units=(8,)),
])
def test_every_architecture_learns_multivariate_series(params):
    X, y, _ = _bumps(channels=3)
    clf = TimeSeriesClassifier(**{**FAST, "max_epochs": 15, **params}).fit(X, y)
    assert clf.score(X, y) > 0.9, params
    assert clf.summary().total_params == sum(p.numel() for p in clf.module_.parameters())


@pytest.mark.parametrize("normalize", ["series", "channel", None])
def test_normalisation_is_saved_with_the_network(bumps, normalize, tmp_path):
    X, y, _ = bumps
    scaled = 50 + 10 * X  # another level and scale: what "channel" learns
    clf = TimeSeriesClassifier(**{**FAST, "normalize": normalize,
                                  "lr": 0.003 if normalize is None else 0.01}).fit(scaled, y)
    assert clf.score(scaled, y) > 0.9
    if normalize == "channel":
        assert abs(float(clf.module_.input.mean) - 50) < 1
    sklearn_cnn.save(clf, tmp_path / "m.safetensors")
    loaded = sklearn_cnn.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.predict_proba(scaled), clf.predict_proba(scaled))


def test_the_summary_speaks_of_channels_and_time(bumps):
    text = str(TimeSeriesClassifier(filters=(8,)).summary(input_shape=(2, 30)))
    assert "input (channels, time points) = (2, 30)" in text and "Output shape (C, T)" in text
    with pytest.raises(ValueError, match="\\(channels, time points\\)"):
        TimeSeriesClassifier().summary()


# ------------------------------------------------------------------------------- tasks
def test_regression_of_one_and_several_targets():
    rng = np.random.RandomState(0)
    frequency = rng.uniform(1, 5, size=90)
    t = np.linspace(0, 1, 40)
    X = np.sin(2 * np.pi * frequency[:, None] * t) + 0.1 * rng.randn(90, 40)
    reg = TimeSeriesRegressor(**{**FAST, "max_epochs": 30}).fit(X[:70], frequency[:70])
    assert reg.score(X[70:], frequency[70:]) > 0.8
    both = np.c_[frequency, 10 - frequency]
    reg2 = TimeSeriesRegressor(**{**FAST, "max_epochs": 30}).fit(X[:70], both[:70])
    assert reg2.predict(X[70:]).shape == (20, 2) and reg2.score(X[70:], both[70:]) > 0.7


def test_label_sets(bumps):
    X, y, where = bumps
    labels = np.c_[y == "up", where < 20].astype(np.int64)
    clf = TimeSeriesClassifier(**{**FAST, "max_epochs": 25}).fit(X, labels)
    assert clf.predict(X).shape == labels.shape and clf.predict(X).dtype == np.int64
    assert (clf.predict(X)[:, 0] == labels[:, 0]).mean() > 0.9


def test_a_model_that_learns_nothing_says_so_in_series(bumps):
    X, y, _ = bumps
    with pytest.warns(ConvergenceWarning, match="training series no better"):
        TimeSeriesClassifier(**{**FAST, "max_epochs": 2, "lr": 1e-6}).fit(X, y)


# -------------------------------------------------------------------- training features
def test_seeded_augmentation_is_reproducible_and_train_only(bumps):
    X, y, _ = bumps
    params = {**FAST, "augment": ("standard", "warp", "mixup")}
    first = TimeSeriesClassifier(**params).fit(X, y)
    second = TimeSeriesClassifier(**params).fit(X, y)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    plain = TimeSeriesClassifier(**FAST).fit(X, y)
    assert not np.array_equal(first.predict_proba(X), plain.predict_proba(X))
    assert first.score(X, y) > 0.9


def test_warm_start_partial_fit_and_validation_curves(bumps):
    X, y, _ = bumps
    clf = TimeSeriesClassifier(**{**FAST, "validation_fraction": 0.25}).fit(X, y)
    assert "valid_acc" in clf.history_[-1]
    clf.set_params(warm_start=True, max_epochs=2).fit(X, y)
    clf.partial_fit(X, y)
    assert len(clf.history_) == 12 + 2 + 1
    with pytest.raises(ValueError, match="warm_start and partial_fit.*filters"):
        clf.set_params(filters=(4,)).fit(X, y)


def test_pipeline_grid_search_and_cross_validation(bumps):
    X, y, _ = bumps
    pipe = make_pipeline(FunctionTransformer(lambda Z: Z * 2.0), TimeSeriesClassifier(**FAST))
    search = GridSearchCV(pipe, {"timeseriesclassifier__dropout": [0.0, 0.3],
                                 "timeseriesclassifier__architecture": ["fcn", "convnet"]},
                          cv=2).fit(X, y)
    assert search.best_score_ > 0.9 and search.score(X, y) > 0.9
    assert cross_val_score(TimeSeriesClassifier(**FAST), X[:, 0], y, cv=3).mean() > 0.85


# ------------------------------------------------------------------ files and shipping
def test_save_and_joblib_round_trip_bit_identically(fitted, bumps, tmp_path, in_fresh_process):
    X, _, _ = bumps
    path = sklearn_cnn.save(fitted, tmp_path / "series.safetensors")
    np.testing.assert_array_equal(in_fresh_process(path, X), fitted.predict_proba(X))
    loaded = sklearn_cnn.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(_ragged(X)),
                                  fitted.predict_proba(_ragged(X)))
    joblib.dump(fitted, tmp_path / "series.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "series.joblib").predict(X),
                                  fitted.predict(X))


def test_regressors_save_in_the_safe_format(tmp_path, in_fresh_process):
    rng = np.random.RandomState(0)
    X, y = rng.randn(30, 2, 20), rng.randn(30)
    reg = TimeSeriesRegressor(**{**FAST, "max_epochs": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # noise: nothing to learn
        reg.fit(X, y)
    path = sklearn_cnn.save(reg, tmp_path / "reg.safetensors")
    np.testing.assert_array_equal(in_fresh_process(path, X, "predict"), reg.predict(X))


def test_onnx_export_takes_series_of_any_length(bumps):
    ort = pytest.importorskip("onnxruntime")
    X, y, _ = bumps
    clf = TimeSeriesClassifier(**{**FAST, "precision": "float32"}).fit(X, y)
    session = ort.InferenceSession(sklearn_cnn.to_onnx(clf, X[:2]).SerializeToString())
    assert session.get_inputs()[0].shape == [None, 1, None]
    labels, proba = session.run(None, {"X": X.astype(np.float32)})
    np.testing.assert_array_equal(labels, clf.predict(X))
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)
    # unequal lengths: NaN-padded at the end, as predict pads a list
    padded = np.full((3, 1, 47), np.nan, dtype=np.float32)
    series = _ragged(X)[:3]
    for i, s in enumerate(series):
        padded[i, :, :s.shape[1]] = s
    _, proba = session.run(None, {"X": padded})
    np.testing.assert_allclose(proba, clf.predict_proba(series), atol=1e-5)


def test_regressor_onnx_export_of_univariate_rows():
    ort = pytest.importorskip("onnxruntime")
    rng = np.random.RandomState(0)
    X = rng.randn(40, 30).astype(np.float32)
    y = X[:, :10].mean(1) * 3
    reg = TimeSeriesRegressor(**{**FAST, "precision": "float32", "normalize": "channel",
                                 "max_epochs": 20}).fit(X, y)
    session = ort.InferenceSession(sklearn_cnn.to_onnx(reg, X[:2]).SerializeToString())
    out, = session.run(None, {"X": X})
    np.testing.assert_allclose(out[:, 0], reg.predict(X), atol=1e-5)


# -------------------------------------------------------------------------- inspection
def test_class_activation_maps_find_the_bump(bumps, fitted):
    X, y, where = bumps
    maps = class_activation_maps(fitted, X[:20], target=y[:20])
    assert maps.shape == (20, 48) and maps.min() >= 0 and maps.max() <= 1
    peak = maps.argmax(1)
    inside = (peak >= where[:20] - 2) & (peak <= where[:20] + 8)
    assert inside.mean() >= 0.8, (peak, where[:20])
    gradcam = class_activation_maps(fitted, X[:20], method="gradcam")  # the predicted class
    assert (np.abs(gradcam.argmax(1) - peak) <= 3).mean() >= 0.8
    ragged = class_activation_maps(fitted, _ragged(X)[:3])
    assert np.isnan(ragged[0, 30:]).all() and not np.isnan(ragged[2, :32]).any()


def test_cam_needs_a_linear_head(bumps):
    X, y, _ = bumps
    clf = TimeSeriesClassifier(**{**FAST, "hidden_units": (8,)}).fit(X, y)
    with pytest.raises(ValueError, match="method='gradcam'"):
        class_activation_maps(clf, X[:2], method="cam")
    assert class_activation_maps(clf, X[:2]).shape == (2, 48)  # "auto": Grad-CAM


def test_the_plots_draw_series(bumps, fitted):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from sklearn_cnn.plotting import plot_class_activation_maps, plot_history, plot_top_losses

    X, y, _ = bumps
    fig = plot_class_activation_maps(fitted, X[:4], y[:4])
    assert len(fig.axes) == 4 + 1  # and the colour bar
    assert fig.axes[0].get_xlabel() == "time"
    assert len(plot_top_losses(fitted, X, y, k=3).axes) == 3
    assert [ax.get_title() for ax in plot_history(fitted).axes] == ["Loss", "Accuracy"]


def test_cloned_estimators_refit_identically(bumps, fitted):
    X, y, _ = bumps
    np.testing.assert_array_equal(clone(fitted).fit(X, y).predict_proba(X),
                                  fitted.predict_proba(X))


# ------------------------------------------------------------------ real archive data
@pytest.mark.slow
def test_archive_series_of_unequal_lengths_and_twelve_channels():
    # JapaneseVowels: 12 channels, 7 to 29 time points, as a list. Fawaz et al. (2019)
    # report FCN 0.99 on their version of it, MiniRocket gets 0.989
    # (benchmarks/bench_timeseries.py); 20 of the default 200 epochs reach 0.989 here.
    # (GunPoint with the defaults: tests/test_docs.py, which runs the time-series guide.)
    pytest.importorskip("aeon")
    from sklearn_cnn.datasets import load_ts_dataset

    X_train, X_test, y_train, y_test = load_ts_dataset("JapaneseVowels")
    assert isinstance(X_train, list) and X_train[0].shape[0] == 12
    clf = TimeSeriesClassifier(max_epochs=20, random_state=0, device="cpu", verbose=0)
    assert clf.fit(X_train, y_train).score(X_test, y_test) >= 0.97


def test_series_of_widely_different_scales_get_the_fix_for_batch_norm():
    # Covid3Month: cumulative counts from 1 to 20,000 per series. Batch norm's running
    # statistics then miss each batch's, and eval-mode predictions fall well below what
    # training reported; the warning names the two fixes, which both close the gap.
    pytest.importorskip("aeon")
    from sklearn_cnn.datasets import load_ts_dataset

    X, y = load_ts_dataset("Covid3Month", split="train")
    fast = dict(max_epochs=15, random_state=0, device="cpu")
    with pytest.warns(ConvergenceWarning, match="in eval mode.*normalize='series' or "
                                                "batch_norm=False"):
        TimeSeriesRegressor(**fast).fit(X, y)
    for fix in (dict(normalize="series"), dict(batch_norm=False)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            TimeSeriesRegressor(**fast, **fix).fit(X, y)
        assert not [w for w in caught if "in eval mode" in str(w.message)], fix
