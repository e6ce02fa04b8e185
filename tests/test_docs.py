"""The figures the docs state, as a newcomer runs them."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(),
                    reason="the quick start states the CPU's figure; device='auto' trains on "
                           "the GPU here (bf16 autocast, cuDNN), which gives another")
def test_the_quick_start_cross_validation_line():
    # docs/quickstart.rst: the line as printed there, and what it says it gives (0.973 in
    # bfloat16 where the CPU has it, 0.975 in float32), beside an SVC on the same folds
    # (0.963).
    X, y = load_digits_images()
    X = X / 16
    # The line as printed; joblib's context runs its five fits in two processes of one
    # torch thread each: the same folds and seeds, a third of the time (0.9733 either way).
    with joblib.parallel_config(n_jobs=2):
        cnn = cross_val_score(CNNClassifier(random_state=0), X, y, cv=5).mean()
    svc = cross_val_score(SVC(), X.reshape(len(X), -1), y, cv=5).mean()
    assert round(svc, 3) == 0.963
    assert 0.97 <= cnn <= 0.98 and cnn > svc, cnn
    np.testing.assert_allclose(cnn, 0.974, atol=0.0015)  # 0.973 or 0.975
