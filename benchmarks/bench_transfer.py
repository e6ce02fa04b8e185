"""TransferClassifier throughput: resnet18 at 224×224, fine-tuned and predicting.

On CUDA with bf16 autocast (``precision="auto"``) and channels-last; on the CPU in float32
with fewer images. Random weights (``weights=None``): speed does not depend on them.
Run: ``python benchmarks/bench_transfer.py [--device cuda]``.
"""

from __future__ import annotations

import argparse

from _common import images, machine, table, timed

from sklearn_cnn import TransferClassifier
from sklearn_cnn.devices import resolve_device


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    n = 4096 if device.type == "cuda" else 64
    X, y = images(n, 224, 3)
    rows = []
    for freeze in ["backbone", "none"]:
        clf = TransferClassifier(backbone="resnet18", weights=None, freeze=freeze, max_epochs=1,
                                 batch_size=64, device=device, random_state=0)
        clf.fit(X[:128], y[:128])  # warm-up: kernels, allocator
        fit_s = timed(lambda: clf.fit(X, y), repeat=2)  # noqa: B023
        predict_s = timed(lambda: clf.predict_proba(X), repeat=2)  # noqa: B023
        precision = "bf16 autocast" if clf._autocast_dtype(device) is not None else "float32"
        rows.append([f"freeze={freeze!r}", precision, f"{n / fit_s:,.0f}",
                     f"{n / predict_s:,.0f}"])
    print(f"Machine: {machine()}\n")
    print(f"### resnet18, {n} uint8 images of 224×224×3, batch 64, on {device}\n")
    print(table(["", "precision", "fit images/s", "predict_proba images/s"], rows))


if __name__ == "__main__":
    main()
