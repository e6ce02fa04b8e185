"""
=====================================
Adam versus SGD with momentum
=====================================

The same network and data, trained with Adam and with SGD with momentum, each at a learning
rate that suits it. Adam converges quickly from its default rate; SGD with momentum needs a
larger rate, and L2 weight decay (``weight_decay``) regularises both.
"""

# %%
import matplotlib.pyplot as plt

from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images

X, y = load_digits_images()
X = X / 16

fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
for optimizer, lr in [("adam", 0.002), ("sgd", 0.05), ("sgd", 0.005)]:
    clf = CNNClassifier(optimizer=optimizer, lr=lr, momentum=0.9, weight_decay=1e-4,
                        max_epochs=15, early_stopping=True, patience=15, random_state=0)
    clf.fit(X, y)
    label = f"{optimizer}, lr={lr}"
    ax_loss.plot(clf.history_[:, "epoch"], clf.history_[:, "valid_loss"], "-o", label=label)
    ax_acc.plot(clf.history_[:, "epoch"], clf.history_[:, "valid_acc"], "-o", label=label)
    print(f"{label}: validation accuracy {clf.history_[-1, 'valid_acc']:.3f}")
ax_loss.set(title="Validation loss", xlabel="epoch", yscale="log")
ax_acc.set(title="Validation accuracy", xlabel="epoch")
ax_loss.legend()
plt.show()
