"""CNNClassifier with ``compile=True`` (torch.compile) against the eager hand-written loop,
on a GPU: 32×32×3 images at batch 512, the lesson's ConvNet, Adam, side by side in one run.

Rows: the hand loop eager (device-resident float tensors: the ceiling of an eager loop),
compiled (inductor's default mode) and compiled with CUDA graphs (``mode="reduce-overhead"``);
CNNClassifier eager, with ``compile=True``, and with ``compile=True`` plus CUDA graphs (the
net's ``compile__mode``, skorch's pass-through to ``torch.compile``). Each in bfloat16
autocast (``precision="auto"`` on a GPU) and float32; the images/s of the best of
``--rounds`` timed fits after one untimed fit that compiles, and the held-out accuracy of the
last one (10,000 images of the same kind, never trained on).

Run: ``python benchmarks/bench_compile.py [--device cuda] [--epochs 5] [--rounds 3]``.
On the CPU it runs (slowly, with fewer images) but says little: torch.compile's gains are
a GPU's fewer kernel launches.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _common import hand_fit, hand_predict, images, machine, setup, table, timed

import sklearn_cnn._training as training
from sklearn_cnn import CNNClassifier
from sklearn_cnn.devices import resolve_device


class _CompileMode:
    """Within the block, every net that compiles passes ``mode`` to torch.compile (skorch's
    ``compile__mode``); the estimator's own ``compile`` parameter is a switch."""

    def __init__(self, mode: str | None):
        self.mode = mode

    def __enter__(self):
        self.original = original = training.Net.__init__
        mode = self.mode

        def init(net, *args, **kwargs):
            if kwargs.get("compile") and mode is not None:
                kwargs["compile__mode"] = mode
            original(net, *args, **kwargs)

        training.Net.__init__ = init

    def __exit__(self, *exc):
        training.Net.__init__ = self.original


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=49_152, help="training images (96 batches)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--precision", action="append", choices=["bfloat16", "float32"],
                        help="repeatable; default: both")
    args = parser.parse_args()
    device = resolve_device(args.device)
    n = args.n if device.type == "cuda" else min(args.n, 4096)
    batch_size, epochs = args.batch_size, args.epochs
    X8, y, _, X_dev, y_dev, fresh = setup(32, 3, n, device)
    X_test, y_test = images(10_000 if device.type == "cuda" else 1000, 32, 3, seed=1)
    X_test_dev = torch.as_tensor(
        np.ascontiguousarray(X_test.transpose(0, 3, 1, 2) / 255, dtype=np.float32),
        device=device)
    print(f"Machine: {machine()}\n")

    for precision in args.precision or ["bfloat16", "float32"]:
        dtype = torch.bfloat16 if precision == "bfloat16" else None
        contenders = {}

        def hand(mode=None, dtype=dtype):
            def fit_once():
                module = fresh()
                compiled = module if mode is None else torch.compile(
                    module, **({} if mode == "default" else {"mode": mode}))
                seconds = timed(lambda: hand_fit(compiled, X_dev, y_dev, epochs=epochs,
                                                 batch_size=batch_size, lr=1e-3,
                                                 autocast_dtype=dtype))
                proba = hand_predict(module, X_test_dev, batch_size=4 * batch_size,
                                     autocast_dtype=dtype)
                return seconds, None, float((proba.argmax(1) == y_test).mean())
            return fit_once

        def ours(compile=False, mode=None, precision=precision):
            def fit_once():
                clf = CNNClassifier(max_epochs=epochs, batch_size=batch_size, lr=1e-3,
                                    lr_schedule=None, dropout=0.25, device=device,
                                    precision=precision, compile=compile, random_state=0,
                                    verbose=0)
                with _CompileMode(mode):
                    seconds = timed(lambda: clf.fit(X8, y))
                return seconds, sum(clf.history_[:, "dur"]), clf.score(X_test, y_test)
            return fit_once

        contenders["hand-written loop, eager (the baseline)"] = hand()
        contenders["hand-written loop, torch.compile"] = hand("default")
        if device.type == "cuda":
            contenders["hand-written loop, torch.compile + CUDA graphs"] = hand(
                "reduce-overhead")
        contenders["CNNClassifier, eager"] = ours()
        contenders["**CNNClassifier, compile=True**"] = ours(compile=True)
        if device.type == "cuda":
            contenders["CNNClassifier, compile=True + CUDA graphs"] = ours(
                compile=True, mode="reduce-overhead")

        rows, baseline = [], None
        for name, run in contenders.items():
            start = time.perf_counter()
            try:
                run()  # untimed: compiles, picks cuDNN's kernels, warms the allocator
            except Exception as exc:  # a mode this torch cannot run is a row that says so
                rows.append([name, "failed", "", "", "", f"{type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:80]}"])
                continue
            first = time.perf_counter() - start
            best, epochs_only, accuracy = float("inf"), float("inf"), None
            for _ in range(args.rounds):
                seconds, in_epochs, accuracy = run()
                best = min(best, seconds)
                epochs_only = min(epochs_only, in_epochs or float("inf"))
            baseline = baseline or best
            rows.append([name, f"{n * epochs / best:,.0f}", f"{baseline / best:.2f}",
                         "" if epochs_only == float("inf") else f"{n * epochs / epochs_only:,.0f}",
                         f"{first:.1f}", f"{accuracy:.4f}"])
            print(f"  done: {name}", flush=True)
        print(f"\n### {n} images 32×32×3, batch {batch_size}, {epochs} epochs, Adam, "
              f"{precision}, on {device}\n")
        print(table(["", "fit images/s (whole call)", "vs eager hand loop",
                     "images/s (epochs only)", "first call, s (compiles)",
                     "held-out accuracy"], rows), "\n", flush=True)


if __name__ == "__main__":
    main()
