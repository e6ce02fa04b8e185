"""GridSearchCV wall time on digits with n_jobs=1 and more, across joblib backends.

On a GPU (``--device cuda``) every fit uses the one GPU: the threading backend's fits share
the process's CUDA context and stream; loky's worker processes each open their own context.
Run: ``python benchmarks/bench_gridsearch.py [--device cuda] [--configs loky:1,threading:4]``.
"""

from __future__ import annotations

import argparse
import os
import time

import joblib
from _common import machine, table
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.preprocessing import ChannelStandardizer


def search(n_jobs: int, backend: str, device: str) -> float:
    X, y = load_digits_images()
    pipe = make_pipeline(ChannelStandardizer(),
                         CNNClassifier(max_epochs=10, device=device, random_state=0))
    grid = {"cnnclassifier__dropout": [0.0, 0.25], "cnnclassifier__optimizer": ["adam", "sgd"]}
    start = time.perf_counter()
    with joblib.parallel_backend(backend):
        GridSearchCV(pipe, grid, cv=3, n_jobs=n_jobs).fit(X, y)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--configs", default=None,
                        help="comma-separated backend:n_jobs, e.g. loky:1,threading:2")
    args = parser.parse_args()
    print(f"Machine: {machine()}, {os.cpu_count()} cores\n")
    if args.configs:
        configs = [(b, int(j)) for b, j in (c.split(":") for c in args.configs.split(","))]
    else:
        configs = [("loky", 1), ("loky", 2), ("threading", 2), ("dask", 2)]
    client = cluster = None
    if any(backend == "dask" for backend, _ in configs):
        try:
            import distributed

            n_workers = max(j for b, j in configs if b == "dask")
            cluster = distributed.LocalCluster(n_workers=n_workers, threads_per_worker=1,
                                               dashboard_address=None)
            client = distributed.Client(cluster)
        except ImportError:
            configs = [(b, j) for b, j in configs if b != "dask"]
    rows = []
    baseline = None
    for backend, n_jobs in configs:
        seconds = search(n_jobs, backend, args.device)
        baseline = baseline or seconds
        rows.append([backend, n_jobs, f"{seconds:.1f}", f"{baseline / seconds:.2f}"])
    if client is not None:
        client.close()
        cluster.close()
    print(f"### GridSearchCV: 4 candidates × 3 folds on digits, 10 epochs each, + refit, "
          f"device={args.device}\n")
    print(table(["backend", "n_jobs", "wall s", "speed-up"], rows))


if __name__ == "__main__":
    main()
