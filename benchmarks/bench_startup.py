"""Start-up and single-image latency: import times (each in a fresh interpreter), the
command line's --help, and predict_proba on one image against the raw torch module.

    python benchmarks/bench_startup.py

Prints markdown tables (docs/benchmarks.md, "Start-up and latency").
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import images, machine, table

warnings.simplefilter("ignore")


def wall(command: list[str], repeat: int = 7) -> float:
    """Median wall time of a command, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_table() -> str:
    python = [sys.executable, "-c"]
    cli = str(Path(sys.executable).with_name("sklearn-cnn"))
    rows = []
    baseline = wall([*python, "pass"])
    torch_s = wall([*python, "import torch"])
    for label, command in [
        ("python -c pass", [*python, "pass"]),
        ("import torch", [*python, "import torch"]),
        ("import torch, torchvision", [*python, "import torch, torchvision"]),
        ("import sklearn_cnn", [*python, "import sklearn_cnn"]),
        ("from sklearn_cnn import CNNClassifier", [*python,
                                                   "from sklearn_cnn import CNNClassifier"]),
        ("from sklearn_cnn import TransferClassifier; list_backbones()",
         [*python, "from sklearn_cnn.backbones import list_backbones; list_backbones()"]),
        ("sklearn-cnn --help", [cli, "--help"]),
    ]:
        seconds = wall(command)
        rows.append([f"`{label}`", f"{seconds:.2f}", f"{seconds - baseline:+.2f}",
                     f"{seconds - torch_s:+.2f}"])
    return table(["command", "wall s (median of 7)", "vs python", "vs import torch"], rows)


def latency_table() -> str:
    from sklearn_cnn import CNNClassifier

    X, y = images(512, 32, 3)
    rows = []
    for precision in ["float32", "auto"]:
        clf = CNNClassifier(max_epochs=1, device="cpu", precision=precision,
                            random_state=0).fit(X, y)
        module = clf.module_.eval()
        one = X[:1]
        tensor = torch.from_numpy(one).permute(0, 3, 1, 2).float().div(255).contiguous(
            memory_format=torch.channels_last)
        dtype = clf.net_.autocast_dtype

        def raw(module=module, tensor=tensor, dtype=dtype):
            with torch.inference_mode(), torch.autocast("cpu", dtype=dtype,
                                                        enabled=dtype is not None):
                return module(tensor).softmax(1)

        for name, fn in [("raw module (tensor ready)", raw),
                         ("CNNClassifier.predict_proba",
                          lambda clf=clf, one=one: clf.predict_proba(one))]:
            for _ in range(20):
                fn()
            times = []
            for _ in range(500):
                start = time.perf_counter()
                fn()
                times.append((time.perf_counter() - start) * 1000)
            label = "bfloat16" if dtype is not None else "float32"
            rows.append([name, label, f"{np.percentile(times, 50):.2f}",
                         f"{np.percentile(times, 99):.2f}"])
    return ("One 32×32×3 uint8 image, the default CNNClassifier, 500 calls after 20 warm-up:"
            "\n\n" + table(["", "precision", "p50 ms", "p99 ms"], rows))


def main():
    print(f"# Start-up and latency ({machine()}, {os.cpu_count()} cores)\n")
    print(import_table(), "\n")
    print(latency_table())


if __name__ == "__main__":
    main()
