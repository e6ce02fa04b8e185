"""
=====================================================
Time series: a 1-D CNN on GunPoint, and when it looks
=====================================================

The lesson's convolutions carry over to signals: a filter slides along time instead of
across an image. :class:`~sklearn_cnn.TimeSeriesClassifier` trains the fully convolutional
network of Wang, Yan & Oates (2017) on GunPoint, a data set of the UCR archive (an actor
draws a gun from a holster, or points a finger: the x coordinate of the hand over 150
frames), read from the ``.ts`` files that aeon's wheel ships. A 1-nearest-neighbour
classifier on the raw series is the classic baseline.

The class activation map (Wang et al.'s CAM) shows *when* in each series the network found
the evidence for its class: the last convolutional block's channels over time, weighed by
the output layer's weights.
"""

# %%
import matplotlib.pyplot as plt
from sklearn.neighbors import KNeighborsClassifier

from sklearn_cnn import TimeSeriesClassifier
from sklearn_cnn.datasets import load_ts_dataset
from sklearn_cnn.plotting import plot_class_activation_maps, plot_history

X_train, X_test, y_train, y_test = load_ts_dataset("GunPoint")  # (n, 1 channel, 150)
print(f"{len(X_train)} training and {len(X_test)} test series of {X_train.shape[2]} points")

knn = KNeighborsClassifier(n_neighbors=1).fit(X_train[:, 0], y_train)
print(f"1-NN (Euclidean) test accuracy: {knn.score(X_test[:, 0], y_test):.3f}")

# %%
# The defaults: FCN, 200 epochs, Adam, each channel standardised with the training
# statistics (saved with the model). A quarter of the training series is held out and
# scored every epoch, for the curves below; it changes nothing else.
clf = TimeSeriesClassifier(validation_fraction=0.25, random_state=0)
clf.fit(X_train, y_train)
print(f"FCN test accuracy: {clf.score(X_test, y_test):.3f}")
plot_history(clf)

# %%
# When the network looks: the first three test series of each class, coloured by their
# class activation maps over time.
shown = [i for label in clf.classes_ for i in (y_test == label).nonzero()[0][:3]]
plot_class_activation_maps(clf, X_test[shown], y_test[shown])
plt.show()
