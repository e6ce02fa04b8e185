"""Time series regression: TimeSeriesRegressor on the two archive regression sets aeon's
wheel ships (Covid3Month, CardanoSentiment, from the Monash/UEA TSER archive), side by
side in one run with aeon's MiniRocketRegressor, ridge regression on the flattened series
and the mean of the training targets.

    pip install aeon                                      # the data sets ship in its wheel
    python benchmarks/bench_timeseries_regression.py      # about 6 minutes on 2 cores
    python benchmarks/bench_timeseries_regression.py --seeds 1

Test RMSE on the archive's own train/test split (lower is better), the mean over
``--seeds`` random states for the networks and MiniRocket. The networks run with their
defaults (FCN, 200 epochs, per-channel standardisation, batch norm), and then with each of
the two fixes the eval-mode warning names for series of widely different scales:
``normalize="series"`` and ``batch_norm=False``. "warned" counts the fits that warned
(a ConvergenceWarning: predictions in eval mode worse than training reported, or no
better than the mean).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from _common import machine, table
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import RidgeCV
from sklearn.metrics import root_mean_squared_error

from sklearn_cnn import TimeSeriesRegressor
from sklearn_cnn.datasets import load_ts_dataset

SETS = ["Covid3Month", "CardanoSentiment"]
VARIANTS = {
    "FCN (defaults)": {},
    'FCN, normalize="series"': {"normalize": "series"},
    "FCN, batch_norm=False": {"batch_norm": False},
    "ResNet": {"architecture": "resnet"},
}


def network(X_train, y_train, X_test, y_test, seeds, **params):
    """Mean test RMSE over ``seeds``, mean fit seconds, and how many fits warned."""
    errors, seconds, warned = [], [], 0
    for seed in seeds:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            model = TimeSeriesRegressor(random_state=seed, **params).fit(X_train, y_train)
        seconds.append(time.perf_counter() - start)
        warned += any(issubclass(w.category, ConvergenceWarning) for w in caught)
        errors.append(root_mean_squared_error(y_test, model.predict(X_test)))
    return float(np.mean(errors)), float(np.mean(seconds)), warned


def minirocket(X_train, y_train, X_test, y_test, seeds):
    from aeon.regression.convolution_based import MiniRocketRegressor

    MiniRocketRegressor(random_state=0).fit(X_train[:10], y_train[:10])  # numba: untimed
    errors, seconds = [], []
    for seed in seeds:
        start = time.perf_counter()
        model = MiniRocketRegressor(random_state=seed).fit(X_train, y_train)
        seconds.append(time.perf_counter() - start)
        errors.append(root_mean_squared_error(y_test, model.predict(X_test)))
    return float(np.mean(errors)), float(np.mean(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--seeds", type=int, default=3, help="random states 0..seeds-1")
    args = parser.parse_args()
    seeds = range(args.seeds)
    print(f"# Time series regression: {machine()}\n")
    warnings.filterwarnings("ignore", category=UserWarning)
    rows = []
    for name in args.sets.split(","):
        X_train, X_test, y_train, y_test = load_ts_dataset(name)
        flat_train, flat_test = X_train.reshape(len(X_train), -1), X_test.reshape(len(X_test), -1)
        row = [name, f"{X_train.shape[1]}×{X_train.shape[2]}, {len(X_train)}/{len(X_test)}"]
        for params in VARIANTS.values():
            rmse, seconds, warned = network(X_train, y_train, X_test, y_test, seeds, **params)
            row.append(f"{rmse:.4f} ({seconds:.0f} s, warned {warned}/{len(seeds)})")
            print(name, params, row[-1], flush=True)
        rmse, seconds = minirocket(X_train, y_train, X_test, y_test, seeds)
        row.append(f"{rmse:.4f} ({seconds:.1f} s)")
        ridge = RidgeCV().fit(flat_train, y_train).predict(flat_test)
        mean = DummyRegressor().fit(flat_train, y_train).predict(flat_test)
        row += [f"{root_mean_squared_error(y_test, ridge):.4f}",
                f"{root_mean_squared_error(y_test, mean):.4f}"]
        rows.append(row)
    print()
    print(table(["data set", "channels×length, train/test", *VARIANTS, "MiniRocket",
                 "ridge", "mean"], rows))


if __name__ == "__main__":
    main()
