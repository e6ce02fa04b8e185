"""Accuracy on digits: the default CNNClassifier pipeline against an SVC, 5-fold CV.

The same stratified folds for both. Run: ``python benchmarks/bench_accuracy.py``.
"""

from __future__ import annotations

import time

from _common import table
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import SVC

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.preprocessing import ChannelStandardizer, PixelScaler


def main():
    X, y = load_digits_images()
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    flatten = FunctionTransformer(lambda images: images.reshape(len(images), -1))
    models = {
        "SVC() on flattened pixels": make_pipeline(flatten, SVC()),
        "CNNClassifier() defaults": make_pipeline(PixelScaler(), ChannelStandardizer(),
                                                  CNNClassifier(random_state=0)),
        "CNNClassifier(augment='crop')": make_pipeline(
            PixelScaler(), ChannelStandardizer(), CNNClassifier(augment="crop",
                                                                random_state=0)),
    }
    rows = []
    for name, model in models.items():
        start = time.perf_counter()
        scores = cross_val_score(model, X, y, cv=cv, n_jobs=2)
        rows.append([name, f"{scores.mean():.4f}", f"{scores.std():.4f}",
                     " ".join(f"{s:.3f}" for s in scores), f"{time.perf_counter() - start:.0f}"])
    print("### Digits, 5-fold stratified CV (shuffled, random_state=0)\n")
    print(table(["model", "mean accuracy", "std", "folds", "wall s"], rows))


if __name__ == "__main__":
    main()
