"""Shared helpers of the benchmark scripts: synthetic data, timing, markdown tables, and
the hand-written PyTorch loop every speed figure is compared with."""

from __future__ import annotations

import copy
import platform
import time

import numpy as np
import torch
from torch.nn import functional as F


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


def hand_fit(module, X, y, *, epochs, batch_size, lr, autocast_dtype=None):
    """The best plain loop: float tensors already resident on the device (prepared before
    timing), one slice per batch, module and batches in the channels-last memory format,
    no host-device synchronisation."""
    device = X.device
    module = module.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(module.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(0)
    module.train()
    steps = 0
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator).to(device)
        for start in range(0, len(X), batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                loss = F.cross_entropy(module(X[index]).float(), y[index])
            loss.backward()
            optimizer.step()
            steps += 1
    return steps


@torch.inference_mode()
def hand_predict(module, X, *, batch_size, autocast_dtype=None):
    module = module.eval().to(memory_format=torch.channels_last)
    with torch.autocast(X.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        proba = [module(X[i:i + batch_size]).float().softmax(1)
                 for i in range(0, len(X), batch_size)]
    return torch.cat(proba).cpu().numpy()


def setup(size: int, channels: int, n: int, device):
    """One benchmark setting: uint8 images and labels; what the hand loop gets (float32
    (N, C, H, W) in [0, 1], channels-last, already on ``device``; and the float32 array on the
    host for skorch); and ``fresh()``, a copy of one seeded ConvNet on ``device``."""
    from sklearn_cnn.networks import ConvNet

    X8, y = images(n, size, channels)
    X_float = np.ascontiguousarray((X8.transpose(0, 3, 1, 2) / 255).astype(np.float32))
    X_dev = torch.as_tensor(X_float, device=device).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(0)
    template = ConvNet(in_channels=channels, n_classes=10, input_size=(size, size),
                       dropout=0.25)

    def fresh():
        return copy.deepcopy(template).to(device=device, memory_format=torch.channels_last)

    return X8, y, X_float, X_dev, torch.as_tensor(y, device=device), fresh
