"""Searches past one process: scikit-learn's searches on a real Dask cluster of worker
processes (each candidate pickled to a worker, fitted there, its scores sent back), on arrays
and on image files, and successive halving over epochs."""

import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
    cross_validate,
)
from skorch.callbacks import Callback

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_image_folder

distributed = pytest.importorskip("distributed")
from joblib import parallel_backend  # noqa: E402

FAST = dict(filters=(8, 16), max_epochs=3, batch_size=16, lr=0.01, device="cpu",
            random_state=0)


class RecordThreads(Callback):
    """The torch threads each epoch of a fit runs with, in its history."""

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("torch_threads", torch.get_num_threads())


@pytest.fixture(scope="module")
def cluster():
    """Two worker processes with one thread each, as a Dask cluster on this machine."""
    # LocalCluster sets OMP_NUM_THREADS=1 (and MKL's, OpenBLAS's) in this process's
    # environment for its workers and leaves it set: processes the other tests start must
    # not inherit it.
    saved = dict(os.environ)
    try:
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as local:
            with distributed.Client(local) as client:
                yield client
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    from PIL import Image

    root = tmp_path_factory.mktemp("scaling")
    rng = np.random.RandomState(0)
    for label, channel in [("red", 0), ("blue", 2)]:
        (root / label).mkdir()
        for i in range(20):
            pixels = rng.randint(0, 60, size=(8, 8, 3)).astype(np.uint8)
            pixels[..., channel] = 200 + rng.randint(0, 50)
            Image.fromarray(pixels).save(root / label / f"{i}.png")
    return load_image_folder(root, lazy=True)


def _same_scores(a, b, splits=2):
    for key in [f"split{i}_test_score" for i in range(splits)]:
        np.testing.assert_array_equal(a.cv_results_[key], b.cv_results_[key])


def test_searches_on_worker_processes_give_the_sequential_results(cluster, tiny):
    X, y = tiny
    workers = cluster.run(os.getpid)
    assert os.getpid() not in workers.values() and len(workers) == 2
    grid = {"lr": [0.003, 0.01], "dropout": [0.0, 0.5]}
    sequential = GridSearchCV(CNNClassifier(**FAST), grid, cv=2, n_jobs=1).fit(X, y)
    with parallel_backend("dask"):
        on_dask = GridSearchCV(CNNClassifier(**FAST), grid, cv=2, n_jobs=2).fit(X, y)
    _same_scores(on_dask, sequential)
    kwargs = dict(param_distributions=grid, n_iter=3, cv=2, random_state=0)
    sequential = RandomizedSearchCV(CNNClassifier(**FAST), n_jobs=1, **kwargs).fit(X, y)
    with parallel_backend("dask"):
        on_dask = RandomizedSearchCV(CNNClassifier(**FAST), n_jobs=2, **kwargs).fit(X, y)
    _same_scores(on_dask, sequential)
    with parallel_backend("dask"):
        scores = cross_validate(CNNClassifier(**FAST), X, y, cv=3, n_jobs=2)
    np.testing.assert_array_equal(scores["test_score"],
                                  cross_validate(CNNClassifier(**FAST), X, y, cv=3)["test_score"])


def test_a_time_series_search_on_worker_processes_gives_the_sequential_results(cluster):
    from sklearn_cnn import TimeSeriesClassifier

    rng = np.random.RandomState(0)
    X, y = 0.3 * rng.randn(40, 2, 24), np.array(["a", "b"] * 20)
    X[y == "b", 1, 8:14] += 2.0
    params = dict(filters=(4, 8, 4), max_epochs=3, lr=0.01, device="cpu", random_state=0,
                  verbose=0)
    grid = {"architecture": ["fcn", "convnet"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs: mechanics only
        sequential = GridSearchCV(TimeSeriesClassifier(**params), grid, cv=2).fit(X, y)
        with parallel_backend("dask"):
            on_dask = GridSearchCV(TimeSeriesClassifier(**params), grid, cv=2,
                                   n_jobs=2).fit(X, y)
    _same_scores(on_dask, sequential)


def test_a_search_over_image_files_ships_paths_not_pixels(cluster, image_files):
    X, y = image_files
    assert len(pickle.dumps(X)) < 100 * len(X)  # paths and settings: bytes per image
    assert len(pickle.dumps(X)) < np.asarray(X).nbytes / 2
    grid = {"lr": [0.003, 0.01]}
    sequential = GridSearchCV(CNNClassifier(**FAST), grid, cv=2).fit(X, y)
    with parallel_backend("dask"):
        on_dask = GridSearchCV(CNNClassifier(**FAST), grid, cv=2, n_jobs=2).fit(X, y)
    _same_scores(on_dask, sequential)


def test_a_worker_with_one_thread_trains_with_one_torch_thread(cluster, tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST, callbacks=[("threads", RecordThreads())])
    with parallel_backend("dask"):
        result = cross_validate(clf, X, y, cv=2, n_jobs=2, return_estimator=True)
    for fitted in result["estimator"]:
        assert set(fitted.history_[:, "torch_threads"]) == {1}


def test_successive_halving_over_epochs(digits):
    X, y = digits
    search = HalvingRandomSearchCV(
        CNNClassifier(filters=(8, 16), lr=0.01, device="cpu", random_state=0),
        {"dropout": [0.0, 0.25, 0.5], "lr": [0.003, 0.01, 0.03]}, resource="max_epochs",
        min_resources=1, max_resources=6, factor=2, cv=2, random_state=0)
    search.fit(X[:300], y[:300])
    assert list(search.n_resources_) == [1, 2, 4]  # epochs, doubling each round
    assert search.best_estimator_.max_epochs == 4 and search.best_score_ > 0.7


@pytest.mark.cuda
def test_one_gpu_per_worker(tiny):
    # Each worker sees one GPU (CUDA_VISIBLE_DEVICES): device="auto" fits there.
    from sklearn_cnn.devices import resolve_device

    X, y = tiny
    gpus = torch.cuda.device_count()
    with distributed.LocalCluster(n_workers=gpus, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local, \
            distributed.Client(local) as client:
        for i, worker in enumerate(client.scheduler_info()["workers"]):
            client.run(lambda i=i: os.environ.__setitem__("CUDA_VISIBLE_DEVICES", str(i)),
                       workers=[worker])
        seen = client.run(lambda: str(resolve_device("auto")))
        assert all(device.startswith("cuda") for device in seen.values())
        with parallel_backend("dask"):
            search = GridSearchCV(CNNClassifier(**{**FAST, "device": "auto"}),
                                  {"lr": [0.003, 0.01]}, cv=2, n_jobs=gpus).fit(X, y)
    assert search.best_estimator_.device_.type == "cuda"
