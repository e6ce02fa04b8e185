"""Time series: TimeSeriesClassifier's architectures on UCR/UEA archive data sets, side by
side in one run with aeon's MiniRocket (the fast state of the art without deep learning),
1-NN with Euclidean distance, and a hand-written PyTorch loop of the same FCN.

    pip install aeon                                   # the data sets ship in its wheel
    python benchmarks/bench_timeseries.py              # about an hour on 2 cores
    python benchmarks/bench_timeseries.py --quick      # GunPoint and ItalyPowerDemand, FCN
    python benchmarks/bench_timeseries.py --sets GunPoint,OSULeaf --architectures fcn,resnet
    python benchmarks/bench_timeseries.py --architectures fcn --rounds 2   # the speed ratio

Every estimator runs with its default parameters and random_state=0 (200 epochs, batch 16,
Adam at 0.001, cosine schedule, per-channel standardisation), on the archive's own
train/test split. MiniRocket is aeon's MiniRocketClassifier(random_state=0), its numba
code compiled before timing; 1-NN compares the flattened series (the archive's series come
z-normalised). Series of unequal lengths (JapaneseVowels, PickupGestureWiimoteZ) are given
to our estimators as they are, and zero-padded to the longest for MiniRocket and 1-NN.

The hand loop trains the same network (sklearn_cnn.networks1d.FCN, torch's own batch norm
where no series is padded) on the same standardised series with the same optimiser,
learning rate, batch size, epochs, schedule and precision (bfloat16 autocast where the
estimator's precision="auto" chooses it): what a PyTorch user writes without the
estimator. "hand / estimator" is its fit time over the estimator's; above 1 the estimator
is faster. The two are timed back to back, ``--rounds`` times (the best of each kept): this
machine's speed drifts by ±15% over minutes.

Published figures: FCN and ResNet of Fawaz et al. (2019), "Deep learning for time series
classification: a review", mean test accuracy of 10 runs (their repository's
results/results-ucr.csv and, for JapaneseVowels, results-mts.csv; BasicMotions and
PickupGestureWiimoteZ were not in that study).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _common import machine, table
from torch.nn import functional as F

from sklearn_cnn import TimeSeriesClassifier
from sklearn_cnn.datasets import load_ts_dataset
from sklearn_cnn.networks1d import FCN, padding_free

warnings.simplefilter("ignore")

SETS = ["GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels",
        "OSULeaf", "PickupGestureWiimoteZ"]
ARCHITECTURES = ["fcn", "resnet", "inception", "convnet"]
PUBLISHED = {  # (FCN, ResNet), Fawaz et al. 2019
    "GunPoint": (1.00, 0.99), "ItalyPowerDemand": (0.96, 0.96), "ArrowHead": (0.85, 0.84),
    "OSULeaf": (0.98, 0.98), "JapaneseVowels": (0.99, 0.99),
}


def padded(X, length: int) -> np.ndarray:
    """Series (an array, or a list of unequal lengths) zero-padded to ``length``."""
    out = np.zeros((len(X), X[0].shape[0], length))
    for i, x in enumerate(X):
        out[i, :, :x.shape[1]] = x
    return out


def describe(X) -> str:
    if isinstance(X, np.ndarray):
        return f"{len(X)} × {X.shape[1]} × {X.shape[2]}"
    lengths = [x.shape[1] for x in X]
    return f"{len(X)} × {X[0].shape[0]} × {min(lengths)}–{max(lengths)}"


def hand_loop(X, y, *, epochs: int, autocast: torch.dtype | None, seed: int = 0) -> float:
    """The same FCN trained by a plain loop; returns the fit time in seconds."""
    start = time.perf_counter()
    longest = max(x.shape[1] for x in X)
    values = np.full((len(X), X[0].shape[0], longest), np.nan, dtype=np.float32)
    for i, x in enumerate(X):
        values[i, :, :x.shape[1]] = x
    x_all = torch.from_numpy(values)
    _, targets = np.unique(y, return_inverse=True)
    y_all = torch.from_numpy(targets)
    torch.manual_seed(seed)
    net = FCN(in_channels=values.shape[1], n_outputs=int(targets.max()) + 1,
              normalize="channel")
    net.input.set_statistics(np.nanmean(values, axis=(0, 2)), np.nanstd(values, axis=(0, 2)))
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    equal = not np.isnan(values).any()
    with padding_free(net, free=equal):
        for _ in range(epochs):
            net.train()
            order = torch.randperm(len(x_all), generator=generator)
            for first in range(0, len(x_all), 16):
                index = order[first:first + 16]
                if len(index) < 2:
                    continue
                with torch.autocast("cpu", dtype=autocast or torch.float32,
                                    enabled=autocast is not None):
                    loss = F.cross_entropy(net(x_all[index]).float(), y_all[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            schedule.step()
    return time.perf_counter() - start


def minirocket(X_train, y_train, X_test, y_test) -> tuple[float, float]:
    from aeon.classification.convolution_based import MiniRocketClassifier

    # numba compiles MiniRocket's kernels on first use: once, untimed.
    few = np.concatenate([np.flatnonzero(y_train == c)[:3] for c in np.unique(y_train)])
    MiniRocketClassifier(random_state=0).fit(X_train[few], y_train[few])
    start = time.perf_counter()
    model = MiniRocketClassifier(random_state=0).fit(X_train, y_train)
    seconds = time.perf_counter() - start
    return float((model.predict(X_test) == y_test).mean()), seconds


def nearest_neighbour(X_train, y_train, X_test, y_test) -> tuple[float, float]:
    from sklearn.neighbors import KNeighborsClassifier

    start = time.perf_counter()
    model = KNeighborsClassifier(n_neighbors=1).fit(X_train.reshape(len(X_train), -1), y_train)
    accuracy = model.score(X_test.reshape(len(X_test), -1), y_test)
    return accuracy, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--architectures", default=",".join(ARCHITECTURES))
    parser.add_argument("--epochs", type=int, default=None,
                        help="max_epochs (default: the estimator's, 200)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times FCN and the hand loop are timed back to back (best kept)")
    args = parser.parse_args()
    sets = ["GunPoint", "ItalyPowerDemand"] if args.quick else args.sets.split(",")
    architectures = ["fcn"] if args.quick else args.architectures.split(",")
    options = {} if args.epochs is None else {"max_epochs": args.epochs}
    epochs = TimeSeriesClassifier(**options).max_epochs
    print(f"# Time series: {machine()}\n")
    # Untimed: the first fit of a process pays for imports and oneDNN's kernel set-up.
    X_warm, y_warm = load_ts_dataset(sets[0], split="train")
    TimeSeriesClassifier(max_epochs=2, verbose=0).fit(X_warm, y_warm)
    hand_loop(X_warm, y_warm, epochs=2, autocast=None)
    accuracy_rows, time_rows, normalisation_rows, notes = [], [], [], []
    for name in sets:
        X_train, X_test, y_train, y_test = load_ts_dataset(name)
        accuracy, seconds, hand = {}, {}, float("inf")
        # FCN first, each fit followed at once by the hand loop of the same network.
        for architecture in sorted(architectures, key=lambda a: a != "fcn"):
            for _ in range(args.rounds if architecture == "fcn" else 1):
                start = time.perf_counter()
                try:
                    model = TimeSeriesClassifier(architecture=architecture, random_state=0,
                                                 verbose=0, **options).fit(X_train, y_train)
                except ValueError as exc:  # series too short for the network: said
                    print(f"{name} {architecture}: {exc}", flush=True)
                    notes.append(f"{name}, {architecture}: {str(exc).split(':')[0]}.")
                    break
                took = time.perf_counter() - start
                seconds[architecture] = min(took, seconds.get(architecture, float("inf")))
                accuracy[architecture] = model.score(X_test, y_test)
                if architecture == "fcn":
                    hand = min(hand, hand_loop(X_train, y_train, epochs=epochs,
                                               autocast=model.net_.autocast_dtype))
                print(f"{name} {architecture}: {accuracy[architecture]:.4f} in {took:.1f} s",
                      flush=True)
        if "fcn" not in seconds:
            hand = hand_loop(X_train, y_train, epochs=epochs, autocast=None)
        longest = max(max(x.shape[1] for x in X_train), max(x.shape[1] for x in X_test))
        flat_train, flat_test = padded(X_train, longest), padded(X_test, longest)
        rocket, rocket_seconds = minirocket(flat_train, y_train, flat_test, y_test)
        knn, knn_seconds = nearest_neighbour(flat_train, y_train, flat_test, y_test)
        fcn, resnet = (f"{v:.2f}" for v in PUBLISHED[name]) if name in PUBLISHED else ("—",
                                                                                      "—")
        accuracy_rows.append([name, describe(X_train),
                              *(f"{accuracy[a]:.3f}" if a in accuracy else "—"
                                for a in architectures),
                              f"{rocket:.3f}", f"{knn:.3f}", fcn, resnet])
        ratio = f"{hand / seconds['fcn']:.2f}" if "fcn" in seconds else "—"
        time_rows.append([name, *(f"{seconds[a]:.1f}" if a in seconds else "—"
                                  for a in architectures),
                          f"{hand:.1f}", ratio, f"{rocket_seconds:.1f}", f"{knn_seconds:.2f}"])
        if name == "JapaneseVowels" and "fcn" in architectures:
            series = TimeSeriesClassifier(normalize="series", random_state=0, verbose=0,
                                          **options).fit(X_train, y_train)
            normalisation_rows.append([name, f"{accuracy['fcn']:.3f}",
                                       f"{series.score(X_test, y_test):.3f}"])
    names = {"fcn": "FCN", "resnet": "ResNet", "inception": "Inception",
             "convnet": "convnet"}
    columns = [names[a] for a in architectures]
    # the mean of each column of accuracies (the architectures, MiniRocket and 1-NN) over
    # the data sets where it has one
    means = [np.mean([float(row[2 + i]) for row in accuracy_rows if row[2 + i] != "—"])
             for i in range(len(architectures) + 2)]
    rocket_mean = means[len(architectures)]
    rows = [*accuracy_rows, ["mean", "", *(f"**{m:.3f}**" for m in means), "", ""]]
    print(f"\n## Test accuracy ({epochs} epochs, random_state=0)\n")
    print(table(["data set", "train n × channels × length", *columns, "MiniRocket",
                 "1-NN ED", "FCN (Fawaz 2019)", "ResNet (Fawaz 2019)"], rows))
    for note in notes:
        print(f"\n— {note}")
    if "fcn" in architectures:
        fcn_mean = np.mean([float(row[2 + architectures.index("fcn")]) for row in rows[:-1]])
        print(f"\nFCN (the default) minus MiniRocket, mean over the data sets: "
              f"{fcn_mean - rocket_mean:+.3f}")
    print("\n## Fit time (seconds)\n")
    print(table(["data set", *columns, "hand loop (FCN)", "hand / estimator (FCN)",
                 "MiniRocket", "1-NN ED"], time_rows))
    if normalisation_rows:
        print("\n## Normalisation (FCN)\n")
        print(table(["data set", 'normalize="channel" (default)', 'normalize="series"'],
                    normalisation_rows))


if __name__ == "__main__":
    main()
