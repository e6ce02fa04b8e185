"""
===========================================================================
Looking inside: learning rate, curves, mistakes and where the network looks
===========================================================================

Four pictures that explain a trained CNN, all from :mod:`sklearn_cnn.inspection`, on patches
of scikit-learn's two sample photos (a Chinese temple and a flower):

1. the **learning-rate range test** picks ``lr`` without a grid search;
2. the **training curves** show where early stopping restored the weights;
3. the **top losses** are the validation images the model gets most wrong;
4. **class activation maps** (Grad-CAM) show where in each image the evidence is.
"""

# %%
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_sample_patches
from sklearn_cnn.inspection import lr_find
from sklearn_cnn.plotting import (
    plot_class_activation_maps,
    plot_history,
    plot_lr_find,
    plot_top_losses,
)

X, y = load_sample_patches(patch_size=40, n_patches=300, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y,
                                                    random_state=0)
model = CNNClassifier(filters=(16, 32, 64), max_epochs=25, early_stopping=True, patience=4,
                      augment="flip", random_state=0)

# %%
# The learning-rate range test trains a clone for 100 batches while the rate grows from
# 1e-6 to 1; the suggestion sits where the loss falls fastest, before it turns up.
found = lr_find(model, X_train, y_train)
print(f"suggested learning rate: {found.suggestion:.2g}")
plot_lr_find(found)
plt.show()

# %%
# Training with it; early stopping holds out 10% and restores the best epoch's weights.
model.set_params(lr=found.suggestion).fit(X_train, y_train)
print(f"held-out accuracy: {model.score(X_test, y_test):.3f}")
plot_history(model)
plt.show()

# %%
# The held-out patches with the highest loss: what the model finds hard (flower patches of
# plain green leaves, temple patches of foliage ...), with where it looked.
plot_top_losses(model, X_test, y_test, k=8)
plt.show()

# %%
# Where the evidence is, for a few held-out patches of each photo.
sample = np.r_[np.flatnonzero(y_test == "china")[:4], np.flatnonzero(y_test == "flower")[:4]]
plot_class_activation_maps(model, X_test[sample], y_test[sample])
plt.show()
