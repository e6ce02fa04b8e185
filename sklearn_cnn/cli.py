"""Command line: ``sklearn-cnn demo | train | predict`` (also ``python -m sklearn_cnn``)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["main"]


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
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from . import CNNClassifier, load, save
    from .datasets import load_digits_images
    from .preprocessing import ChannelStandardizer, PixelScaler

    if out:
        _check_out(out)
    start = time.perf_counter()
    X, y = load_digits_images()
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0)
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of "
          f"{X.shape[1]}x{X.shape[2]} pixels, {len(np.unique(y))} classes")

    pipeline = Pipeline([
        ("scale", PixelScaler()),
        ("standardize", ChannelStandardizer()),
        ("cnn", CNNClassifier(max_epochs=3 if quick else 20, random_state=0)),
    ])
    grid = {"cnn__dropout": [0.0, 0.25], "cnn__lr": [0.002, 0.01],
            "cnn__optimizer": ["adam", "sgd"]}
    if quick:
        grid = {"cnn__dropout": [0.0, 0.25], "cnn__optimizer": ["adam"]}
    search = GridSearchCV(pipeline, grid, cv=3, n_jobs=n_jobs)
    print(f"GridSearchCV over {grid} with 3-fold CV, n_jobs={n_jobs} ...", flush=True)
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


def _check_out(out: str) -> None:
    """Refuse an output path that cannot be written, before any training."""
    folder = Path(out).resolve().parent
    if not folder.is_dir():
        raise ValueError(f"--out {out}: the folder {folder} does not exist; create it first.")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"--out {out}: the folder {folder} is not writable.")
    if Path(out).is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out}/model.safetensors")


def train(folder: str, out: str, *, size: int, epochs: int, transfer: str | None = None,
          weights: str | None = None, lr: float | None = None, batch_size: int | None = None,
          device: str = "auto", test_size: float = 0.2, output_format: str = "safe") -> dict:
    """Train on FOLDER/<class>/<image> files, report a held-out score, save the Pipeline."""
    import joblib
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline

    from . import CNNClassifier, TransferClassifier, save
    from .datasets import load_image_folder
    from .preprocessing import ImageLoader

    _check_out(out)
    files, y = load_image_folder(folder, lazy=True, n_jobs=-1)
    if y is None:
        raise ValueError(f"{folder} has images but no class sub-folders; training needs "
                         f"{folder}/<class>/<image> files (predict takes unlabelled ones).")
    paths, classes = files.paths, np.unique(y)
    print(f"{len(paths)} images in {len(classes)} classes ({', '.join(map(str, classes))}) "
          f"from {folder}", flush=True)
    options = {"max_epochs": epochs, "device": device, "verbose": 1}
    if lr is not None:
        options["lr"] = lr
    if batch_size is not None:
        options["batch_size"] = batch_size
    if transfer:
        model = TransferClassifier(backbone=transfer, **options,
                                   **({} if weights is None else {"weights": weights}))
    else:
        if weights is not None:
            raise ValueError("--weights loads pretrained weights for --transfer BACKBONE; "
                             "a CNN trained from scratch has none.")
        model = CNNClassifier(**options)
    pipeline = Pipeline([("load", ImageLoader(size=size, lazy=True, n_jobs=-1)), ("model", model)])
    try:
        train_paths, test_paths, y_train, y_test = train_test_split(
            paths, y, test_size=test_size, stratify=y, random_state=0)
    except ValueError:
        train_paths, test_paths, y_train, y_test = paths, [], y, []
        print("too few images per class to hold some out: no held-out score")
    pipeline.fit(train_paths, y_train)
    score = pipeline.score(test_paths, y_test) if len(test_paths) else None
    if score is not None:
        print(f"held-out accuracy: {score:.4f} on {len(test_paths)} images "
              f"(trained on {len(train_paths)})")
    if output_format == "joblib":
        joblib.dump(pipeline, out)
    else:
        save(pipeline, out)
    print(f"saved to {out} ({Path(out).stat().st_size / 1024:.0f} KiB); predict with: "
          f"sklearn-cnn predict {out} IMAGES...")
    return {"score": score, "pipeline": pipeline}


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


def predict(model_path: str, images: list[str], *, proba: bool = False) -> None:
    """Print ``file,label`` (and the class probabilities) for each image file."""
    from .preprocessing import ImageLoader

    model = read_model(model_path)
    if not (hasattr(model, "steps") and isinstance(model.steps[0][1], ImageLoader)):
        raise ValueError(f"{model_path} holds a {type(model).__name__} that takes pixel "
                         "arrays, not image files; predict needs a model saved by "
                         "sklearn-cnn train (a Pipeline that starts with ImageLoader).")
    missing = [file for file in images if not os.path.isfile(file)]
    if missing:
        raise ValueError(f"{len(missing)} of the image files do not exist, e.g. {missing[0]}.")
    if proba:
        probabilities = model.predict_proba(images)
        labels = model.classes_[probabilities.argmax(axis=1)]
        print("file,label," + ",".join(f"p_{c}" for c in model.classes_))
        for file, label, row in zip(images, labels, probabilities):
            print(f"{file},{label}," + ",".join(f"{p:.4f}" for p in row))
        return
    for file, label in zip(images, model.predict(images)):
        print(f"{file},{label}")


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


def main(argv: list[str] | None = None) -> int:
    """The ``sklearn-cnn`` command. Returns the exit status: 0, 2 for a user error (one line
    on standard error; SKLEARN_CNN_DEBUG=1 shows the traceback), 130 when interrupted."""
    parser = argparse.ArgumentParser(prog="sklearn-cnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p_demo = commands.add_parser("demo", help="digits: Pipeline + GridSearchCV + saving")
    p_demo.add_argument("--n-jobs", type=int, default=2)
    p_demo.add_argument("--quick", action="store_true", help="a small grid, for smoke tests")
    p_demo.add_argument("--out", help="where to save the best model (default: a temp file)")
    p_train = commands.add_parser("train", help="train on FOLDER/<class>/<image> files")
    p_train.add_argument("folder")
    p_train.add_argument("--out", default="model.safetensors")
    p_train.add_argument("--format", choices=["safe", "joblib"], default="safe",
                         help="safe: sklearn_cnn.save (no code runs on load, default); "
                              "joblib: a pickle, for trusted use")
    p_train.add_argument("--size", type=_positive(int), default=32,
                         help="resize images to SIZE×SIZE")
    p_train.add_argument("--epochs", type=_positive(int), default=20)
    p_train.add_argument("--lr", type=_positive(float), help="learning rate")
    p_train.add_argument("--batch-size", type=_positive(int))
    p_train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p_train.add_argument("--test-size", type=_fraction, default=0.2,
                         help="share of the images held out for the reported score")
    p_train.add_argument("--transfer", metavar="BACKBONE",
                         help="fine-tune a torchvision backbone instead of training a CNN from "
                              "scratch")
    p_train.add_argument("--weights", metavar="FILE",
                         help="with --transfer: pretrained weights from a local state-dict "
                              "file (default: torchvision's, from the torch hub cache)")
    p_predict = commands.add_parser("predict", help="label image files with a saved model")
    p_predict.add_argument("model")
    p_predict.add_argument("images", nargs="+")
    p_predict.add_argument("--proba", action="store_true",
                           help="print the class probabilities too")
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            demo(n_jobs=args.n_jobs, quick=args.quick, out=args.out)
        elif args.command == "train":
            train(args.folder, args.out, size=args.size, epochs=args.epochs,
                  transfer=args.transfer, weights=args.weights, lr=args.lr,
                  batch_size=args.batch_size, device=args.device, test_size=args.test_size,
                  output_format=args.format)
        else:
            predict(args.model, args.images, proba=args.proba)
    except KeyboardInterrupt:
        print(f"sklearn-cnn {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, ImportError) as exc:
        if os.environ.get("SKLEARN_CNN_DEBUG", "") not in ("", "0"):
            raise
        message = " ".join(str(exc).split())  # one line
        print(f"sklearn-cnn {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
