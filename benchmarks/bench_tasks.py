"""Regression and label sets on digits-derived tasks: CNNRegressor and CNNClassifier against a
linear model on the pixels and a plain hand-written PyTorch loop on the same network.

    python benchmarks/bench_tasks.py            # about 4 minutes on 2 cores
    python benchmarks/bench_tasks.py --quick    # fewer images and epochs

Tasks (sklearn_cnn.datasets makes them, no download):

* rotated digits: how far (degrees) is a 24x24 digit rotated, in [-60, 60]? R² on held-out
  images;
* digit pairs, label sets: which digits are in an 8x16 picture of two? F1 (samples);
* digit pairs, two targets: the left and the right digit as numbers. R² (averaged).

The hand loop trains the same ConvNet (sklearn_cnn.networks) on the standardised targets with
Adam, the same learning rate, batch size and epochs, cosine schedule, float32: what a PyTorch
user would write without the estimator.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _common import machine, table
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import f1_score, r2_score
from sklearn.multiclass import OneVsRestClassifier

from sklearn_cnn import CNNClassifier, CNNRegressor
from sklearn_cnn.datasets import make_digit_pairs, make_rotated_digits
from sklearn_cnn.networks import ConvNet

warnings.simplefilter("ignore")


def hand_loop(X_train, y_train, X_test, *, multilabel: bool, epochs: int, lr: float,
              batch_size: int = 32, seed: int = 0) -> np.ndarray:
    """A plain PyTorch loop: standardised inputs and targets, MSE (or BCE), Adam, cosine."""
    torch.manual_seed(seed)
    x = torch.from_numpy(X_train[:, None].astype(np.float32))
    mean, std = x.mean(), x.std()
    targets = torch.from_numpy(np.asarray(y_train, dtype=np.float32).reshape(len(x), -1))
    if not multilabel:
        t_mean, t_std = targets.mean(0), targets.std(0)
        targets = (targets - t_mean) / t_std
    net = ConvNet(in_channels=1, n_classes=targets.shape[1], input_size=X_train.shape[1:],
                  dropout=0.25)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    loss_fn = torch.nn.BCEWithLogitsLoss() if multilabel else torch.nn.MSELoss()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), batch_size):
            index = order[start:start + batch_size]
            if len(index) < 2:
                continue
            optimizer.zero_grad()
            loss = loss_fn(net((x[index] - mean) / std), targets[index])
            loss.backward()
            optimizer.step()
        schedule.step()
    net.eval()
    with torch.no_grad():
        out = net((torch.from_numpy(X_test[:, None].astype(np.float32)) - mean) / std)
    if multilabel:
        return (out > 0).int().numpy()
    return (out * t_std + t_mean).numpy().reshape(len(X_test), *np.shape(y_train)[1:])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n, epochs = (800, 10) if args.quick else (3000, 30)
    lr = 0.002
    rows = []
    split = int(0.75 * n)

    def flat(images):
        return images.reshape(len(images), -1)

    X, angles, _ = make_rotated_digits(n, size=24, random_state=0)
    train, test = slice(0, split), slice(split, None)
    ours = CNNRegressor(max_epochs=epochs, lr=lr, random_state=0).fit(X[train], angles[train])
    loop = hand_loop(X[train], angles[train], X[test], multilabel=False, epochs=epochs, lr=lr)
    ridge = Ridge().fit(flat(X[train]), angles[train])
    rows.append(["rotated digits (angle)", "R²", f"{ours.score(X[test], angles[test]):.3f}",
                 f"{r2_score(angles[test], loop):.3f}",
                 f"{ridge.score(flat(X[test]), angles[test]):.3f}"])

    X, labels, pairs = make_digit_pairs(n, random_state=0)
    ours = CNNClassifier(max_epochs=epochs, lr=lr, random_state=0).fit(X[train], labels[train])
    loop = hand_loop(X[train], labels[train], X[test], multilabel=True, epochs=epochs, lr=lr)
    linear = OneVsRestClassifier(LogisticRegression(max_iter=2000)).fit(flat(X[train]),
                                                                      labels[train])

    def f1(predicted):
        return f"{f1_score(labels[test], predicted, average='samples'):.3f}"

    rows.append(["digit pairs (label sets)", "F1 (samples)", f1(ours.predict(X[test])),
                 f1(loop), f1(linear.predict(flat(X[test])))])

    targets = pairs.astype(float)
    ours = CNNRegressor(max_epochs=epochs, lr=lr, random_state=0).fit(X[train], targets[train])
    loop = hand_loop(X[train], targets[train], X[test], multilabel=False, epochs=epochs, lr=lr)
    ridge = Ridge().fit(flat(X[train]), targets[train])
    rows.append(["digit pairs (both digits as numbers)", "R²",
                 f"{ours.score(X[test], targets[test]):.3f}",
                 f"{r2_score(targets[test], loop):.3f}",
                 f"{ridge.score(flat(X[test]), targets[test]):.3f}"])

    print(f"### Regression and label sets on digits ({n} images, {split} to train, "
          f"{epochs} epochs; {machine()})\n")
    print(table(["task", "metric", "sklearn-cnn", "hand-written loop", "linear on pixels"],
                rows))


if __name__ == "__main__":
    main()
