"""Command line: ``sklearn-cnn demo | train | predict`` (also ``python -m sklearn_cnn``)."""

from __future__ import annotations

import argparse
import os
import sys

from ._cli_demo import demo
from ._cli_files import TASKS, check_out, predict, read_model, train
from ._cli_series import is_ts_file, predict_series, train_series

__all__ = ["main"]

DESCRIPTION = (
    "Convolutional networks as scikit-learn estimators, from the command line. 'train' fits "
    "a CNN (or fine-tunes a pretrained backbone) on a folder of images with one sub-folder "
    "per class, or on a CSV file of image paths and targets (classes, label sets or "
    "numbers), or a 1-D CNN on the time series of a .ts file (the UCR/UEA archive's "
    "format), reports a held-out score and saves the model; 'predict' applies a saved "
    "model to image files or folders, or to .ts files; 'demo' trains on scikit-learn's "
    "digits."
)
EXIT_STATUS = (
    "exit status: 0 on success; 2 for a user error, described in one line on standard error "
    "(SKLEARN_CNN_DEBUG=1 shows the traceback); 130 when interrupted (Ctrl-C)."
)
# Where an error's advice names the Python API, the CLI user gets the flag that does it.
_CLI_ADVICE = [
    ("weights='path/to/file.pth'", "--weights path/to/file.pth"),
    ("weights=None", "--weights none"),
    ("load the folder with on_error='skip'", "pass --on-error skip"),
    ("on_error='skip'", "--on-error skip"),
]


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
    """Shows each option's default, and keeps the descriptions' paragraphs. An option whose
    default is None says in its help what it defaults to."""

    def _get_help_string(self, action):
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


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
        "train", help="train on a folder of images, a CSV of image paths and targets, or "
                      "a .ts file of time series",
        description="Train on DATA and save one model file that 'predict' and "
                    "sklearn_cnn.load read.\n\nDATA is a folder with one sub-folder of "
                    "images per class (DATA/cat/1.jpg ...), or a CSV file with a header row: a "
                    "column of image paths (relative ones are read from the CSV's folder) and "
                    "one or more target columns: class labels, 0/1 label columns "
                    "(multi-label) or numbers (regression); the model is an ImageLoader + "
                    "model Pipeline. Or DATA is a .ts file of the UCR/UEA time-series archive "
                    "(e.g. GunPoint_TRAIN.ts): a TimeSeriesClassifier learns its class labels, "
                    "a TimeSeriesRegressor its targets (@targetLabel true).",
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
    p_train.add_argument("--epochs", type=_positive(int),
                         help="passes over the training data (default: 20 for images, the "
                              "estimator's 200 for series)")
    p_train.add_argument("--lr", type=_positive(float),
                         help="learning rate (default: the estimator's, 0.002 for a CNN, 0.001 "
                              "with --transfer)")
    p_train.add_argument("--batch-size", type=_positive(int),
                         help="images per training step (default: 32)")
    p_train.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p_train.add_argument("--test-size", type=_fraction, default=0.2,
                         help="share of the images (series) held out for the reported score")
    p_train.add_argument("--test-data", metavar="FILE",
                         help=".ts: a labelled test file (e.g. GunPoint_TEST.ts) to report "
                              "the score on, instead of holding out --test-size")
    p_train.add_argument("--architecture", choices=["fcn", "resnet", "inception", "convnet"],
                         help=".ts: the 1-D network (default: the estimator's, fcn)")
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
        "predict", help="predict image files or folders, or .ts files, with a saved model",
        description="Predict images (or series) with a model saved by 'train'. Writes CSV "
                    "to standard output (the csv module's quoting), one header row, then one "
                    "row per image: file,label (classes); file,<label columns> of 0/1 (label "
                    "sets); or file,<target columns> (regression). For a time-series model "
                    "the inputs are .ts files and each row is one series: file,case,... "
                    "(case counts the file's series from 0). --proba adds p_<class> columns.",
        epilog=EXIT_STATUS, formatter_class=_Formatter)
    p_predict.add_argument("model", metavar="MODEL",
                           help="a model file written by 'sklearn-cnn train'")
    p_predict.add_argument("images", metavar="INPUT", nargs="+",
                           help="image files, or folders (every image in them and below); .ts "
                                "files for a time-series model")
    p_predict.add_argument("--proba", action="store_true",
                           help="add each class's (or label's) probability")
    return main_parser


def _refuse_image_options(args) -> None:
    """Options of image training given with a .ts file: say so, rather than ignore them."""
    given = [flag for flag, value, default in [
        ("--size", args.size, 32), ("--transfer", args.transfer, None),
        ("--weights", args.weights, None), ("--on-error", args.on_error, "raise"),
        ("--path-column", args.path_column, None), ("--target", args.target, None),
        ("--task", args.task, None)] if value != default]
    if given:
        raise ValueError(f"{', '.join(given)}: for images; a .ts file of series takes "
                         "--epochs, --lr, --batch-size, --device, --architecture, "
                         "--test-size or --test-data.")


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
        elif args.command == "train" and is_ts_file(args.data):
            _refuse_image_options(args)
            check_out(args.out, force=args.force)
            train_series(args.data, args.out, epochs=args.epochs, lr=args.lr,
                         batch_size=args.batch_size, device=args.device,
                         test_size=args.test_size, test_data=args.test_data,
                         architecture=args.architecture, output_format=args.format)
        elif args.command == "train":
            if args.test_data is not None or args.architecture is not None:
                raise ValueError("--test-data and --architecture are for .ts files of time "
                                 "series; images hold out --test-size.")
            train(args.data, args.out, size=args.size, epochs=args.epochs or 20,
                  transfer=args.transfer, weights=args.weights, lr=args.lr,
                  batch_size=args.batch_size, device=args.device, test_size=args.test_size,
                  output_format=args.format, force=args.force, on_error=args.on_error,
                  path_column=args.path_column, targets=args.target, task=args.task)
        else:
            from ._series import takes_series

            model = read_model(args.model)
            if takes_series(model):
                predict_series(model, args.images, proba=args.proba)
            else:
                predict(args.model, args.images, proba=args.proba, model=model)
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
