"""
=================================
Dropout against overfitting
=================================

With only 300 training images a CNN memorises them: the training loss falls to zero within a
few epochs while the validation loss stalls well above it. Dropout before the dense layer
slows the memorising and ends at a lower validation loss. The curves
come from ``history_``; ``early_stopping=True`` holds out a stratified validation split
(a large ``patience`` lets every epoch run, to show the whole curve).
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
                        lr_schedule=None, early_stopping=True, validation_fraction=0.3,
                        patience=30, random_state=0)
    clf.fit(X, y)
    plot_history(clf, axes=row)
    row[0].set_title(f"Loss, dropout={dropout}")
    row[1].set_title(f"Accuracy, dropout={dropout}")
    best = min(clf.history_[:, "valid_loss"])
    print(f"dropout={dropout}: best validation loss {best:.3f}, "
          f"final validation accuracy {clf.history_[-1, 'valid_acc']:.3f}")
plt.show()
