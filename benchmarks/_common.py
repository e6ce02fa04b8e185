"""Shared helpers of the benchmark scripts: synthetic data, timing, markdown tables."""

from __future__ import annotations

import platform
import time

import numpy as np
import torch


def machine() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA), torch {torch.__version__}"
    return (f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} "
            f"torch threads, torch {torch.__version__}")


def images(n: int, size: int, channels: int, n_classes: int = 10, seed: int = 0):
    """uint8 images whose class shows as a brighter patch, and their labels."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, n_classes, n)
    X = rng.randint(0, 200, size=(n, size, size, channels), dtype=np.uint8)
    cell = max(1, size // n_classes)
    for k in range(n_classes):
        X[y == k, :, k * cell:(k + 1) * cell] = 255
    return X, y


def timed(fn, repeat: int = 1) -> float:
    """Best wall time of ``repeat`` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def table(headers: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
