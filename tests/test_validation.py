"""Input validation (``_validation.py``, the estimators' one validation path): every bad
input gets an error from our code that names the problem and the fix, before torch sees it."""

import numpy as np
import pytest
import torch
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cnn import CNNClassifier
from sklearn_cnn._validation import final_step, last_step, seed_of

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
    with pytest.raises(ValueError, match=r"partial_fit's classes argument must list every "
                                         r"class.*at least 2.*holds only \[0\]"):
        CNNClassifier(**FAST).partial_fit(X, np.zeros(20), classes=[0])


def test_seeds_are_drawn_from_the_random_state():
    assert seed_of(0) == seed_of(0) == seed_of(np.random.RandomState(0))
    assert seed_of(0) != seed_of(1)
    assert 0 <= seed_of(None) < 2**31 - 1


def test_the_final_step_of_a_pipeline_is_checked(fitted):
    clf, X, _ = fitted
    pipe = make_pipeline(StandardScaler(), clf)
    assert last_step(pipe) is clf and last_step(clf) is clf
    assert final_step(pipe, expected=CNNClassifier, what="a CNN") is clf
    with pytest.raises(TypeError, match=r"Expected a CNN \(or a Pipeline ending in one\), got "
                                        "StandardScaler"):
        final_step(make_pipeline(StandardScaler()), expected=CNNClassifier, what="a CNN")
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        final_step(CNNClassifier(), expected=CNNClassifier, what="a CNN")
