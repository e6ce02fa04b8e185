"""to_onnx and the skl2onnx converters: parity with predict_proba under onnxruntime."""

import numpy as np
import pytest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sklearn_cnn import CNNClassifier, CNNRegressor, TransferClassifier, to_onnx
from sklearn_cnn.datasets import load_sample_patches
from sklearn_cnn.feature_extraction import PretrainedFeatures
from sklearn_cnn.preprocessing import (
    ChannelStandardizer,
    GrayscaleToRGB,
    ImageLoader,
    ImageReshaper,
    ImageResizer,
    PixelScaler,
)

ort = pytest.importorskip("onnxruntime")
skl2onnx = pytest.importorskip("skl2onnx")

CNN = dict(filters=(8, 16), max_epochs=2, device="cpu", random_state=0, precision="float32")


def _run(onx, X):
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def _assert_parity(model, onx, X):
    label, proba = _run(onx, X)
    np.testing.assert_array_equal(label, model.predict(X))
    np.testing.assert_allclose(proba, model.predict_proba(X), rtol=0, atol=1e-5)
    return proba


@pytest.fixture(scope="module")
def photos():
    X, y = load_sample_patches(patch_size=40, n_patches=30, random_state=0)
    return X, y


def test_cnn_on_digits_with_string_labels(digits):
    X, y = digits
    clf = CNNClassifier(**CNN).fit(X[:400], np.array([f"d{v}" for v in y[:400]]))
    onx = to_onnx(clf, X[:2])
    assert [o.name for o in onx.graph.output] == ["label", "probabilities"]
    assert not onx.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")
    _assert_parity(clf, onx, X[400:700])
    label, _ = _run(onx, X[400:403])
    assert label.dtype == object and label[0].startswith("d")


def test_cnn_on_uint8_photos_with_integer_labels(photos):
    X, y = photos
    labels = np.where(y == "china", 3, 70)
    clf = CNNClassifier(**CNN).fit(X, labels)
    onx = to_onnx(clf, X[:2])
    assert onx.graph.input[0].type.tensor_type.elem_type == 2  # uint8 in, as predict takes
    label, _ = _run(onx, X)
    assert label.dtype == np.int64 and set(label) <= {3, 70}
    _assert_parity(clf, onx, X)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small"])
def test_transfer_classifier_resizes_grayscale_inside_the_graph(photos, backbone):
    X, y = photos
    gray = X.mean(axis=-1).astype(np.uint8)  # (n, 40, 40): resized to 32 and made RGB inside
    clf = TransferClassifier(backbone=backbone, weights=None, freeze="none", input_size=32,
                             max_epochs=2, device="cpu", random_state=0,
                             precision="float32").fit(gray, y)
    onx = to_onnx(clf, gray[:2])
    assert "Resize" in {node.op_type for node in onx.graph.node}
    _assert_parity(clf, onx, gray)


def test_pipeline_of_our_transformers(digits):
    X, y = digits
    flat = X.reshape(len(X), -1).astype(np.float32)
    pipe = make_pipeline(ImageReshaper(), PixelScaler(), ChannelStandardizer(),
                         CNNClassifier(**CNN)).fit(flat[:400], y[:400])
    _assert_parity(pipe, to_onnx(pipe, flat[:2]), flat[400:700])


def test_resize_and_grayscale_steps(photos):
    X, y = photos
    gray = X.mean(axis=-1).astype(np.float32)
    pipe = make_pipeline(ImageResizer(size=20), GrayscaleToRGB(), PixelScaler(max_value=255),
                         CNNClassifier(**CNN)).fit(gray, y)
    _assert_parity(pipe, to_onnx(pipe, gray[:2]), gray)
    # uint8 images stay uint8 through ImageResizer, resized in float32 and rounded on both
    # sides: onnxruntime's resize kernel sums in another order, so a value at .5 may round
    # the other way: one grey level, on under 0.5% of the pixels (8.5% before the rounding
    # was shared).
    for size in [(17, 23), 16, 24, 57]:
        resizer = ImageResizer(size=size).fit(X)
        (resized,) = _run(to_onnx(resizer, X[:2]), X)
        assert resized.dtype == np.uint8
        difference = np.abs(resized.astype(int) - resizer.transform(X).astype(int))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.005, size


def test_a_uint8_resize_pipeline_predicts_as_its_graph(photos):
    X, y = photos
    pipe = make_pipeline(ImageResizer(size=24), CNNClassifier(**CNN)).fit(X, y)
    label, proba = _run(to_onnx(pipe, X[:2]), X)
    np.testing.assert_array_equal(label, pipe.predict(X))
    np.testing.assert_allclose(proba, pipe.predict_proba(X), atol=2e-3)


def test_the_graph_takes_what_predict_takes(photos, tmp_path):
    from sklearn.exceptions import NotFittedError

    X, y = photos
    clf = CNNClassifier(**CNN).fit(X, y)
    with pytest.raises(ValueError, match=r"fitted on images of shape \(40, 40, 3\)"):
        to_onnx(clf, X[:2, :32, :32])  # a ConvNet would run on them: predict refuses
    with pytest.raises(NotFittedError):
        to_onnx(CNNClassifier(), X[:2])
    onx = to_onnx(clf, X[:2])
    with pytest.raises(Exception, match="(?i)invalid dimensions|shape"):
        _run(onx, X[:2, :32, :32])


def test_mixed_pipelines_export_through_skl2onnx(digits):
    from sklearn_cnn.export import register_converters

    X, y = digits
    flat = X.reshape(len(X), -1).astype(np.float32)
    pipe = make_pipeline(StandardScaler(), ImageReshaper(image_shape=(8, 8)),
                         CNNClassifier(**CNN)).fit(flat[:400], y[:400])
    register_converters()
    onx = skl2onnx.to_onnx(pipe, flat[:2], options={id(pipe[-1]): {"zipmap": False}})
    _assert_parity(pipe, onx, flat[400:600])


def test_pretrained_features_and_zipmap(photos):
    X, y = photos
    features = PretrainedFeatures(backbone="resnet18", weights=None, input_size=32, device="cpu",
                                  random_state=0).fit(X)
    (out,) = _run(to_onnx(features, X[:2]), X[:10])
    np.testing.assert_allclose(out, features.transform(X[:10]), atol=1e-4, rtol=1e-4)
    clf = CNNClassifier(**CNN).fit(X, y)
    _, maps = _run(to_onnx(clf, X[:2], zipmap=True), X[:3])
    assert set(maps[0]) == {"china", "flower"}


def test_bfloat16_estimators_export_in_float32(photos):
    X, y = photos
    clf = CNNClassifier(**{**CNN, "precision": "bfloat16"}).fit(X, y)
    with pytest.warns(UserWarning, match="bfloat16 autocast.*about 1e-2.*precision='float32'"):
        onx = to_onnx(clf, X[:2])
    label, proba = _run(onx, X)
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=0.02)  # bf16's rounding
    assert (label == clf.predict(X)).mean() >= 0.95


def test_what_cannot_be_exported_says_why(tmp_path, digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"ImageLoader decodes files.*pipeline\[1:\]"):
        pipe = make_pipeline(ImageLoader(), CNNClassifier(**CNN))
        to_onnx(pipe, np.array(["a.png"]))
    clf = CNNClassifier(**CNN).fit(X[:100], y[:100])
    with pytest.raises(ValueError, match="target_opset >= 18"):
        to_onnx(clf, X[:2], target_opset=17)


@pytest.mark.parametrize("make_y", [lambda y: y.astype(float),
                                    lambda y: np.stack([y, 10 * y], axis=1).astype(float)])
def test_regressors_export_one_variable(digits, make_y):
    X, y = digits
    targets = make_y(y[:300])
    reg = CNNRegressor(**CNN, lr=0.01, tta=True).fit(X[:300], targets)
    onx = to_onnx(reg, X[:2])
    assert [o.name for o in onx.graph.output] == ["variable"]
    variable, = _run(onx, X[300:400].astype(np.float32))
    expected = reg.predict(X[300:400]).reshape(100, -1)
    assert variable.shape == expected.shape
    np.testing.assert_allclose(variable, expected, rtol=1e-5, atol=1e-4)


def test_label_sets_export_labels_and_probabilities(digits):
    X, y = digits
    sets = np.stack([y[:300] < 5, y[:300] % 2 == 0], axis=1).astype(int)
    clf = CNNClassifier(**{**CNN, "max_epochs": 6}, lr=0.01).fit(X[:300], sets)
    onx = to_onnx(clf, X[:2])
    label, proba = _run(onx, X[300:400].astype(np.float32))
    assert label.shape == proba.shape == (100, 2)
    np.testing.assert_array_equal(label, clf.predict(X[300:400]))
    np.testing.assert_allclose(proba, clf.predict_proba(X[300:400]), atol=1e-5)
    with pytest.raises(ValueError, match="zipmap=True.*single-label classifiers"):
        to_onnx(clf, X[:2], zipmap=True)
