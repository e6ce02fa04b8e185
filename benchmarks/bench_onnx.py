"""onnxruntime (CPU) against predict_proba: images/s of the same model, the same images.

    python benchmarks/bench_onnx.py

Prints a markdown table (docs/benchmarks.md, "ONNX"). Needs ``pip install 'sklearn-cnn[onnx]'``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import onnxruntime as ort
from _common import images, machine, table, timed

from sklearn_cnn import CNNClassifier, TransferClassifier, to_onnx

warnings.simplefilter("ignore")


def row(name, model, X, rounds=3):
    session = ort.InferenceSession(to_onnx(model, X[:2]).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    ours = timed(lambda: model.predict_proba(X), rounds)
    onnx = timed(lambda: session.run(None, {"X": X}), rounds)
    _, proba = session.run(None, {"X": X})
    gap = np.abs(proba - model.predict_proba(X)).max()
    return [name, f"{len(X):,}", f"{len(X) / ours:,.0f}", f"{len(X) / onnx:,.0f}",
            f"{ours / onnx:.2f}", f"{gap:.1e}"]


def main():
    print(f"# ONNX export ({machine()}, {os.cpu_count()} cores, onnxruntime "
          f"{ort.__version__})\n")
    rows = []
    kwargs = dict(max_epochs=1, device="cpu", random_state=0, precision="float32")
    for size, channels, n in [(8, 1, 20000), (32, 3, 5000)]:
        X, y = images(n, size, channels)
        model = CNNClassifier(**kwargs).fit(X[:2000], y[:2000])
        rows.append(row(f"CNNClassifier {size}×{size}×{channels} uint8", model, X))
    X, y = images(512, 64, 3)
    transfer = TransferClassifier(backbone="resnet18", weights=None, freeze="none",
                                  input_size=112, **kwargs).fit(X[:128], y[:128])
    rows.append(row("TransferClassifier resnet18, 64×64 → 112×112", transfer, X))
    print(table(["model", "images", "predict_proba img/s", "onnxruntime img/s",
                 "onnxruntime vs predict_proba", "max |Δp|"], rows))


if __name__ == "__main__":
    main()
