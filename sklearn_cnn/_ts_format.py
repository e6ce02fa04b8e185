"""The UCR/UEA archive's ``.ts`` format, read without aeon or sktime.

A ``.ts`` file has a header of ``@tag value`` lines (``@problemName``, ``@timeStamps``,
``@missing``, ``@univariate``, ``@dimensions``, ``@equalLength``, ``@seriesLength``,
``@classLabel true <labels>`` or ``@targetLabel true``), comments starting with ``#`` or
``%``, then ``@data`` and one case per line: each channel's comma-separated values, the
channels separated by ``:``, the class label or target last. ``?`` (or ``NaN``) is a
missing value. The format is described at timeseriesclassification.com and in aeon's
``load_from_ts_file``, which this reader agrees with on the archive's files.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

__all__ = ["read_ts"]

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
