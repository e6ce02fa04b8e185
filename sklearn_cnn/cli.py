"""Command line: ``sklearn-cnn demo | train | predict`` (also ``python -m sklearn_cnn``)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import joblib
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
    """Digits: Pipeline + GridSearchCV, SVC baseline, joblib round trip. Returns the scores."""
    from sklearn.model_selection import GridSearchCV, train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from . import CNNClassifier
    from .datasets import load_digits_images
    from .preprocessing import ChannelStandardizer, PixelScaler

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

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(out) if out else Path(tmp) / "digits_cnn.joblib"
        joblib.dump(search.best_estimator_, path)
        loaded = joblib.load(path)
        same = np.array_equal(loaded.predict(X_test), search.predict(X_test))
        print(f"saved to {path} ({path.stat().st_size / 1024:.0f} KiB), reloaded: "
              f"predictions {'identical' if same else 'DIFFER'}; first ten: "
              f"{loaded.predict(X_test[:10]).tolist()} (true {y_test[:10].tolist()})")
    print(f"demo finished in {time.perf_counter() - start:.0f} s")
    return {"cnn": cnn_accuracy, "svc": svc_accuracy, "reloaded_identical": same}


def train(folder: str, out: str, size: int, epochs: int, transfer: str | None) -> None:
    """Train on an image folder (one sub-folder per class) and save the Pipeline."""
    from sklearn.pipeline import make_pipeline

    from . import CNNClassifier
    from .datasets import load_image_folder

    X, y = load_image_folder(folder, size=size)
    print(f"{len(X)} images of {X.shape[1:]} in {len(np.unique(y))} classes from {folder}")
    if transfer:
        from . import TransferClassifier

        model = TransferClassifier(backbone=transfer, max_epochs=epochs, verbose=1)
    else:
        from .preprocessing import ChannelStandardizer, PixelScaler

        model = make_pipeline(PixelScaler(), ChannelStandardizer(),
                              CNNClassifier(max_epochs=epochs, verbose=1))
    model.fit(X, y)
    joblib.dump({"model": model, "size": size}, out)
    print(f"saved to {out}")


def predict(model_path: str, images: list[str]) -> None:
    """Print ``file,label`` for each image with a model saved by ``train``."""
    from PIL import Image

    saved = joblib.load(model_path)
    model, size = saved["model"], saved["size"]
    X = []
    for file in images:
        with Image.open(file) as image:
            X.append(np.asarray(image.convert("RGB").resize((size, size))))
    for file, label in zip(images, model.predict(np.stack(X))):
        print(f"{file},{label}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sklearn-cnn", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p_demo = commands.add_parser("demo", help="digits: Pipeline + GridSearchCV + joblib")
    p_demo.add_argument("--n-jobs", type=int, default=2)
    p_demo.add_argument("--quick", action="store_true", help="a small grid, for smoke tests")
    p_demo.add_argument("--out", help="where to save the best model (default: a temp file)")
    p_train = commands.add_parser("train", help="train on FOLDER/<class>/<image> files")
    p_train.add_argument("folder")
    p_train.add_argument("--out", default="model.joblib")
    p_train.add_argument("--size", type=int, default=32, help="resize images to SIZE×SIZE")
    p_train.add_argument("--epochs", type=int, default=20)
    p_train.add_argument("--transfer", metavar="BACKBONE",
                         help="fine-tune a torchvision backbone (pretrained weights from the "
                              "torch hub cache) instead of training a CNN from scratch")
    p_predict = commands.add_parser("predict", help="label image files with a saved model")
    p_predict.add_argument("model")
    p_predict.add_argument("images", nargs="+")
    args = parser.parse_args(argv)
    if args.command == "demo":
        demo(n_jobs=args.n_jobs, quick=args.quick, out=args.out)
    elif args.command == "train":
        train(args.folder, args.out, args.size, args.epochs, args.transfer)
    else:
        predict(args.model, args.images)
    return 0


if __name__ == "__main__":
    sys.exit(main())
