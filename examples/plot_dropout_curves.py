"""
=================================
Dropout against overfitting
=================================

With only 300 training images a CNN memorises them: without dropout the training loss
falls to almost zero within a few epochs while the validation loss stays well above it.
Dropout before the dense layer slows the memorising: the training loss stays near the
validation loss. On these digits, which the network generalises well anyway, that does not
buy a lower validation loss (the printed figures): the gap is what dropout closes. The curves
come from ``history_``: ``validation_fraction=0.3`` holds out a stratified validation split
and scores it after every epoch, and changes nothing else (every epoch runs, and the model
is the last epoch's; early stopping is its own choice, ``early_stopping=True``).
"""

# %%
import matplotlib.pyplot as plt

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.plotting import plot_history

X, y = load_digits_images()
X, y = X[:300] / 16, y[:300]

fig, axes = plt.subplots(2, 2, figsize=(10, 7), layout="constrained", sharey="col")
for row, dropout in zip(axes, [0.0, 0.5]):
    clf = CNNClassifier(dropout=dropout, hidden_units=(128,), max_epochs=30,
                        lr_schedule=None, validation_fraction=0.3, random_state=0)
    clf.fit(X, y)
    plot_history(clf, ax=row)
    row[0].set_title(f"Loss, dropout={dropout}")
    row[1].set_title(f"Accuracy, dropout={dropout}")
    best = min(clf.history_[:, "valid_loss"])
    print(f"dropout={dropout}: final training loss {clf.history_[-1, 'train_loss']:.4f}, "
          f"best validation loss {best:.3f}, "
          f"final validation accuracy {clf.history_[-1, 'valid_acc']:.3f}")
plt.show()
