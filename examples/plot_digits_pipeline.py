"""
==============================================
A CNN in a Pipeline, tuned with GridSearchCV
==============================================

A convolutional network is tuned the way one tunes an SVC: it sits at the end of a
:class:`~sklearn.pipeline.Pipeline` behind deterministic image transformers, and
:class:`~sklearn.model_selection.GridSearchCV` searches its dropout and optimizer. The
fitted pipeline, normalisation statistics included, is saved with joblib.
"""

# %%
# The data: 1,797 handwritten digits of 8×8 pixels, values 0..16.
import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.svm import SVC

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.preprocessing import ChannelStandardizer, PixelScaler

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

# %%
# The pipeline: scale pixels to [0, 1], standardise with the training set's statistics
# (learnt in ``fit``, saved with the model), then the CNN.
pipe = make_pipeline(PixelScaler(), ChannelStandardizer(),
                     CNNClassifier(max_epochs=15, random_state=0))
grid = {"cnnclassifier__dropout": [0.0, 0.25], "cnnclassifier__optimizer": ["adam", "sgd"],
        "cnnclassifier__lr": [0.002, 0.01]}
search = GridSearchCV(pipe, grid, cv=3, n_jobs=2).fit(X_train, y_train)
print("best parameters:", search.best_params_)
print(f"CNN test accuracy: {search.score(X_test, y_test):.4f}")

svc = SVC().fit(X_train.reshape(len(X_train), -1), y_train)
print(f"SVC test accuracy: {svc.score(X_test.reshape(len(X_test), -1), y_test):.4f}")

# %%
# The mean cross-validated accuracy of every candidate.
results = search.cv_results_
for params, score in sorted(zip(results["params"], results["mean_test_score"]),
                            key=lambda item: -item[1]):
    print(f"{score:.4f}", {k.split("__")[1]: v for k, v in params.items()})

# %%
# scikit-learn's displays work on the fitted pipeline as on any classifier.
ConfusionMatrixDisplay.from_estimator(search.best_estimator_, X_test, y_test)
plt.show()

# %%
# Persistence: one file, preprocessing included; it predicts identically once loaded.
joblib.dump(search.best_estimator_, "digits_cnn.joblib")
loaded = joblib.load("digits_cnn.joblib")
assert np.array_equal(loaded.predict(X_test), search.predict(X_test))
