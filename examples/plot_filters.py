"""
===========================
First-layer filters
===========================

The first convolution of a CNN learns small edge and colour detectors. Here a CNN learns
to tell apart patches of scikit-learn's two sample photos, and
:func:`~sklearn_cnn.plotting.plot_filters` shows its 32 RGB filters. ``summary()`` shows
the layers and shapes the patches go through.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_sample_patches
from sklearn_cnn.plotting import plot_filters

X, y = load_sample_patches(patch_size=24, n_patches=300, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
clf = CNNClassifier(filters=(32, 64), kernel_size=5, max_epochs=10, random_state=0)
clf.fit(X_train, y_train)
print(f"test accuracy: {clf.score(X_test, y_test):.3f}")
print(clf.summary())

# %%
plot_filters(clf)
plt.show()
