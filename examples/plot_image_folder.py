"""
===================================================
Images in files: from a folder to a saved model
===================================================

Real images are files: JPEGs and PNGs of mixed sizes in one folder per class. Here we write
such a folder from scikit-learn's two sample photos (patches of a temple and of a flower, of
random sizes, half JPEG and half PNG), then run the whole workflow on **file paths**:

1. ``load_image_folder(lazy=True)`` lists the files and their labels without decoding them;
2. a ``Pipeline`` of :class:`~sklearn_cnn.preprocessing.ImageLoader` and
   :class:`~sklearn_cnn.CNNClassifier` is tuned by ``GridSearchCV`` on the paths, with two
   worker processes (which receive paths, not pixels);
3. the best Pipeline predicts new, unlabelled files, is saved with
   :func:`sklearn_cnn.save` (a file that runs no code when loaded), and is loaded back.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import make_pipeline

import sklearn_cnn
from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_image_folder
from sklearn_cnn.preprocessing import ImageLoader

# %%
# A folder of real photos: ``root/<class>/<image>``, 60 images per class of 40 to 120
# pixels a side, and 10 unlabelled ones in ``new/``.
root = Path(tempfile.mkdtemp()) / "photos"
new = root.parent / "new"
rng = np.random.RandomState(0)
for label, photo in zip(["temple", "flower"], load_sample_images().images):
    (root / label).mkdir(parents=True)
    for i in range(65):
        side = rng.randint(40, 121)
        r = rng.randint(0, photo.shape[0] - side)
        c = rng.randint(0, photo.shape[1] - side)
        folder, name = (root / label, f"{i}") if i < 60 else (new, f"{label}_{i}")
        folder.mkdir(exist_ok=True)
        suffix = "jpg" if i % 2 else "png"
        Image.fromarray(photo[r:r + side, c:c + side]).save(folder / f"{name}.{suffix}")

# %%
# Listing the folder decodes nothing: ``files`` is a lazy collection of paths that
# scikit-learn's splitters index like an array.
files, y = load_image_folder(root, lazy=True)
print(files, "labels:", sorted(set(y.tolist())))
paths_train, paths_test, y_train, y_test = train_test_split(
    files.paths, y, test_size=0.25, stratify=y, random_state=0)

# %%
# The Pipeline takes paths. ``ImageLoader`` decodes and resizes them (the same pixels at fit
# and predict time); GridSearchCV runs its fits in two processes.
pipe = make_pipeline(ImageLoader(size=32),
                     CNNClassifier(filters=(16, 32), max_epochs=12, random_state=0))
search = GridSearchCV(pipe, {"cnnclassifier__lr": [0.002, 0.01]}, cv=3, n_jobs=2)
search.fit(paths_train, y_train)
print(f"best: {search.best_params_}, CV accuracy {search.best_score_:.3f}")
print(f"held-out accuracy on {len(paths_test)} files: {search.score(paths_test, y_test):.3f}")

# %%
# Unlabelled files (a flat folder: ``y`` is None) are predicted from their paths; the model
# is saved in the safe format and loaded back, predicting the same.
unlabelled, none = load_image_folder(new, lazy=True)
assert none is None
model = search.best_estimator_
labels = model.predict(unlabelled.paths)
path = sklearn_cnn.save(model, root.parent / "photos.safetensors")
again = sklearn_cnn.load(path)
assert (again.predict(unlabelled.paths) == labels).all()
print(f"saved to {path.name} ({path.stat().st_size / 1024:.0f} KiB); reloaded: same labels")

# %%
# The new images, titled with the predicted label and its probability.
probabilities = again.predict_proba(unlabelled.paths).max(axis=1)
fig, axes = plt.subplots(2, 5, figsize=(10, 4.4), layout="constrained")
for ax, file, label, p in zip(axes.ravel(), unlabelled.paths, labels, probabilities):
    with Image.open(file) as image:
        ax.imshow(image)
    truth = Path(file).stem.split("_")[0]
    ax.set_title(f"{label} ({p:.2f})", color="black" if label == truth else "red")
    ax.set_axis_off()
fig.suptitle("Unlabelled files: predicted label (probability)")
plt.show()
