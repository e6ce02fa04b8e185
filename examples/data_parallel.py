"""
=========================================
Train one CNN data-parallel, unchanged
=========================================

One script, one process or many.

Run it as it is (one process), or under a launcher, which starts N processes that train one
model together, each on its share of every batch::

    python examples/data_parallel.py
    torchrun --nproc_per_node 2 examples/data_parallel.py
    accelerate launch --multi_gpu --num_processes 2 examples/data_parallel.py  # 2 GPUs

Every process ends with the same fitted estimator; the first one saves it and reports. The
saved model loads and predicts in a plain single process. On one machine's CPU cores the
processes compete for the same cores (see the Scaling guide); across GPUs or hosts they add
up.
"""

from sklearn.model_selection import train_test_split

import sklearn_cnn
from sklearn_cnn import CNNClassifier
from sklearn_cnn.datasets import load_digits_images
from sklearn_cnn.distributed import is_main_process

X, y = load_digits_images()
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, test_size=0.25, stratify=y,
                                                    random_state=0)
clf = CNNClassifier(max_epochs=10, early_stopping=True, random_state=0, verbose=0)
clf.fit(X_train, y_train)  # data-parallel under torchrun: batch_size is the global batch

if is_main_process():
    path = sklearn_cnn.save(clf, "digits_data_parallel.safetensors")
    print(f"held-out accuracy {clf.score(X_test, y_test):.4f}; saved to {path}")
