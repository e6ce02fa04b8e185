"""Input validation (``_data.py`` and the estimators' one validation path): every bad input
gets an error from our code that names the problem and the fix, before torch sees it."""

import numpy as np
import pytest
import torch

from sklearn_cnn import CNNClassifier
from sklearn_cnn._data import BatchIterator, ImageDataset, channel_statistics, count_batches
from sklearn_cnn.preprocessing import PretrainedFeatures

FAST = dict(filters=(8,), max_epochs=1, batch_size=16, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(20, 6, 6, 3)).astype(np.float32)
    y = np.array([0, 1] * 10)
    return CNNClassifier(**FAST).fit(X, y), X, y


@pytest.mark.parametrize("X, error, match", [
    ([np.zeros((6, 6, 3)), np.zeros((5, 7, 3))], ValueError,
     r"list of 2 images of 2 different shapes \(\(5, 7, 3\), \(6, 6, 3\)\).*ImageLoader\(size="),
    (["a.png", "b.png"], TypeError, r"2 file paths \(e.g. 'a.png'\).*ImageLoader"),
])
def test_lists_that_are_not_a_batch_of_images(X, error, match):
    with pytest.raises(error, match=match):
        CNNClassifier(**FAST).fit(X, [0, 1])


def test_path_objects_are_recognised_as_files(tmp_path):
    with pytest.raises(TypeError, match="file paths"):
        CNNClassifier(**FAST).fit([tmp_path / "a.png", tmp_path / "b.png"], [0, 1])


@pytest.mark.parametrize("single", [lambda X: X[0], lambda X: X[0].tolist()])
def test_a_single_image_without_the_batch_axis(fitted, single):
    clf, X, _ = fitted
    with pytest.raises(ValueError, match=r"shape \(6, 6, 3\) of a single image.*X\[np.newaxis\]"):
        clf.predict(single(X))
    assert clf.predict(X[:1]).shape == (1,)


def test_labels_with_none_among_strings():
    X = np.zeros((4, 6, 6))
    with pytest.raises(ValueError, match=r"1 missing label\(s\) \(None\).*positions \[2\]"):
        CNNClassifier(**FAST).fit(X, np.array(["a", "b", None, "a"], dtype=object))


@pytest.mark.parametrize("params, error, match", [
    ({"callbacks": ["x"]}, TypeError, r"callbacks\[0\] is 'x'.*skorch callback instances"),
    ({"callbacks": [("name", 3)]}, TypeError, r"callbacks\[0\]"),
    ({"optimizer": torch.optim.LBFGS}, ValueError, "LBFGS needs a closure"),
    ({"augment": lambda batch: None}, TypeError, r"returned None.*same shape"),
    ({"augment": lambda batch: batch[:, :, 1:]}, TypeError,
     r"returned a tensor of shape \(16, 3, 5, 6\) for a training batch of shape \(16, 3, 6, 6\)"),
])
def test_bad_parameters_name_the_problem(fitted, params, error, match):
    _, X, y = fitted
    with pytest.raises(error, match=match):
        CNNClassifier(**{**FAST, **params}).fit(X, y)


def test_parameters_broken_after_fit_are_caught_at_predict(fitted):
    clf, X, _ = fitted
    from sklearn.base import clone

    broken = clone(clf).fit(X, fitted[2]).set_params(batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        broken.predict(X)


def test_partial_fit_with_one_class_blames_classes(fitted):
    _, X, y = fitted
    with pytest.raises(ValueError, match="but classes has only one class"):
        CNNClassifier(**FAST).partial_fit(X, np.zeros(20), classes=[0])


@pytest.mark.parametrize("channels", [4, 5])
def test_pretrained_features_refuse_other_channel_counts(channels):
    X = np.zeros((2, 16, 16, channels), dtype=np.uint8)
    features = PretrainedFeatures("mobilenet_v3_small", weights=None, input_size=16,
                                  device="cpu")
    with pytest.raises(ValueError, match=f"RGB images, but these have {channels} channels"):
        features.fit(X)


def test_channel_statistics_stream_in_chunks():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(50, 4, 4, 3), dtype=np.uint8)
    mean, std = channel_statistics(images, chunk=7)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(axis=0))
    np.testing.assert_allclose(std, images.reshape(-1, 3).std(axis=0))
    _, constant_std = channel_statistics(np.full((3, 2, 2, 1), 5.0))
    assert constant_std.tolist() == [1.0]


@pytest.mark.parametrize("n, batch_size, expected", [(10, 1, 10), (10, 3, 3), (10, 4, 3),
                                                     (9, 4, 2), (1, 4, 1), (2, 1, 2)])
def test_batches_drop_only_a_trailing_single_image(n, batch_size, expected):
    dataset = ImageDataset(torch.zeros(n, 1, 2, 2), torch.zeros(n, dtype=torch.long))
    batches = list(BatchIterator(dataset, batch_size, drop_single=True))
    assert len(batches) == expected == count_batches(n, batch_size, drop_single=True)
    assert all(len(xb) > 1 for xb, _ in batches) or batch_size == 1 or n == 1


def test_datasets_know_their_image_size(tmp_path):
    # Prediction batches are sized by it: a lazy collection is (n, H, W, C), a tensor
    # (N, C, H, W), cached features (N, F) have none.
    from PIL import Image

    from sklearn_cnn._files import LazyImages

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((6, 10, 3), np.uint8)).save(path)
    assert ImageDataset(LazyImages([path, path])).image_size == (6, 10)
    assert ImageDataset(torch.zeros(2, 3, 6, 10)).image_size == (6, 10)
    assert ImageDataset(torch.zeros(2, 512)).image_size is None
