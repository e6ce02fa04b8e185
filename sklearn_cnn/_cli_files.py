"""``sklearn-cnn train`` and ``predict``: models trained on image folders or CSV files of
image paths and targets (the task inferred from the targets), saved as one file, and
applied to image files."""

from __future__ import annotations

import csv
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["TASKS", "check_out", "image_files", "infer_task", "predict", "read_csv", "read_model",
           "train", "write_model"]

TASKS = ("classification", "multilabel", "regression")


# ------------------------------------------------------------------------------ train
def check_out(out: str, *, force: bool) -> None:
    """Refuse an output path that cannot be written, or that holds a file already (without
    ``force``), before any training."""
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out}/model.safetensors")
    folder = path.resolve().parent
    if not folder.is_dir():
        raise ValueError(f"--out {out}: the folder {folder} does not exist; create it first.")
    if path.exists() and not force:
        raise ValueError(f"--out {out} exists already (from an earlier run?); pass --force to "
                         "overwrite it, or --out another file.")
    try:  # os.access says yes for root on read-only places (/proc): try it
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".sklearn-cnn-check-"):
            pass
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot write in {folder} ({exc.strerror}); choose "
                         "another folder.") from None


def _silent(*args, **kwargs) -> None:
    """print, in the processes of a data-parallel fit but the first."""


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def read_csv(path: str, *, path_column: str | None = None, targets: list[str] | None = None
             ) -> tuple[list[str], dict[str, list[str]]]:
    """The image paths (relative ones resolved against the CSV's folder) and the target
    columns of a CSV file with a header row."""
    csv_path = Path(path)
    with open(csv_path, newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows:
        raise ValueError(f"{path} has no rows under its header; it needs a column of image "
                         "paths and one or more target columns.")
    columns = list(rows[0])
    if path_column is None:
        path_column = next((c for c in columns if c.lower() in (
            "path", "file", "filename", "image", "image_path")), columns[0])
    if path_column not in columns:
        raise ValueError(f"{path} has no column {path_column!r}; its columns are {columns}. "
                         "Name the column of image paths with --path-column.")
    targets = targets or [c for c in columns if c != path_column]
    missing = [c for c in targets if c not in columns]
    if missing or not targets:
        raise ValueError(f"{path} has no target column {missing or ''}; its columns are "
                         f"{columns}. Name target columns with --target COLUMN (repeatable).")
    folder = csv_path.resolve().parent
    paths = [str(folder / row[path_column]) if not os.path.isabs(row[path_column])
             else row[path_column] for row in rows]
    absent = [p for p in paths if not os.path.isfile(p)]
    if absent:
        raise ValueError(f"{len(absent)} of the {len(paths)} image files named in {path} do not "
                         f"exist, e.g. {absent[0]} (relative paths are read from the CSV's "
                         "folder).")
    return paths, {c: [row[c] for row in rows] for c in targets}


def infer_task(columns: dict[str, list[str]], task: str | None) -> tuple[str, np.ndarray, str]:
    """(task, y, why): the task asked for, or the one the target columns imply."""
    names = list(columns)
    values = [[v.strip() for v in columns[c]] for c in names]
    numbers = [[_number(v) for v in column] for column in values]
    numeric = all(v is not None for column in numbers for v in column)
    if task is None:
        if len(names) > 1:
            if numeric and all(v in (0.0, 1.0) for column in numbers for v in column):
                task, why = "multilabel", f"inferred: {len(names)} columns of 0 and 1"
            elif numeric:
                task, why = "regression", f"inferred: {len(names)} numeric columns"
            else:
                raise ValueError(f"The target columns {names} are not all numbers; pass one "
                                 "column of class labels, numeric targets, or 0/1 label columns "
                                 "(and --task to say which).")
        elif not numeric:
            task, why = "classification", "inferred: text labels"
        else:
            distinct = np.unique(numbers[0])
            if np.all(distinct == np.round(distinct)) and len(distinct) <= 20:
                task, why = "classification", (f"inferred: integer targets with {len(distinct)} "
                                               "values; pass --task regression to predict "
                                               "them as numbers")
            else:
                task, why = "regression", "inferred: numeric targets"
    else:
        why = "as --task says"
    if task == "classification":
        if len(names) > 1:
            raise ValueError(f"--task classification takes one target column, got {names}; "
                             "for several 0/1 columns use --task multilabel.")
        return task, np.array(values[0]), why
    if not numeric:
        bad = next(v for column in values for v in column if _number(v) is None)
        raise ValueError(f"--task {task} needs numbers in the target columns {names}, but one "
                         f"holds {bad!r}.")
    y = np.array(numbers, dtype=np.float64).T
    if task == "multilabel":
        if not np.isin(y, [0.0, 1.0]).all():
            raise ValueError(f"--task multilabel needs the target columns {names} to hold 0 or "
                             "1 (whether each image has that label).")
        return task, y.astype(np.int64), why
    return task, (y[:, 0] if len(names) == 1 else y), why


def _score_text(task: str, model, X, y) -> str:
    from sklearn.metrics import f1_score, mean_absolute_error, r2_score

    if task == "regression":
        predicted = model.predict(X)
        return (f"held-out R² {r2_score(y, predicted):.4f}, mean absolute error "
                f"{mean_absolute_error(y, predicted):.4g}")
    if task == "multilabel":
        predicted = model.predict(X)
        return (f"held-out subset accuracy {model.score(X, y):.4f}, F1 (samples) "
                f"{f1_score(y, predicted, average='samples', zero_division=0):.4f}")
    return f"held-out accuracy: {model.score(X, y):.4f}"


def train(data: str, out: str, *, size: int, epochs: int, transfer: str | None = None,
          weights: str | None = None, lr: float | None = None, batch_size: int | None = None,
          device: str = "auto", test_size: float = 0.2, output_format: str = "safe",
          force: bool = False, on_error: str = "raise", path_column: str | None = None,
          targets: list[str] | None = None, task: str | None = None) -> dict:
    """Train on DATA (a folder of FOLDER/<class>/<image> files, or a CSV of paths and
    targets), report a held-out score, save the Pipeline (ImageLoader + the model)."""
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from . import CNNClassifier, CNNRegressor, TransferClassifier, TransferRegressor
    from .datasets import load_image_folder
    from .distributed import is_main_process
    from .files import ImageLoader, LazyImages

    # Under torchrun (a data-parallel fit), every process trains; the first prints and saves.
    main_process = is_main_process()
    say = print if main_process else _silent
    check_out(out, force=force)
    source = Path(data)
    names = None
    if source.is_dir():
        if targets or task not in (None, "classification"):
            raise ValueError(f"{data} is a folder: its sub-folders are the classes. --target "
                             "and --task regression/multilabel take a CSV file.")
        files, y = load_image_folder(source, size=size, lazy=True, n_jobs=-1,
                                     on_error=on_error)
        if y is None:
            raise ValueError(f"{data} has images but no class sub-folders; training needs "
                             f"{data}/<class>/<image> files (predict takes unlabelled ones).")
        paths, task, why = files.paths, "classification", "class sub-folders"
        say(f"{len(paths)} images in {len(np.unique(y))} classes "
              f"({', '.join(map(str, np.unique(y)))}) from {data}", flush=True)
    elif source.is_file():
        paths, columns = read_csv(data, path_column=path_column, targets=targets)
        task, y, why = infer_task(columns, task)
        names = list(columns)
        if on_error == "skip":
            readable, errors = LazyImages(paths, size=size, n_jobs=-1).readable()
            if not readable.all():
                say(f"skipped {int((~readable).sum())} unreadable image(s), e.g. "
                      f"{errors[0]}", file=sys.stderr)
                paths, y = np.asarray(paths, dtype=object)[readable], y[readable]
        say(f"{len(paths)} images from {data}; task: {task} ({why}); targets: "
              f"{', '.join(names)}", flush=True)
    else:
        raise ValueError(f"{data} is not a folder or a file; pass a folder of "
                         f"{data}/<class>/<image> files, or a CSV of image paths and targets.")
    options = {"max_epochs": epochs, "device": device, "verbose": 1 if main_process else 0}
    if lr is not None:
        options["lr"] = lr
    if batch_size is not None:
        options["batch_size"] = batch_size
    regression = task == "regression"
    if transfer:
        if weights is not None:
            options["weights"] = None if weights.lower() == "none" else weights
        model = (TransferRegressor if regression else TransferClassifier)(
            backbone=transfer, **options)
    else:
        if weights is not None:
            raise ValueError("--weights loads pretrained weights for --transfer BACKBONE; "
                             "a CNN trained from scratch has none.")
        model = (CNNRegressor if regression else CNNClassifier)(**options)
    pipeline = Pipeline([("load", ImageLoader(size=size, lazy=True, n_jobs=-1)),
                         ("model", model)])
    stratify = y if task == "classification" else None
    try:
        train_paths, test_paths, y_train, y_test = train_test_split(
            np.asarray(paths, dtype=object), y, test_size=test_size, stratify=stratify,
            random_state=0)
    except ValueError:
        train_paths, test_paths, y_train, y_test = paths, [], y, []
        say("too few images per class to hold some out: no held-out score")
    pipeline.fit(train_paths, y_train)
    if names is not None:
        model.target_names_ = names  # saved with the model: predict's column names
    score = None
    if len(test_paths):
        say(f"{_score_text(task, pipeline, test_paths, y_test)} on {len(test_paths)} images "
              f"(trained on {len(train_paths)})")
        score = pipeline.score(test_paths, y_test)
    if not main_process:
        return {"score": score, "pipeline": pipeline, "task": task}
    write_model(pipeline, out, output_format=output_format, say=say, inputs="IMAGES...")
    return {"score": score, "pipeline": pipeline, "task": task}


def write_model(model, out: str, *, output_format: str, say, inputs: str) -> None:
    """Save ``model`` to ``out`` (``"safe"``: :func:`sklearn_cnn.save`; ``"joblib"``) and
    say where, and how to predict with it (on ``inputs``)."""
    import joblib

    from . import save

    if output_format == "joblib":
        joblib.dump(model, out)
    else:
        save(model, out)
    say(f"saved to {out} ({Path(out).stat().st_size / 1024:.0f} KiB); predict with: "
        f"sklearn-cnn predict {out} {inputs}")


# ---------------------------------------------------------------------------- predict
def read_model(path: str):
    """A model saved by ``train``: the safe format, or a joblib file."""
    import joblib

    from . import load

    try:
        return load(path)
    except ValueError as exc:
        if "pickle (joblib) file" not in str(exc):
            raise
    model = joblib.load(path)
    if isinstance(model, dict) and "model" in model:
        raise ValueError(f"{path} was written by an older sklearn-cnn train (a dict, not a "
                         "model); train it again.")
    return model


def image_files(inputs: list[str]) -> list[str]:
    """The image files named, and those in the folders named (and their sub-folders), in
    order; a clear error for anything else."""
    from .files import IMAGE_SUFFIXES

    files = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            found = sorted(str(p) for p in path.rglob("*")
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise ValueError(f"{name} is a folder with no images "
                                 f"({', '.join(sorted(IMAGE_SUFFIXES))}) in it or below it.")
            files += found
        elif path.is_file():
            files.append(name)
        else:
            raise ValueError(f"{name} does not exist (neither an image file nor a folder).")
    return files


def predict(model_path: str, images: list[str], *, proba: bool = False, out=None,
            model=None) -> None:
    """Write CSV (a header row, then one row per image) of each image's prediction, with
    the model at ``model_path`` (already read: ``model``)."""
    from .files import ImageLoader

    model = read_model(model_path) if model is None else model
    if not (hasattr(model, "steps") and isinstance(model.steps[0][1], ImageLoader)):
        raise ValueError(f"{model_path} holds a {type(model).__name__} that takes pixel "
                         "arrays, not image files; predict needs a model saved by "
                         "sklearn-cnn train (a Pipeline that starts with ImageLoader).")
    files = image_files(images)
    final = model.steps[-1][1]
    writer = csv.writer(out or sys.stdout)
    names = getattr(final, "target_names_", None)
    if not hasattr(final, "classes_"):  # a regressor: the predicted numbers
        values = np.asarray(model.predict(files)).reshape(len(files), -1)
        names = names or [f"target_{j}" for j in range(values.shape[1])]
        writer.writerow(["file", *names])
        writer.writerows([file, *(f"{v:.6g}" for v in row)] for file, row in zip(files, values))
        return
    probabilities = model.predict_proba(files)
    if getattr(final, "target_type_", None) == "multilabel-indicator":
        names = names or [f"label_{j}" for j in final.classes_]
        writer.writerow(["file", *names, *(f"p_{n}" for n in names if proba)])
        for file, row in zip(files, probabilities):
            writer.writerow([file, *(int(p > 0.5) for p in row),
                             *(f"{p:.4f}" for p in row if proba)])
        return
    labels = final.classes_[probabilities.argmax(axis=1)]
    writer.writerow(["file", "label", *(f"p_{c}" for c in final.classes_ if proba)])
    for file, label, row in zip(files, labels, probabilities):
        writer.writerow([file, label, *(f"{p:.4f}" for p in row if proba)])
