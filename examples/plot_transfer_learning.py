"""
===================================================
Transfer learning from a local weights file
===================================================

A :class:`~sklearn_cnn.TransferClassifier` reuses a network trained on one task for
another: here a ResNet-18 first learns which sample photo a patch comes from and how far
it was rotated (the "source" task, plenty of data); its weights are saved to a local file,
the way ImageNet weights would be; then it is fine-tuned to tell the two photos apart from
only 40 patches, with the backbone frozen (only the head trains) or fully fine-tuned,
beside the same network from random weights.

With ImageNet weights in the torch hub cache, ``weights="DEFAULT"`` does the same with a
stronger backbone. Nothing here downloads anything.
"""

# %%
import tempfile
from pathlib import Path

import numpy as np
import torch

from sklearn_cnn import TransferClassifier
from sklearn_cnn.datasets import load_sample_patches

# %%
# The source task: 8 classes, (photo, rotation by k × 90°) of each patch.
X, photo = load_sample_patches(patch_size=32, n_patches=600, random_state=1)
rotation = np.random.RandomState(0).randint(0, 4, len(X))
X_source = np.stack([np.rot90(x, k) for x, k in zip(X, rotation)])
y_source = [f"{p}-{k}" for p, k in zip(photo, rotation)]
common = dict(backbone="resnet18", input_size=32, random_state=0, batch_size=64)
source = TransferClassifier(weights=None, freeze="none", max_epochs=6, **common)
source.fit(X_source, y_source)
print(f"source task training accuracy: {source.history_[-1, 'train_acc']:.3f}")

weights_file = Path(tempfile.mkdtemp()) / "resnet18_patches.pth"
torch.save(source.module_.backbone.state_dict(), weights_file)

# %%
# The target task: which photo a patch comes from, from 40 training patches.
X, y = load_sample_patches(patch_size=32, n_patches=200, random_state=2)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:40], order[40:]
for name, weights, freeze in [("random weights, full training", None, "none"),
                              ("local weights, frozen backbone", weights_file, "backbone"),
                              ("local weights, last 2 stages", weights_file, 2),
                              ("local weights, full fine-tune", weights_file, "none")]:
    clf = TransferClassifier(weights=weights, freeze=freeze, max_epochs=10, **common)
    clf.fit(X[train], y[train])
    trainable = clf.summary().trainable_params
    print(f"{name:>32}: test accuracy {clf.score(X[test], y[test]):.3f} "
          f"({trainable:,} trainable parameters)")
