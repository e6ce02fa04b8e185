"""``sklearn-cnn train data.ts`` and ``predict model data.ts``: time-series models trained
on the UCR/UEA archive's ``.ts`` files (classes or regression targets, as the file's header
says), saved as one file, and applied to the series of ``.ts`` files."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

__all__ = ["is_ts_file", "predict_series", "train_series"]


def is_ts_file(path: str) -> bool:
    """Whether ``path`` names a ``.ts`` file (of the time-series archive's format)."""
    return Path(path).suffix.lower() == ".ts"


def _read(path: str, *, labelled: bool):
    from ._ts_format import read_ts

    X, y, tags = read_ts(path)
    if labelled and y is None:
        raise ValueError(f"{path} has no labels or targets (@classLabel false, @targetLabel "
                         "false); training needs them (predict takes unlabelled files).")
    return X, y, tags


def _subset(X, index):
    return X[index] if isinstance(X, np.ndarray) else [X[i] for i in index]


def train_series(data: str, out: str, *, epochs: int | None, lr: float | None = None,
                 batch_size: int | None = None, device: str = "auto", test_size: float = 0.2,
                 test_data: str | None = None, architecture: str | None = None,
                 output_format: str = "safe", say=print) -> dict:
    """Train a TimeSeriesClassifier (or, for ``@targetLabel`` files, a TimeSeriesRegressor)
    on the series of a ``.ts`` file, report its score on ``test_data`` or on ``test_size``
    of the cases held out, and save it to ``out``."""
    from sklearn.model_selection import train_test_split

    from . import TimeSeriesClassifier, TimeSeriesRegressor
    from ._cli_files import write_model

    X, y, tags = _read(data, labelled=True)
    regression = y.dtype.kind == "f"
    shape = (f"{len(X)} series of {X.shape[1]} channel(s), {X.shape[2]} time points"
             if isinstance(X, np.ndarray) else
             f"{len(X)} series of {X[0].shape[0]} channel(s), {min(x.shape[1] for x in X)} to "
             f"{max(x.shape[1] for x in X)} time points")
    what = "regression targets" if regression else (
        f"{len(np.unique(y))} classes ({', '.join(map(str, np.unique(y)[:10]))})")
    say(f"{shape} with {what} from {data}", flush=True)
    options = {"device": device, "verbose": 1}
    for name, value in [("max_epochs", epochs), ("lr", lr), ("batch_size", batch_size),
                        ("architecture", architecture)]:
        if value is not None:
            options[name] = value
    model = (TimeSeriesRegressor if regression else TimeSeriesClassifier)(**options)
    if test_data is not None:
        X_train, y_train = X, y
        X_test, y_test, _ = _read(test_data, labelled=True)
    else:
        index = np.arange(len(y))
        try:
            train_index, test_index = train_test_split(
                index, test_size=test_size, random_state=0,
                stratify=None if regression else y)
        except ValueError:
            train_index, test_index = index, index[:0]
            say("too few series per class to hold some out: no held-out score")
        X_train, y_train = _subset(X, train_index), y[train_index]
        X_test, y_test = _subset(X, test_index), y[test_index]
    model.fit(X_train, y_train)
    score = None
    if len(y_test):
        score = model.score(X_test, y_test)
        where = test_data or "held-out series"
        say(f"{'R²' if regression else 'accuracy'} {score:.4f} on {len(y_test)} series of "
            f"{where} (trained on {len(y_train)})")
    write_model(model, out, output_format=output_format, say=say, inputs="SERIES.ts")
    return {"score": score, "model": model, "task": "regression" if regression else
            "classification"}


def predict_series(model, files: list[str], *, proba: bool = False, out=None) -> None:
    """Write CSV (a header row, then one row per series: file, case number, prediction) for
    the series of ``.ts`` files."""
    writer = csv.writer(out or sys.stdout)
    regression = not hasattr(model, "classes_")
    multilabel = getattr(model, "target_type_", None) == "multilabel-indicator"
    if regression:
        writer.writerow(["file", "case", *(f"target_{j}" for j in range(model.n_outputs_))])
    elif multilabel:
        names = [f"label_{j}" for j in model.classes_]
        writer.writerow(["file", "case", *names, *(f"p_{n}" for n in names if proba)])
    else:
        writer.writerow(["file", "case", "label", *(f"p_{c}" for c in model.classes_ if proba)])
    for file in files:
        if not is_ts_file(file):
            raise ValueError(f"{file} is not a .ts file; this model takes series, from the "
                             "time-series archive's .ts files.")
        X, _, _ = _read(file, labelled=False)
        if regression:
            values = np.asarray(model.predict(X)).reshape(len(X), -1)
            writer.writerows([file, i, *(f"{v:.6g}" for v in row)]
                             for i, row in enumerate(values))
            continue
        probabilities = model.predict_proba(X)
        for i, row in enumerate(probabilities):
            if multilabel:
                writer.writerow([file, i, *(int(p > 0.5) for p in row),
                                 *(f"{p:.4f}" for p in row if proba)])
            else:
                writer.writerow([file, i, model.classes_[row.argmax()],
                                 *(f"{p:.4f}" for p in row if proba)])
