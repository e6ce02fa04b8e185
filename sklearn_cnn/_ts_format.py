"""The UCR/UEA archive's ``.ts`` format, read without aeon or sktime.

A ``.ts`` file has a header of ``@tag value`` lines (``@problemName``, ``@timeStamps``,
``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels>`` or ``@targetLabel true``), comments starting with ``#`` or
``%``, then ``@data`` and one case per line: each channel's comma-separated values, the
channels separated by ``:``, the class label or target last. ``?`` (or ``NaN``) is a
missing value. The format is described at timeseriesclassification.com and in aeon's
``load_from_ts_file``, which this reader agrees with on the archive's files.

:mod:`sklearn_cnn.datasets` offers :func:`load_ts_file` and :func:`load_ts_dataset`.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

__all__ = ["load_ts_dataset", "load_ts_file", "read_ts"]

_TRUE = {"true": True, "false": False}


def _header(lines, path: Path) -> tuple[dict, int]:
    """The header's tags (lower-case names) and the index of the first data line."""
    tags: dict = {}
    for number, raw in enumerate(lines):
        line = raw.strip()
        if not line or line[0] in "#%":
            continue
        if not line.startswith("@"):
            raise ValueError(f"{path}, line {number + 1}: expected a header tag (@...) or "
                             f"@data before the series, got {line[:40]!r}.")
        name, _, value = line[1:].partition(" ")
        name, value = name.lower(), value.strip()
        if name == "data":
            return tags, number + 1
        if name in ("classlabel", "targetlabel"):
            flag, _, labels = value.partition(" ")
            tags[name] = _flag(flag, name, path)
            tags[f"{name}s"] = labels.split()
        elif name in ("timestamps", "missing", "univariate", "equallength"):
            tags[name] = _flag(value, name, path)
        else:
            tags[name] = value
    raise ValueError(f"{path} has no @data line: it is not a .ts file, or it is cut short.")


def _flag(value: str, name: str, path: Path) -> bool:
    try:
        return _TRUE[value.lower()]
    except KeyError:
        raise ValueError(f"{path}: @{name} must be true or false, got {value!r}.") from None


def _values(text: str, where: str) -> np.ndarray:
    values = []
    for token in text.split(","):
        token = token.strip()
        if token in ("?", "") or token.lower() == "nan":
            values.append(math.nan)
            continue
        try:
            values.append(float(token))
        except ValueError:
            raise ValueError(f"{where}: {token!r} is not a number (nor '?', a missing "
                             "value).") from None
    return np.asarray(values, dtype=np.float64)


def read_ts(path) -> tuple[np.ndarray | list, np.ndarray | None, dict]:
    """(series, labels or targets or None, header tags) of a ``.ts`` file.

    The series are one (n_cases, n_channels, n_timepoints) array when all have one
    length, else a list of (n_channels, n_timepoints_i) arrays; missing values are NaN,
    and a warning counts them.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file; .ts files are text.") from None
    tags, first = _header(lines, path)
    if tags.get("timestamps"):
        raise ValueError(f"{path} has @timeStamps true: series of (time stamp, value) pairs "
                         "are not read here. Resample them onto a regular grid and write "
                         "the values only.")
    labelled = tags.get("classlabel", False) or tags.get("targetlabel", False)
    series, labels = [], []
    for number in range(first, len(lines)):
        line = lines[number].strip()
        if not line or line[0] in "#%":
            continue
        where = f"{path}, line {number + 1}"
        fields = line.split(":")
        if labelled:
            if len(fields) < 2:
                raise ValueError(f"{where}: no label after the values (the header says "
                                 "each case has one, after the last ':').")
            labels.append(fields.pop().strip())
        channels = [_values(field, where) for field in fields]
        if len({len(c) for c in channels}) > 1:
            raise ValueError(f"{where}: the channels of this case have different lengths "
                             f"({', '.join(str(len(c)) for c in channels)}); within a case "
                             "all channels need one length.")
        series.append(np.stack(channels))
    if not series:
        raise ValueError(f"{path} holds no series after @data.")
    counts = {s.shape[0] for s in series}
    if len(counts) > 1:
        raise ValueError(f"{path}: cases have different numbers of channels "
                         f"({sorted(counts)}); every case needs the same.")
    dimensions = tags.get("dimensions") or tags.get("dimension")
    if dimensions is not None and dimensions.isdigit() and int(dimensions) != series[0].shape[0]:
        raise ValueError(f"{path}: @dimensions says {dimensions}, but the cases have "
                         f"{series[0].shape[0]} channel(s).")
    _report_missing(series, path)
    X = np.stack(series) if len({s.shape[1] for s in series}) == 1 else series
    y = None
    if tags.get("classlabel"):
        y = np.asarray(labels)
        declared = tags.get("classlabels") or []
        unknown = sorted({str(v) for v in y} - set(declared)) if declared else []
        if unknown:
            raise ValueError(f"{path}: labels {unknown[:5]} are not among the classes the "
                             f"header declares ({declared}).")
    elif tags.get("targetlabel"):
        try:
            y = np.asarray(labels, dtype=np.float64)
        except ValueError:
            raise ValueError(f"{path}: @targetLabel true, but some targets are not "
                             "numbers.") from None
    return X, y, tags


def _report_missing(series: list[np.ndarray], path: Path) -> None:
    missing = [i for i, s in enumerate(series) if np.isnan(s).any()]
    if missing:
        total = sum(int(np.isnan(series[i]).sum()) for i in missing)
        warnings.warn(
            f"{path} has {total} missing values ('?') in {len(missing)} of its {len(series)} "
            f"series (e.g. series {missing[:5]}); they are NaN here. The time-series "
            "estimators take complete series: fill the gaps (e.g. interpolate along time) "
            "or drop those series before fitting.", UserWarning, stacklevel=3)


# -------------------------------------------------- the loaders sklearn_cnn.datasets offers
def load_ts_file(path):
    """Read a ``.ts`` file of the UCR/UEA time-series archive.

    Univariate and multivariate series, of equal or unequal lengths, with class labels
    (``@classLabel true``), regression targets (``@targetLabel true``) or neither. Missing
    values (``?``) become NaN, with a warning that counts them (the estimators take
    complete series). aeon and sktime are not needed.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    X : ndarray of shape (n_cases, n_channels, n_timepoints) or list of ndarray
        The series, float64: one array when all have one length (aeon's layout), else a
        list of (n_channels, n_timepoints_i) arrays, which the time-series estimators
        take as they are.
    y : ndarray of shape (n_cases,) or None
        Class labels as strings, or targets as floats, or None for a file without them.

    Examples
    --------
    >>> import os, tempfile
    >>> from sklearn_cnn.datasets import load_ts_file
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.ts")
    >>> with open(path, "w") as f:
    ...     _ = f.write("@problemName tiny\\n@univariate true\\n@equalLength false\\n"
    ...                 "@classLabel true a b\\n@data\\n1,2,3:a\\n4,5:b\\n")
    >>> X, y = load_ts_file(path)
    >>> [x.shape for x in X], y.tolist()
    ([(1, 3), (1, 2)], ['a', 'b'])
    """
    X, y, _ = read_ts(path)
    return X, y


def _aeon_data_folder() -> Path | None:
    """The folder of the data sets aeon's wheel ships, without importing aeon."""
    from importlib.util import find_spec

    spec = find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def load_ts_dataset(name, split=None, *, folder=None):
    """A UCR/UEA archive data set by name, from ``.ts`` files on this machine.

    Looks for ``<name>_TRAIN.ts`` and ``<name>_TEST.ts`` in ``folder`` (and in
    ``folder/<name>``), or, without ``folder``, among the data sets that aeon's wheel
    ships (``pip install aeon``; read as files, aeon is not imported): ArrowHead,
    BasicMotions, GunPoint, ItalyPowerDemand, JapaneseVowels, OSULeaf,
    PickupGestureWiimoteZ and ACSF1 for classification, Covid3Month and CardanoSentiment
    for regression. Nothing is downloaded.

    Parameters
    ----------
    name : str
        The data set, as the archive spells it ("GunPoint").
    split : {"train", "test"} or None, default=None
        One split, or both.
    folder : str, os.PathLike or None, default=None
        Where the files are (e.g. unzipped from timeseriesclassification.com).

    Returns
    -------
    X, y
        With ``split`` given: the split's series and labels or targets (see
        :func:`load_ts_file`).
    X_train, X_test, y_train, y_test
        With ``split=None``, in the order of scikit-learn's ``train_test_split``.

    Examples
    --------
    >>> from sklearn_cnn.datasets import load_ts_dataset
    >>> X_train, X_test, y_train, y_test = load_ts_dataset("GunPoint")  # doctest: +SKIP
    >>> X_train.shape, X_test.shape, sorted(set(y_train))  # doctest: +SKIP
    ((50, 1, 150), (150, 1, 150), ['1', '2'])
    """
    if split not in (None, "train", "test"):
        raise ValueError(f"split must be 'train', 'test' or None (both), got {split!r}.")
    bundled = _aeon_data_folder()
    places = [Path(folder), Path(folder) / name] if folder is not None else (
        [bundled / name] if bundled is not None else [])
    found = {}
    for part in ("train", "test"):
        for place in places:
            candidate = place / f"{name}_{part.upper()}.ts"
            if candidate.is_file():
                found[part] = candidate
                break
    wanted = ("train", "test") if split is None else (split,)
    missing = [part for part in wanted if part not in found]
    if missing:
        where = ", ".join(str(p) for p in places) or "nowhere: aeon is not installed"
        raise FileNotFoundError(
            f"No {name}_{missing[0].upper()}.ts in {where}. Download {name} from "
            "timeseriesclassification.com (the .ts files), unzip it and pass "
            "folder=<where>; or pip install aeon, whose wheel ships a few archive sets "
            "(GunPoint, ItalyPowerDemand, ArrowHead, BasicMotions, JapaneseVowels, ...).")
    if split is not None:
        return load_ts_file(found[split])
    X_train, y_train = load_ts_file(found["train"])
    X_test, y_test = load_ts_file(found["test"])
    return X_train, X_test, y_train, y_test
