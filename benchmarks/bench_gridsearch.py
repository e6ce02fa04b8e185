"""GridSearchCV wall time on digits with n_jobs=1 and 2, across joblib backends.

Run: ``python benchmarks/bench_gridsearch.py``.
"""

from __future__ import annotations

import os
import time

import joblib
from _common import machine, table
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.preprocessing import ChannelStandardizer


def search(n_jobs: int, backend: str) -> float:
    X, y = load_digits_images()
    pipe = make_pipeline(ChannelStandardizer(), CNNClassifier(max_epochs=10, random_state=0))
    grid = {"cnnclassifier__dropout": [0.0, 0.25], "cnnclassifier__optimizer": ["adam", "sgd"]}
    start = time.perf_counter()
    with joblib.parallel_backend(backend):
        GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - start


def main():
    print(f"Machine: {machine()}, {os.cpu_count()} cores\n")
    configs = [("loky", 1), ("loky", 2), ("threading", 2)]
    try:
        import distributed

        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1,
                                           dashboard_address=None)
        client = distributed.Client(cluster)
        configs.append(("dask", 2))
    except ImportError:
        client = None
    rows = []
    baseline = None
    for backend, n_jobs in configs:
        seconds = search(n_jobs, backend)
        baseline = baseline or seconds
        rows.append([backend, n_jobs, f"{seconds:.1f}", f"{baseline / seconds:.2f}"])
    if client is not None:
        client.close()
        cluster.close()
    print("### GridSearchCV: 4 candidates × 3 folds on digits, 10 epochs each, + refit\n")
    print(table(["backend", "n_jobs", "wall s", "speed-up"], rows))


if __name__ == "__main__":
    main()
