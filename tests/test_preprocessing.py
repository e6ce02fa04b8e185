import pickle

import numpy as np
import pytest
from sklearn.base import clone

from sklearn_cnn.preprocessing import (
    ChannelStandardizer,
    GrayscaleToRGB,
    ImageReshaper,
    ImageResizer,
    PixelScaler,
)

RNG = np.random.RandomState(0)
RGB8 = RNG.randint(0, 256, size=(5, 6, 7, 3)).astype(np.uint8)
GRAY = RNG.uniform(0, 16, size=(5, 6, 7))


@pytest.mark.parametrize("transformer, X", [
    (ImageReshaper(image_shape=(6, 7)), GRAY.reshape(5, -1)),
    (PixelScaler(), RGB8),
    (ChannelStandardizer(), RGB8),
    (GrayscaleToRGB(), GRAY),
])
def test_inverse_transform_round_trips(transformer, X):
    Xt = transformer.fit_transform(X)
    np.testing.assert_allclose(transformer.inverse_transform(Xt), X, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("transformer", [
    ImageReshaper(), PixelScaler(), ChannelStandardizer(), ImageResizer(size=4), GrayscaleToRGB(),
])
def test_pickle_and_clone_keep_behaviour(transformer):
    X = GRAY.reshape(5, -1)[:, :36]
    fitted = transformer.fit(X)
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    np.testing.assert_array_equal(clone(fitted).fit(X).transform(X), fitted.transform(X))


def test_pixel_scaler_learns_the_maximum():
    assert PixelScaler().fit(GRAY * 16 / GRAY.max()).data_max_ == pytest.approx(16)
    assert PixelScaler().fit(RGB8).data_max_ == RGB8.max()
    out = PixelScaler(max_value=255).fit_transform(RGB8)
    assert out.dtype == np.float32 and out.shape == RGB8.shape and out.max() <= 1


def test_channel_standardizer_statistics_per_channel():
    X = RGB8.astype(np.float64)
    scaler = ChannelStandardizer().fit(RGB8)
    np.testing.assert_allclose(scaler.mean_, X.mean(axis=(0, 1, 2)))
    np.testing.assert_allclose(scaler.std_, X.std(axis=(0, 1, 2)))
    out = scaler.transform(RGB8)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=(0, 1, 2)), 1, atol=1e-5)
    first = ChannelStandardizer(data_format="channels_first").fit(RGB8.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(first.mean_, scaler.mean_)
    with pytest.raises(ValueError, match="1 channel.*fitted on images with 3"):
        scaler.transform(GRAY)


def test_resizer_layouts_and_dtypes():
    out = ImageResizer(size=(12, 14)).fit_transform(RGB8)
    assert out.shape == (5, 12, 14, 3) and out.dtype == np.uint8
    gray = ImageResizer(size=3).fit_transform(GRAY)
    assert gray.shape == (5, 3, 3) and gray.dtype == np.float32
    first = ImageResizer(size=4, data_format="channels_first").fit_transform(
        RGB8.transpose(0, 3, 1, 2))
    assert first.shape == (5, 3, 4, 4)
    # A constant image stays constant: antialiased resize preserves the mean.
    const = np.full((1, 10, 10), 5.0)
    np.testing.assert_allclose(ImageResizer(size=4).fit_transform(const), 5.0, rtol=1e-6)
    with pytest.raises(ValueError, match="size"):
        ImageResizer(size=(1, 2, 3)).fit(RGB8)


def test_grayscale_to_rgb():
    out = GrayscaleToRGB().fit_transform(GRAY)
    assert out.shape == (5, 6, 7, 3)
    for channel in range(3):  # each channel is the grayscale image
        np.testing.assert_array_equal(out[..., channel], GRAY)
    first = GrayscaleToRGB(data_format="channels_first").fit_transform(GRAY[:, None])
    assert first.shape == (5, 3, 6, 7)
    np.testing.assert_array_equal(first[:, 1], GRAY)
    np.testing.assert_allclose(GrayscaleToRGB().fit(GRAY).inverse_transform(out), GRAY)
    np.testing.assert_array_equal(GrayscaleToRGB().fit_transform(RGB8), RGB8)
    with pytest.raises(ValueError, match="2 channels"):
        GrayscaleToRGB().fit_transform(np.zeros((2, 4, 4, 2)))


def test_reshaper_errors():
    with pytest.raises(ValueError, match="holds 49 values, but each row of X has 42"):
        ImageReshaper(image_shape=(7, 7)).fit(GRAY.reshape(5, -1))
    fitted = ImageReshaper(image_shape=(6, 7)).fit(GRAY.reshape(5, -1))
    with pytest.raises(ValueError, match="X has 41 features"):
        fitted.transform(GRAY.reshape(5, -1)[:, :41])


@pytest.mark.parametrize("transformer", [PixelScaler(), ChannelStandardizer(), GrayscaleToRGB()])
def test_bad_input(transformer):
    with pytest.raises(ValueError, match="NaN"):
        transformer.fit(np.full((2, 3, 3), np.nan))
    with pytest.raises(ValueError, match="5 dimensions"):
        transformer.fit(np.zeros((2, 3, 3, 1, 1)))
