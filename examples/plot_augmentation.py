"""
=========================================
Data augmentation on a small training set
=========================================

Augmentation is an estimator parameter, applied to each training batch only (never at
predict time, never to the validation split), per image and seeded by ``random_state``.
Random shifts ("crop": pad, then crop at a random offset) help most on digits; flips
would turn a 2 into something else, so they are left out here.
"""

# %%
import matplotlib.pyplot as plt
import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn.augmentation import make_augmentation
from sklearn_cnn.datasets import load_digits_images

X, y = load_digits_images()
X = X / 16
X_train, y_train, X_test, y_test = X[:200], y[:200], X[200:], y[200:]

# %%
# What the network sees: one digit, shifted and jittered eight times.
augment = make_augmentation("crop", input_shape=(8, 8, 1))
batch = torch.tensor(X_train[:1], dtype=torch.float32)[:, None].expand(8, 1, 8, 8)
shifted = augment(batch, torch.Generator().manual_seed(0))
fig, axes = plt.subplots(1, 8, figsize=(10, 1.6))
for ax, image in zip(axes, shifted):
    ax.imshow(image[0], cmap="gray_r")
    ax.set_axis_off()
plt.show()

# %%
# Accuracy on the 1,597 held-out digits after training on 200.
for augment in [None, "crop", "color"]:
    clf = CNNClassifier(augment=augment, max_epochs=40, random_state=0).fit(X_train, y_train)
    print(f"augment={augment!s:>5}: test accuracy {clf.score(X_test, y_test):.3f}")
