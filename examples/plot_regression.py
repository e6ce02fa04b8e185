"""
==========================================
Regression: how far is this digit rotated?
==========================================

A CNN predicts a number per image as easily as a class: :class:`~sklearn_cnn.CNNRegressor`
learns the angle (in degrees) by which each of scikit-learn's digits was rotated, from
:func:`~sklearn_cnn.datasets.make_rotated_digits`. The targets are standardised inside
``fit`` and predictions come back in degrees; ``score`` is R². A ridge regression on the
raw pixels is the baseline. The same images, two digits side by side, then make a
multi-label task for :class:`~sklearn_cnn.CNNClassifier`: which digits are in the picture?
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.linear_model import Ridge
from sklearn.metrics import f1_score

from sklearn_cnn import CNNClassifier, CNNRegressor
from sklearn_cnn.datasets import make_digit_pairs, make_rotated_digits

X, angles, _ = make_rotated_digits(1200, size=24, random_state=0)
X_train, X_test, y_train, y_test = X[:900], X[900:], angles[:900], angles[900:]

reg = CNNRegressor(filters=(16, 32, 64), max_epochs=25, random_state=0).fit(X_train, y_train)
predicted = reg.predict(X_test)
ridge = Ridge().fit(X_train.reshape(900, -1), y_train)
print(f"held-out R²: CNNRegressor {reg.score(X_test, y_test):.3f}, "
      f"ridge on pixels {ridge.score(X_test.reshape(300, -1), y_test):.3f}; "
      f"mean absolute error {np.abs(predicted - y_test).mean():.1f} degrees")

fig, (scatter, examples) = plt.subplots(1, 2, figsize=(10, 4.2), layout="constrained",
                                        gridspec_kw={"width_ratios": [1, 1.3]})
scatter.scatter(y_test, predicted, s=8, alpha=0.6)
scatter.plot([-60, 60], [-60, 60], color="0.3", linestyle=":")
scatter.set(xlabel="true rotation (degrees)", ylabel="predicted rotation (degrees)",
            title="Predicted against true, held-out digits")
examples.imshow(np.concatenate(X_test[:6], axis=1), cmap="gray")
examples.set_title("  ".join(f"{t:+.0f}°→{p:+.0f}°" for t, p in zip(y_test[:6],
                                                                     predicted[:6])),
                   fontsize=9)
examples.set_axis_off()

plt.show()

# %%
# Label sets: one sigmoid output per digit, binary cross-entropy; ``predict`` returns the
# indicator matrix, ``predict_proba`` each label's probability, ``score`` subset accuracy.
X, labels, pairs = make_digit_pairs(1200, random_state=0)
clf = CNNClassifier(filters=(16, 32, 64), max_epochs=25, random_state=0).fit(X[:900],
                                                                          labels[:900])
print(f"digit pairs: subset accuracy {clf.score(X[900:], labels[900:]):.3f}, F1 (samples) "
      f"{f1_score(labels[900:], clf.predict(X[900:]), average='samples'):.3f}")
