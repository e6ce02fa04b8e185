"""Past one process: what a search on Dask ships to its workers (pixels or paths), a
GridSearchCV on a Dask cluster of 1 and 2 worker processes, and one data-parallel fit with 1
and 2 processes (torchrun, gloo).

    python benchmarks/bench_scaling.py      # about 3 minutes on 2 cores

This machine has 2 cores: two workers (or two data-parallel processes) share them, so the
figures show the mechanism's overhead here, not the gain it brings with more cores, GPUs or
hosts.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _common import machine, table
from PIL import Image

warnings.simplefilter("ignore")

DDP_SCRIPT = '''
import json, os, sys, time
from sklearn.model_selection import train_test_split
from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.25, stratify=y,
                                                    random_state=0)
start = time.perf_counter()
clf = CNNClassifier(max_epochs=20, random_state=0, device="cpu", verbose=0).fit(X_train, y_train)
seconds = time.perf_counter() - start
if int(os.environ.get("RANK", 0)) == 0:
    print(json.dumps({"s": seconds, "score": clf.score(X_test, y_test)}))
'''


def shipped_bytes(n: int = 1000, size: int = 64) -> list[list[str]]:
    from sklearn_cnn.datasets import load_image_folder

    root = Path(tempfile.mkdtemp())
    rng = np.random.RandomState(0)
    for label in ["a", "b"]:
        (root / label).mkdir()
        for i in range(n // 2):
            Image.fromarray(rng.randint(0, 256, (size, size, 3), dtype=np.uint8)).save(
                root / label / f"{i:05d}.png")
    lazy, _ = load_image_folder(root, lazy=True)
    array = np.asarray(lazy)
    return [[f"{n} images {size}×{size}×3 as a uint8 array", f"{len(pickle.dumps(array)):,}"],
            [f"the same {n} as a lazy collection (LazyImages)",
             f"{len(pickle.dumps(lazy)):,}"]]


def search(workers: int) -> tuple[float, float]:
    """GridSearchCV in this process (``workers=0``: n_jobs=1, every torch thread), or on a
    Dask cluster of ``workers`` processes of one thread each. (joblib runs a search whose
    n_jobs comes to 1 in this process, whatever the backend: one worker cannot be timed.)"""
    import distributed
    from joblib import parallel_backend
    from sklearn.model_selection import GridSearchCV

    from sklearn_cnn import CNNClassifier
    from sklearn_cnn.datasets import load_digits_images

    X, y = load_digits_images()
    X = X / 16
    grid = {"dropout": [0.0, 0.25], "lr": [0.002, 0.01]}
    model = GridSearchCV(CNNClassifier(max_epochs=10, random_state=0, verbose=0), grid, cv=3,
                         n_jobs=max(1, workers), refit=False)
    start = time.perf_counter()
    if workers == 0:
        model.fit(X, y)
    else:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster), parallel_backend("dask"):
            start = time.perf_counter()  # the cluster is up
            model.fit(X, y)
    return time.perf_counter() - start, float(model.cv_results_["mean_test_score"].max())


def ddp_fit(processes: int) -> dict:
    script = Path(tempfile.mkdtemp()) / "fit.py"
    script.write_text(DDP_SCRIPT)
    command = [sys.executable, str(script)]
    if processes > 1:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc_per_node={processes}", str(script)]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE")}
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    print(f"Machine: {machine()}\n")
    print("### What a search ships per task: X pickled\n")
    print(table(["X", "pickled bytes"], shipped_bytes()), "\n", flush=True)
    rows = []
    for workers, name in [(0, "this process, n_jobs=1 (2 torch threads)"),
                          (2, "Dask LocalCluster, 2 worker processes × 1 thread")]:
        seconds, best = search(workers)
        rows.append([name, f"{seconds:.1f}", f"{best:.4f}"])
    base = float(rows[0][1])
    for row in rows:
        row.insert(2, f"{base / float(row[1]):.2f}")
    print("### GridSearchCV: 4 candidates × 3 folds on digits, 10 epochs, no refit\n")
    print(table(["where", "wall s", "speed-up", "best mean CV accuracy"], rows), "\n",
          flush=True)
    rows = []
    for processes in [1, 2]:
        result = ddp_fit(processes)
        rows.append([str(processes), f"{result['s']:.1f}", f"{result['score']:.4f}"])
    base = float(rows[0][1])
    for row in rows:
        row.insert(2, f"{base / float(row[1]):.2f}")
    print("### One CNNClassifier fit, data-parallel (torchrun, gloo, 1 torch thread per "
          "process beyond one): digits, 20 epochs, batch 32 (global)\n")
    print(table(["processes", "fit s", "speed-up", "held-out accuracy"], rows))


if __name__ == "__main__":
    main()
