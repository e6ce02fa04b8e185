"""scikit-learn's own estimator checks, run on every estimator and transformer."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sklearn_cnn import CNNClassifier
from sklearn_cnn.preprocessing import (
    ChannelStandardizer,
    GrayscaleToRGB,
    ImageReshaper,
    ImageResizer,
    PixelScaler,
)

# Fast constructor arguments: tiny networks, few epochs (the checks fit hundreds of times).
ESTIMATORS = [
    CNNClassifier(filters=(8,), max_epochs=15, batch_size=16, lr=0.01, device="cpu"),
    ImageReshaper(),
    PixelScaler(),
    ChannelStandardizer(),
    ImageResizer(size=4),
    GrayscaleToRGB(),
]

EXPECTED_FAILED_CHECKS: dict = {}


@parametrize_with_checks(
    ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS.get(type(est), {})
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
