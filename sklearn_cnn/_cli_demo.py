"""``sklearn-cnn demo``: a Pipeline on scikit-learn's digits searched by GridSearchCV (with
its progress), against an SVC, saved and reloaded."""

from __future__ import annotations

import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ._cli_files import check_out

__all__ = ["demo", "results_table", "search_progress"]


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


def results_table(search, top: int = 10) -> str:
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
        check_out(out, force=True)
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
    print(results_table(search))
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
