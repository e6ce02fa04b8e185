import os
import re
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from skorch.callbacks import Callback

from sklearn_cnn import CNNClassifier
from sklearn_cnn.networks import ConvNet
from sklearn_cnn.preprocessing import ChannelStandardizer, PixelScaler

FAST = dict(filters=(8, 16), max_epochs=2, batch_size=16, lr=0.01, device="cpu",
            random_state=0)


def test_fit_predict_string_labels(tiny):
    X, y = tiny
    clf = CNNClassifier(**{**FAST, "max_epochs": 10, "lr": 0.01}).fit(X, y)
    assert list(clf.classes_) == ["bottom", "top"]
    assert clf.predict(X).dtype == y.dtype
    assert clf.score(X, y) >= 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (40, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.input_shape_ == (6, 6, 1)
    assert clf.n_features_in_ == 36
    assert clf.device_ == torch.device("cpu")
    assert isinstance(clf.module_, ConvNet)
    assert len(clf.history_) == 10


def test_integer_labels_with_gaps(tiny):
    X, _ = tiny
    y = np.array([3, 70] * 20)
    clf = CNNClassifier(**FAST).fit(X, y)
    assert list(clf.classes_) == [3, 70]
    assert set(clf.predict(X)) <= {3, 70}


@pytest.mark.parametrize("size", [8, 224])
def test_adapts_to_image_size(size, without_learning_check):
    X = np.random.RandomState(0).randint(0, 256, size=(6, size, size, 3), dtype=np.uint8)
    with without_learning_check():
        clf = CNNClassifier(filters=(4, 4, 4), max_epochs=1, batch_size=3, device="cpu",
                            random_state=0).fit(X, [0, 1] * 3)
    assert clf.predict_proba(X).shape == (6, 2)


def test_one_pixel_high_strips_and_stride_pooling(without_learning_check):
    # 2-D tabular rows that are no perfect square are 1×F strips: pooling must cope.
    X = np.random.RandomState(0).normal(size=(20, 5))
    for pooling in ["max", "avg", "stride", None]:
        with without_learning_check():
            clf = CNNClassifier(**FAST, pooling=pooling).fit(X, [0, 1] * 10)
        assert clf.input_shape_ == (1, 5, 1)
        assert clf.predict(X).shape == (20,)


def test_the_lessons_network_pools_after_all_blocks_but_the_last():
    # Keras' Conv32 → Pool → Conv64 → Pool → Conv128 → global average pooling
    clf = CNNClassifier(filters=(32, 64, 128), pooling=("max", "max", None), batch_norm=False)
    text = str(clf.summary(input_shape=(32, 32, 3)))
    assert "Output shape (C, H, W)" in text
    shapes = re.findall(r"\(Conv2d\)\s+(\([\d, ]+\))", text)
    assert shapes == ["(32, 32, 32)", "(64, 16, 16)", "(128, 8, 8)"]
    assert "BatchNorm" not in text
    with pytest.raises(ValueError, match="one of 'max', 'avg', 'stride' or None for each of "
                                         "the 3 blocks"):
        CNNClassifier(filters=(8, 8, 8), pooling=("max", None)).fit(np.zeros((4, 8, 8)),
                                                                   [0, 1] * 2)


def test_random_state_is_bit_identical_and_leaves_global_rng(tiny):
    X, y = tiny
    state = torch.get_rng_state()
    a = CNNClassifier(**FAST, dropout=0.5, augment="standard").fit(X, y).predict_proba(X)
    assert torch.equal(torch.get_rng_state(), state)
    b = CNNClassifier(**FAST, dropout=0.5, augment="standard").fit(X, y).predict_proba(X)
    assert np.array_equal(a, b)
    c = CNNClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.array_equal(a, c)


def test_clone_of_fitted_refits_to_same_result(tiny):
    X, y = tiny
    fitted = CNNClassifier(**FAST).fit(X, y)
    again = clone(fitted)
    assert not hasattr(again, "net_")
    assert np.array_equal(again.fit(X, y).predict_proba(X), fitted.predict_proba(X))


def test_layouts_agree(tiny):
    X, y = tiny
    rgb = np.repeat(X[..., None], 3, axis=-1)
    last = CNNClassifier(**FAST).fit(rgb, y).predict_proba(rgb)
    first_x = rgb.transpose(0, 3, 1, 2)
    first = CNNClassifier(**FAST, data_format="channels_first").fit(first_x, y)
    assert first.input_shape_ == (6, 6, 3)
    np.testing.assert_allclose(first.predict_proba(first_x), last, rtol=1e-5, atol=1e-6)
    flat = CNNClassifier(**FAST, image_shape=(6, 6, 3)).fit(rgb.reshape(40, -1), y)
    np.testing.assert_allclose(flat.predict_proba(rgb), last, rtol=1e-5, atol=1e-6)


def test_uint8_is_scaled_like_floats_in_unit_range(tiny):
    X, y = tiny
    X8 = np.round(X.clip(0, 1) * 255).astype(np.uint8)
    a = CNNClassifier(**FAST).fit(X8, y).predict_proba(X8)
    b = CNNClassifier(**FAST).fit(X8 / 255.0, y).predict_proba(X8 / 255.0)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_partial_fit_and_warm_start(tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST)
    clf.partial_fit(X[:10], y[:10], classes=["top", "bottom"])
    clf.partial_fit(X[10:], y[10:])
    assert len(clf.history_) == 2
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X[:4], ["left"] * 4)
    warm = CNNClassifier(**FAST, warm_start=True).fit(X, y)
    first = {k: v.clone() for k, v in warm.module_.state_dict().items()}
    warm.fit(X, y)
    assert len(warm.history_) == 4
    # It trained on from the first fit's weights: two fits of 2 epochs are not one of 4
    # (each call runs its own schedule) and not a fresh fit of 2.
    cold = CNNClassifier(**FAST).fit(X, y)
    cold.fit(X, y)
    assert len(cold.history_) == 2
    np.testing.assert_array_equal(cold.predict_proba(X),
                                  CNNClassifier(**FAST).fit(X, y).predict_proba(X))
    assert not np.array_equal(warm.predict_proba(X), cold.predict_proba(X))
    assert warm.history_[2, "train_loss"] < cold.history_[0, "train_loss"]
    assert not all(torch.equal(first[k], v) for k, v in warm.module_.state_dict().items())


@pytest.mark.parametrize(
    "params, X_fn, y_fn, error, match",
    [
        ({}, lambda X: np.where(X > 0.9, np.nan, X), None, ValueError, "NaN"),
        ({}, lambda X: np.where(X > 0.9, np.inf, X), None, ValueError, "infinity"),
        ({}, None, lambda y: np.where(y == "top", np.nan, 1.0), ValueError, "NaN"),
        ({}, None, lambda y: np.full(len(y), "top"), ValueError, "only one class"),
        ({}, None, lambda y: y[:-1], ValueError, "inconsistent numbers of samples"),
        ({}, lambda X: X[:0], lambda y: y[:0], ValueError, "0 sample"),
        ({}, lambda X: X[:, 0, 0], None, ValueError, "Expected 2D array"),
        ({}, lambda X: X[:, None, :, :, None], None, ValueError, "5 dimensions"),
        ({}, lambda X: X.astype(str), None, ValueError, "numeric|convert"),
        ({"device": "gpu7"}, None, None, ValueError, "Unknown device"),
        ({"optimizer": "adamm"}, None, None, ValueError, "optimizer"),
        ({"dropout": 1.0}, None, None, ValueError, "dropout"),
        ({"dropout": -0.1}, None, None, ValueError, "dropout"),
        ({"lr": 0}, None, None, ValueError, "lr"),
        ({"filters": ()}, None, None, ValueError, "filters is empty"),
        ({"filters": (8, 0)}, None, None, ValueError, "positive integers"),
        ({"batch_size": 0}, None, None, ValueError, "batch_size"),
        ({"kernel_size": 4}, None, None, ValueError, "odd"),
        ({"optimizer": dict}, None, None, TypeError, "torch.optim.Optimizer"),
        ({"class_weight": {"left": 2.0}}, None, None, ValueError, "not in y"),
    ],
)
def test_bad_input_is_a_clear_error(tiny, params, X_fn, y_fn, error, match):
    X, y = tiny
    X = X_fn(X) if X_fn else X
    y = y_fn(y) if y_fn else y
    with pytest.raises(error, match=match):
        CNNClassifier(**{**FAST, **params}).fit(X, y)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA error")
def test_cuda_without_gpu_is_an_error(tiny):
    with pytest.raises(ValueError, match="no CUDA|sees none"):
        CNNClassifier(**{**FAST, "device": "cuda"}).fit(*tiny)


def test_predict_errors(tiny):
    X, y = tiny
    with pytest.raises(NotFittedError):
        CNNClassifier(**FAST).predict(X)
    clf = CNNClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 1\).*\(6, 6, 1\).*ImageResizer"):
        clf.predict(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match=r"\(6, 6, 3\).*GrayscaleToRGB"):
        clf.predict(np.zeros((2, 6, 6, 3)))
    with pytest.raises(ValueError, match="X has 35 features, but CNNClassifier is expecting 36"):
        clf.predict(np.zeros((2, 35)))
    np.testing.assert_array_equal(clf.predict(X.reshape(40, -1)), clf.predict(X))


def test_the_users_array_is_not_modified(tiny):
    X, y = tiny
    before = X.copy()
    CNNClassifier(**FAST, augment="standard").fit(X, y).predict(X)
    np.testing.assert_array_equal(X, before)


def test_grid_search_in_pipeline(digits):
    X, y = digits
    X_train, y_train, X_test, y_test = X[:300], y[:300], X[300:500], y[300:500]
    pipe = make_pipeline(PixelScaler(), ChannelStandardizer(), CNNClassifier(**FAST))
    grid = {"cnnclassifier__dropout": [0.0, 0.3], "cnnclassifier__lr": [0.002, 0.01],
            "cnnclassifier__optimizer": ["adam", "sgd"]}
    search = GridSearchCV(pipe, grid, cv=2, n_jobs=2).fit(X_train, y_train)
    scores = search.cv_results_["mean_test_score"]
    # Every candidate trained with its own parameters; the best ones learned (chance: 0.1).
    assert len(scores) == 8 and np.isfinite(scores).all() and scores.max() > 0.6
    assert len(np.unique(scores)) == 8
    best = search.best_estimator_[-1]
    assert {f"cnnclassifier__{k}": best.get_params()[k]
            for k in ["dropout", "lr", "optimizer"]} == search.best_params_
    assert len(best.history_) == FAST["max_epochs"]
    # The refitted Pipeline predicts unseen digits as well as cross-validation said.
    assert search.score(X_test, y_test) > search.best_score_ - 0.15


class _RecordThreads(Callback):
    def on_epoch_begin(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


def test_parallel_workers_do_not_oversubscribe(tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST, callbacks=[("threads", _RecordThreads())])
    result = cross_validate(clf, X, y, cv=2, n_jobs=2, return_estimator=True)
    budget = max(1, (os.cpu_count() or 1) // 2)
    for fitted in result["estimator"]:
        assert fitted.history_[0, "torch_threads"] <= budget


def test_joblib_round_trip_in_a_fresh_process(tiny, tmp_path):
    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.save(tmp_path / "X.npy", X)
    code = (
        "import joblib, numpy as np, sys\n"
        f"m = joblib.load({str(tmp_path / 'model.joblib')!r})\n"
        f"np.save({str(tmp_path / 'proba.npy')!r}, m.predict_proba(np.load("
        f"{str(tmp_path / 'X.npy')!r})))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), clf.predict_proba(X))


def test_pickle_writes_each_tensor_once(tiny):
    # The module and the LR scheduler's optimizer are pickled with skorch's torch-aware
    # state, once: not a second time in plain pickle, which could not load without CUDA.
    import pickle

    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    state = clf.net_.__getstate__()
    assert not {"module", "module_", "callbacks", "callbacks_"} & set(state)
    tensors = [*clf.module_.state_dict().values(),
               *(v for s in clf.net_.optimizer_.state.values() for v in s.values())]
    nbytes = sum(t.numel() * t.element_size() for t in tensors)
    blob = pickle.dumps(clf)
    assert len(blob) < 1.1 * nbytes + 100_000
    again = pickle.loads(blob)
    assert again.net_.module is again.net_.module_
    scheduler = dict(again.net_.callbacks_)["lr_schedule"].lr_scheduler_
    assert scheduler.optimizer is again.net_.optimizer_
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


@pytest.mark.slow
def test_digits_accuracy_beats_svc(digits):
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.svm import SVC

    X, y = digits
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    pipe = make_pipeline(ChannelStandardizer(), CNNClassifier(random_state=0))
    cnn = cross_val_score(pipe, X, y, cv=cv, n_jobs=2).mean()
    svc = cross_val_score(SVC(), X.reshape(len(X), -1), y, cv=cv).mean()
    assert cnn > svc and cnn >= 0.99, (cnn, svc)


def test_threaded_fits_share_the_cores():
    # joblib's threading backend (and Dask worker threads) run fits side by side in one
    # process: each takes its share of the threads, and gives them back.
    import threading

    from sklearn_cnn.callbacks import ShareCPUThreads

    budget = torch.get_num_threads()
    barrier = threading.Barrier(2)
    seen = []

    def fit_in_thread():
        with ShareCPUThreads.taken(torch.device("cpu")):
            barrier.wait()  # both fits are running now
            ShareCPUThreads().on_epoch_begin(net=None)
            seen.append(torch.get_num_threads())
            barrier.wait()
        seen.append(("after", torch.get_num_threads()))

    threads = [threading.Thread(target=fit_in_thread) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    shares = [n for n in seen if not isinstance(n, tuple)]
    assert shares == [max(1, budget // 2)] * 2
    assert [n for _, n in (x for x in seen if isinstance(x, tuple))] == [budget] * 2
    assert ShareCPUThreads.active == 0 and torch.get_num_threads() == budget


def test_threaded_grid_search_shares_the_threads_and_says_it_is_not_reproducible(digits):
    # Fits in threads of one process run side by side, each on its share of the torch
    # threads; they share the random generator too, which a seeded fit warns about.
    from joblib import parallel_backend

    X, y = digits[0][:200], digits[1][:200]
    budget = torch.get_num_threads()
    clf = CNNClassifier(**{**FAST, "max_epochs": 4, "lr": 0.01},
                        callbacks=[("threads", _RecordThreads())])
    grid = {"dropout": [0.0, 0.5]}
    with parallel_backend("threading"), pytest.warns(UserWarning, match=(
            "seeded fit runs beside 1 other fit.*cannot make it reproducible.*"
            "threads_per_worker=1")):
        search = GridSearchCV(clf, grid, cv=2, n_jobs=2, return_train_score=True).fit(X, y)
    assert search.cv_results_["mean_train_score"].min() > 0.5  # every fit learned
    sequential = GridSearchCV(clf, grid, cv=2, n_jobs=1).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               sequential.cv_results_["mean_test_score"], atol=0.15)
    # The refit ran alone in the main thread, with every thread.
    assert search.best_estimator_.history_[-1, "torch_threads"] == budget


def test_a_failed_refit_leaves_the_fitted_model_as_it_was(tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    net, proba = clf.net_, clf.predict_proba(X)
    with pytest.raises(ValueError, match="only one class"):
        clf.fit(np.zeros((10, 9, 9)), ["a"] * 10)
    with pytest.raises(ValueError, match="inconsistent"):
        clf.fit(np.zeros((10, 9, 9)), [0, 1] * 4)
    assert clf.net_ is net and clf.input_shape_ == (6, 6, 1)
    assert list(clf.classes_) == ["bottom", "top"]
    np.testing.assert_array_equal(clf.predict_proba(X), proba)
