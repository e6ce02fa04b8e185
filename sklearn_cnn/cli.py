"""Command line: ``sklearn-cnn demo | train | predict`` (also ``python -m sklearn_cnn``)."""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

__all__ = ["main"]

DESCRIPTION = (
    "Convolutional networks as scikit-learn estimators, from the command line. 'train' fits "
    "a CNN (or fine-tunes a pretrained backbone) on a folder of images with one sub-folder "
    "per class, or on a CSV file of image paths and targets (classes, label sets or "
    "numbers), reports a held-out score and saves the model; 'predict' applies a saved "
    "model to image files or folders; 'demo' trains on scikit-learn's digits."
)
EXIT_STATUS = (
    "exit status: 0 on success; 2 for a user error, described in one line on standard error "
    "(SKLEARN_CNN_DEBUG=1 shows the traceback); 130 when interrupted (Ctrl-C)."
)
TASKS = ("classification", "multilabel", "regression")
# Where an error's advice names the Python API, the CLI user gets the flag that does it.
_CLI_ADVICE = [
    ("weights='path/to/file.pth'", "--weights path/to/file.pth"),
    ("weights=None", "--weights none"),
    ("load the folder with on_error='skip'", "pass --on-error skip"),
    ("on_error='skip'", "--on-error skip"),
]


# ------------------------------------------------------------------------------- demo
@contextmanager
def search_progress(n_fits: int):
    """Shows a scikit-learn search's fits done, of ``n_fits``, and the time left: a tqdm bar
    where a person watches, else a line per fit.

    scikit-learn's searches run their fits through its ``Parallel`` (joblib's), which calls
    ``print_progress`` in this process each time a fit ends, whatever the backend: that is
    the one place where completions are seen. (joblib's own ``verbose`` progress cannot say
    the time left until every fit has been dispatched.)
    """
    from sklearn.utils import parallel

    from .callbacks import interactive

    start = time.perf_counter()
    bar = None
    if interactive():
        from tqdm.auto import tqdm

        bar = tqdm(total=n_fits, desc="GridSearchCV", unit="fit", dynamic_ncols=True)

    def report(self):
        done = min(self.n_completed_tasks, n_fits)
        if bar is not None:
            bar.update(done - bar.n)
            return
        elapsed = time.perf_counter() - start
        left = elapsed / done * (n_fits - done) if done else float("nan")
        print(f"  fits done: {done}/{n_fits}, {elapsed:.0f} s elapsed, about {left:.0f} s "
              "left", file=sys.stderr, flush=True)

    original = parallel.Parallel.print_progress
    parallel.Parallel.print_progress = report
    try:
        yield
    finally:
        parallel.Parallel.print_progress = original
        if bar is not None:
            bar.close()



def _results_table(search, top: int = 10) -> str:
    results = search.cv_results_
    order = np.argsort(results["rank_test_score"])[:top]
    names = list(search.param_grid)
    short = [name.split("__")[-1] for name in names]
    lines = ["| rank | " + " | ".join(short) + " | mean CV accuracy | std | fit s |",
             "|---:|" + "---|" * len(short) + "---:|---:|---:|"]
    for i in order:
        values = " | ".join(str(results[f"param_{name}"][i]) for name in names)
        lines.append(f"| {results['rank_test_score'][i]} | {values} | "
                     f"{results['mean_test_score'][i]:.4f} | {results['std_test_score'][i]:.4f} | "
                     f"{results['mean_fit_time'][i]:.1f} |")
    return "\n".join(lines)


def demo(n_jobs: int = 2, quick: bool = False, out: str | None = None) -> dict:
    """Digits: Pipeline + GridSearchCV, SVC baseline, save/load round trips. Returns scores."""
    import joblib
    from sklearn.model_selection import GridSearchCV, ParameterGrid, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from . import CNNClassifier, load, save
    from .datasets import load_digits_images
    from .preprocessing import ChannelStandardizer, PixelScaler

    if out:
        _check_out(out, force=True)
    start = time.perf_counter()
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of "
          f"{X.shape[1]}x{X.shape[2]} pixels, {len(np.unique(y))} classes")

    pipeline = Pipeline([
        ("scale", PixelScaler()),
        ("standardize", ChannelStandardizer()),
        ("cnn", CNNClassifier(max_epochs=3 if quick else 20, random_state=0, verbose=0)),
    ])
    grid = {"cnn__dropout": [0.0, 0.25], "cnn__lr": [0.002, 0.01],
            "cnn__optimizer": ["adam", "sgd"]}
    if quick:
        grid = {"cnn__dropout": [0.0, 0.25], "cnn__optimizer": ["adam"]}
    search = GridSearchCV(pipeline, grid, cv=3, n_jobs=n_jobs)
    n_fits = 3 * len(list(ParameterGrid(grid)))
    print(f"GridSearchCV over {grid} with 3-fold CV ({n_fits} fits and a refit), "
          f"n_jobs={n_jobs} ...", flush=True)
    with search_progress(n_fits):
        search.fit(X_train, y_train)
    print(_results_table(search))
    print(f"best: {search.best_params_}")

    cnn_accuracy = search.score(X_test, y_test)
    svc = SVC().fit(X_train.reshape(len(X_train), -1), y_train)
    svc_accuracy = svc.score(X_test.reshape(len(X_test), -1), y_test)
    print(f"\nheld-out accuracy: CNN {cnn_accuracy:.4f}   SVC baseline {svc_accuracy:.4f}")

    expected = search.predict(X_test)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(out) if out else Path(tmp) / "digits_cnn.safetensors"
        save(search.best_estimator_, path)
        same = np.array_equal(load(path).predict(X_test), expected)
        joblib.dump(search.best_estimator_, Path(tmp) / "digits_cnn.joblib")
        same_joblib = np.array_equal(
            joblib.load(Path(tmp) / "digits_cnn.joblib").predict(X_test), expected)
        where = f"saved to {path}" if out else (
            "saved to a temporary file (pass --out PATH to keep it)")
        print(f"{where}: {path.stat().st_size / 1024:.0f} KiB, safe format "
              f"(sklearn_cnn.save); reloaded predictions {'identical' if same else 'DIFFER'}, "
              f"and after a joblib round trip {'identical' if same_joblib else 'DIFFER'}; "
              f"first ten: {expected[:10].tolist()} (true {y_test[:10].tolist()})")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return {"cnn": cnn_accuracy, "svc": svc_accuracy,
            "reloaded_identical": same and same_joblib}


# ------------------------------------------------------------------------------ train
def _check_out(out: str, *, force: bool) -> None:
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
    import joblib
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from . import CNNClassifier, CNNRegressor, TransferClassifier, TransferRegressor, save
    from .datasets import load_image_folder
    from .distributed import is_main_process
    from .files import ImageLoader, LazyImages

    # Under torchrun (a data-parallel fit), every process trains; the first prints and saves.
    main_process = is_main_process()
    say = print if main_process else _silent
    _check_out(out, force=force)
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
    if output_format == "joblib":
        joblib.dump(pipeline, out)
    else:
        save(pipeline, out)
    say(f"saved to {out} ({Path(out).stat().st_size / 1024:.0f} KiB); predict with: "
          f"sklearn-cnn predict {out} IMAGES...")
    return {"score": score, "pipeline": pipeline, "task": task}


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


def predict(model_path: str, images: list[str], *, proba: bool = False, out=None) -> None:
    """Write CSV (a header row, then one row per image) of each image's prediction."""
    from .files import ImageLoader

    model = read_model(model_path)
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


# ------------------------------------------------------------------------ the parser
def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, and keeps the descriptions' paragraphs."""


def parser() -> argparse.ArgumentParser:
    """The ``sklearn-cnn`` argument parser."""
    main_parser = argparse.ArgumentParser(prog="sklearn-cnn", description=DESCRIPTION,
                                          epilog=EXIT_STATUS, formatter_class=_Formatter)
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p_demo = commands.add_parser(
        "demo", help="train on scikit-learn's digits: Pipeline, GridSearchCV, saving",
        description="Train CNNs on scikit-learn's 8x8 digits: a Pipeline searched by "
                    "GridSearchCV over dropout, learning rate and optimizer, compared with an "
                    "SVC, saved and reloaded.", epilog=EXIT_STATUS, formatter_class=_Formatter)
    p_demo.add_argument("--n-jobs", type=int, default=2,
                        help="parallel fits in the grid search (-1: one per core)")
    p_demo.add_argument("--quick", action="store_true", help="a small grid, for smoke tests")
    p_demo.add_argument("--out", help="where to save the best model (default: a temporary "
                                      "file, deleted at the end)")

    p_train = commands.add_parser(
        "train", help="train on a folder of images or a CSV of image paths and targets",
        description="Train on DATA and save one model file (an ImageLoader + model "
                    "Pipeline) that 'predict' and sklearn_cnn.load read.\n\nDATA is a folder "
                    "with one sub-folder of images per class (DATA/cat/1.jpg ...), or a CSV "
                    "file with a header row: a column of image paths (relative ones are read "
                    "from the CSV's folder) and one or more target columns: class labels, 0/1 "
                    "label columns (multi-label) or numbers (regression).",
        epilog=EXIT_STATUS, formatter_class=_Formatter)
    p_train.add_argument("data", metavar="DATA",
                         help="a folder of DATA/<class>/<image> files, or a CSV file")
    p_train.add_argument("--out", default="model.safetensors",
                         help="the model file to write; an existing one needs --force")
    p_train.add_argument("--force", action="store_true",
                         help="overwrite --out if it exists")
    p_train.add_argument("--format", choices=["safe", "joblib"], default="safe",
                         help="safe: sklearn_cnn.save (no code runs on load); joblib: a pickle, "
                              "for trusted use")
    p_train.add_argument("--size", type=_positive(int), default=32,
                         help="resize every image to SIZE x SIZE pixels")
    p_train.add_argument("--epochs", type=_positive(int), default=20,
                         help="passes over the training images")
    p_train.add_argument("--lr", type=_positive(float),
                         help="learning rate (default: the estimator's, 0.002 for a CNN, 0.001 "
                              "with --transfer)")
    p_train.add_argument("--batch-size", type=_positive(int),
                         help="images per training step (default: 32)")
    p_train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p_train.add_argument("--test-size", type=_fraction, default=0.2,
                         help="share of the images held out for the reported score")
    p_train.add_argument("--transfer", metavar="BACKBONE",
                         help="fine-tune a pretrained backbone (e.g. resnet18) instead of "
                              "training a CNN from scratch")
    p_train.add_argument("--weights", metavar="FILE",
                         help="with --transfer: a local weights file (.pth or .safetensors), "
                              "or 'none' for random weights (default: the backbone's "
                              "pretrained weights, from the torch hub cache)")
    p_train.add_argument("--on-error", choices=["raise", "skip"], default="raise",
                         help="for image files that cannot be read: stop with an error naming "
                              "the file, or leave them out with a count")
    p_train.add_argument("--path-column", metavar="COLUMN",
                         help="CSV: the column of image paths (default: one named path, file, "
                              "filename or image, else the first)")
    p_train.add_argument("--target", metavar="COLUMN", action="append",
                         help="CSV: a target column; repeat for several (default: every "
                              "column but the paths)")
    p_train.add_argument("--task", choices=TASKS,
                         help="CSV: what the targets are (default: inferred and printed: text "
                              "labels or few integers are classes, several 0/1 columns label "
                              "sets, other numbers regression)")

    p_predict = commands.add_parser(
        "predict", help="predict image files or folders with a saved model",
        description="Predict images with a model saved by 'train'. Writes CSV to standard "
                    "output (the csv module's quoting), one header row, then one row per image: "
                    "file,label (classes); file,<label columns> of 0/1 (label sets); or "
                    "file,<target columns> (regression). --proba adds p_<class> columns.",
        epilog=EXIT_STATUS, formatter_class=_Formatter)
    p_predict.add_argument("model", metavar="MODEL",
                           help="a model file written by 'sklearn-cnn train'")
    p_predict.add_argument("images", metavar="IMAGE", nargs="+",
                           help="image files, or folders (every image in them and below)")
    p_predict.add_argument("--proba", action="store_true",
                           help="add each class's (or label's) probability")
    return main_parser


def _for_the_cli(message: str) -> str:
    for api, flag in _CLI_ADVICE:
        message = message.replace(api, flag)
    return message


def main(argv: list[str] | None = None) -> int:
    """The ``sklearn-cnn`` command. Returns the exit status: 0, 2 for a user error (one line
    on standard error; SKLEARN_CNN_DEBUG=1 shows the traceback), 130 when interrupted."""
    args = parser().parse_args(argv)
    try:
        if args.command == "demo":
            demo(n_jobs=args.n_jobs, quick=args.quick, out=args.out)
        elif args.command == "train":
            train(args.data, args.out, size=args.size, epochs=args.epochs,
                  transfer=args.transfer, weights=args.weights, lr=args.lr,
                  batch_size=args.batch_size, device=args.device, test_size=args.test_size,
                  output_format=args.format, force=args.force, on_error=args.on_error,
                  path_column=args.path_column, targets=args.target, task=args.task)
        else:
            predict(args.model, args.images, proba=args.proba)
    except KeyboardInterrupt:
        print(f"sklearn-cnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("SKLEARN_CNN_DEBUG", "") not in ("", "0"):
            raise
        message = _for_the_cli(" ".join(str(exc).split()))  # one line
        print(f"sklearn-cnn {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
