"""Backbones (``backbones.py``): torchvision's models by name, their weights from the hub
cache, local files or nowhere, the stages freezing counts, and their embeddings."""

import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
import torchvision

from sklearn_cnn import TransferClassifier
from sklearn_cnn._data import ImageDataset
from sklearn_cnn.backbones import (
    backbone_stages,
    embed,
    fit_pixel_scale,
    layer_inputs,
    list_backbones,
    load_backbone,
)
from sklearn_cnn.networks import InputAdapter

pytestmark = pytest.mark.filterwarnings("ignore:TransferClassifier.weights=None:UserWarning")

SMALL = dict(max_epochs=1, backbone="mobilenet_v3_small", input_size=32, batch_size=16,
             device="cpu", random_state=0, lr=0.01)


def test_names_come_from_torchvisions_registry():
    names = list_backbones()
    assert {"resnet18", "mobilenet_v3_small", "efficientnet_b0", "vit_b_16"} <= set(names)
    backbone = load_backbone("resnet18")
    assert (backbone.head_name, backbone.in_features, backbone.input_size) == ("fc", 512, 224)
    assert backbone.mean == pytest.approx((0.485, 0.456, 0.406))


@pytest.mark.parametrize("name, expected", [
    ("resnet18", ["layer1", "layer2", "layer3", "layer4"]),
    # Blocks under 1% of the parameters (the stem, the first small blocks) are no stages.
    ("mobilenet_v3_small", [f"features.{i}" for i in range(4, 13)]),
])
def test_stages_are_the_top_level_blocks(name, expected):
    backbone = load_backbone(name)
    stages = [stage for stage, _ in backbone_stages(backbone.model, backbone.head_name)]
    assert stages == expected


def test_embeddings_and_the_inputs_of_a_layer():
    torch.manual_seed(0)
    model = torchvision.models.resnet18().eval()
    images = torch.rand(5, 3, 32, 32)
    dataset = ImageDataset(images)
    out = embed(model, dataset, batch_size=2, device=torch.device("cpu"))
    with torch.no_grad():
        torch.testing.assert_close(out, model(images))
        pooled = torch.flatten(model.avgpool(model.layer4(model.layer3(model.layer2(
            model.layer1(model.maxpool(model.relu(model.bn1(model.conv1(images))))))))), 1)
    got = layer_inputs(model, model.fc, dataset, batch_size=2, device=torch.device("cpu"))
    torch.testing.assert_close(got, pooled)
    assert model.training is False  # the mode is left as it was


def test_other_pixel_scales_are_standardised_by_the_adapter():
    adapter = InputAdapter(size=(8, 8), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert not fit_pixel_scale(adapter, np.full((2, 4, 4, 3), 200, np.uint8))
    assert not fit_pixel_scale(adapter, np.full((2, 4, 4, 3), 0.5, np.float32))
    rng = np.random.RandomState(0)
    images = rng.uniform(0, 255, size=(4, 4, 4, 1)).astype(np.float32)
    assert fit_pixel_scale(adapter, images)
    mean, std = images.mean(), images.std()
    torch.testing.assert_close(adapter.mean.flatten(), torch.full((3,), float(mean)),
                               rtol=1e-4, atol=0)
    torch.testing.assert_close(adapter.std.flatten(), torch.full((3,), float(std)),
                               rtol=1e-4, atol=0)


def test_default_weights_read_from_the_hub_cache(patches, weights_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("SKLEARN_CNN_OFFLINE", "1")
    enum = torchvision.models.get_model_weights("mobilenet_v3_small").DEFAULT
    cached = tmp_path / "hub" / "checkpoints" / os.path.basename(urlparse(enum.url).path)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(Path(weights_file).read_bytes())
    backbone = load_backbone("mobilenet_v3_small", "DEFAULT")
    expected = torch.load(weights_file, weights_only=True)["features.0.0.weight"]
    torch.testing.assert_close(backbone.model.features[0][0].weight, expected)
    assert backbone.input_size == 224 and backbone.mean == pytest.approx((0.485, 0.456, 0.406))


def test_default_weights_offline_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("SKLEARN_CNN_OFFLINE", "1")
    expected = str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    with pytest.raises(ValueError) as info:
        TransferClassifier(backbone="resnet18", device="cpu").fit(
            np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 0, 1]
        )
    message = str(info.value)
    assert expected in message and "weights='path/to/file.pth'" in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message


def test_unknown_backbone_lists_close_names():
    with pytest.raises(ValueError, match=r"Unknown backbone 'resnet19'.*'resnet18'"):
        TransferClassifier(backbone="resnet19").fit(np.zeros((4, 8, 8)), [0, 1] * 2)


def test_bad_weights(tmp_path, patches):
    X, y = patches
    wrong = tmp_path / "resnet.pth"
    torch.save(torchvision.models.resnet18().state_dict(), wrong)
    with pytest.raises(ValueError, match="do not fit"):
        TransferClassifier(**SMALL, weights=wrong).fit(X, y)
    with pytest.raises(ValueError, match="does not exist"):
        TransferClassifier(**SMALL, weights=str(tmp_path / "missing.pth")).fit(X, y)
    with pytest.raises(ValueError, match="neither a file nor one of"):
        TransferClassifier(**SMALL, weights="IMAGENET9K").fit(X, y)
    with pytest.raises(ValueError, match="no linear classifier"):
        TransferClassifier(**{**SMALL, "backbone": "squeezenet1_0"}, weights=None).fit(X, y)
    with pytest.raises(ValueError, match="these have 2 channels"):
        TransferClassifier(**SMALL, weights=None).fit(np.zeros((4, 8, 8, 2)), [0, 1] * 2)


@pytest.mark.parametrize("make, match", [
    (lambda path: path.mkdir(), "is a folder"),
    (lambda path: path.write_bytes(b""), r"is empty \(0 bytes\)"),
    (lambda path: path.write_bytes(np.random.RandomState(0).bytes(4096)),
     r"not a PyTorch weights file.*torch.save\(model.state_dict\(\), path\)"),
    (lambda path: torch.save(torchvision.models.mobilenet_v3_small(), path),
     r"pickled Python objects.*would run code.*model.state_dict\(\)"),
])
def test_weights_files_that_cannot_be_read(tmp_path, patches, make, match):
    path = tmp_path / "weights.pth"
    make(path)
    with pytest.raises(ValueError, match=match) as info:
        TransferClassifier(**SMALL, weights=path).fit(*patches)
    assert "weights_only=False" not in str(info.value)  # advice we would never take


def test_safetensors_weights(tmp_path, weights_file, patches, without_learning_check):
    safetensors = pytest.importorskip("safetensors.torch")
    path = tmp_path / "mobilenet.safetensors"
    safetensors.save_file(torch.load(weights_file, weights_only=True), str(path))
    with without_learning_check():  # random weights, frozen: the head cannot learn
        clf = TransferClassifier(**SMALL, weights=path).fit(*patches)
    expected = torch.load(weights_file, weights_only=True)["features.0.0.weight"]
    torch.testing.assert_close(clf.module_.backbone.features[0][0].weight, expected)


def test_head_of_another_class_count_is_replaced(tmp_path, patches, without_learning_check):
    model = torchvision.models.mobilenet_v3_small(num_classes=7)
    path = tmp_path / "seven.pth"
    torch.save(model.state_dict(), path)
    with without_learning_check():  # random weights, frozen: the head cannot learn
        clf = TransferClassifier(**SMALL, weights=path).fit(*patches)
    assert clf.predict_proba(patches[0]).shape[1] == 2
