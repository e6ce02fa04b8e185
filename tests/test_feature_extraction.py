"""PretrainedFeatures (``feature_extraction.py``): a backbone's embeddings as a transformer."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from sklearn_cnn.datasets import load_sample_patches
from sklearn_cnn.feature_extraction import PretrainedFeatures

SMALL = dict(backbone="mobilenet_v3_small", weights=None, input_size=16, device="cpu",
             random_state=0)


@pytest.fixture(scope="module")
def photos():
    return load_sample_patches(patch_size=16, n_patches=30, random_state=0)


@pytest.mark.parametrize("channels", [4, 5])
def test_other_channel_counts_are_refused(channels):
    X = np.zeros((2, 16, 16, channels), dtype=np.uint8)
    with pytest.raises(ValueError, match=f"RGB images, but these have {channels} channels"):
        PretrainedFeatures(**SMALL).fit(X)


def test_columns_are_named_and_seeded(photos):
    X, _ = photos
    features = PretrainedFeatures(**SMALL).fit(X)
    out = features.transform(X)
    assert out.shape == (60, features.n_features_out_) == (60, 1024)
    assert features.get_feature_names_out()[0] == "pretrainedfeatures0"
    np.testing.assert_array_equal(PretrainedFeatures(**SMALL).fit_transform(X), out)


def test_float_pixels_in_0_255_embed_like_uint8(photos):
    # What the weights' normalisation expects is uint8 or [0, 1]: other scales are
    # standardised with their own statistics, so 0..255 floats are not 255x off.
    X, y = photos
    as_uint8 = PretrainedFeatures(**SMALL).fit(X)
    as_floats = PretrainedFeatures(**SMALL).fit(X.astype(np.float32))
    on_uint8 = make_pipeline(as_uint8, LogisticRegression(max_iter=1000)).fit(X, y)
    on_floats = make_pipeline(as_floats, LogisticRegression(max_iter=1000)).fit(
        X.astype(np.float32), y)
    assert on_floats.score(X.astype(np.float32), y) >= on_uint8.score(X, y) - 0.05
    scale = np.abs(as_floats.transform(X.astype(np.float32))).mean() / np.abs(
        as_uint8.transform(X)).mean()
    assert 0.2 < scale < 5, scale
    with pytest.warns(UserWarning, match="trained on values from 0 to 1"):
        as_uint8.transform(X[:4].astype(np.float32))


def test_constructor_is_keyword_only():
    with pytest.raises(TypeError):
        PretrainedFeatures("resnet18")
