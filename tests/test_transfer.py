import os
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pytest
import torch
import torchvision
from skorch.callbacks import Callback

from sklearn_cnn import TransferClassifier
from sklearn_cnn.datasets import load_sample_patches
from sklearn_cnn.networks import TransferNet
from sklearn_cnn.transfer import load_backbone

# These tests freeze random backbones on purpose (fast, no downloads);
# test_frozen_random_backbone_warns checks the warning itself.
pytestmark = pytest.mark.filterwarnings("ignore:TransferClassifier.weights=None:UserWarning")

SMALL = dict(
    max_epochs=2,
    backbone="mobilenet_v3_small",
    input_size=32,
    batch_size=16,
    device="cpu",
    random_state=0,
    lr=0.01,
)


@pytest.fixture(scope="module")
def patches():
    return load_sample_patches(patch_size=24, n_patches=24, random_state=0)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    """A mobilenet_v3_small state dict with non-trivial BN statistics, written by the test."""
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small()
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32) * 2 + 1)  # moves the running statistics
    path = tmp_path_factory.mktemp("weights") / "mobilenet.pth"
    torch.save(model.state_dict(), path)
    return path


def _backbone_state(clf):
    head = clf.head_name_ + "."
    return {
        k: v.clone() for k, v in clf.module_.backbone.state_dict().items() if not k.startswith(head)
    }


def test_frozen_backbone_keeps_weights_and_bn_statistics(patches, weights_file):
    X, y = patches
    clf = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=weights_file)
    clf.fit(X, y)
    loaded = torch.load(weights_file, weights_only=True)
    state = _backbone_state(clf)
    assert any("running_mean" in k for k in state)
    for key, value in state.items():
        torch.testing.assert_close(value, loaded[key], msg=key)
    head = clf.module_.backbone.get_submodule(clf.head_name_)
    trainable = [n for n, p in clf.module_.named_parameters() if p.requires_grad]
    assert trainable and all(f".{clf.head_name_}." in f".{n}" for n in trainable)
    assert head[1].out_features == 2


def test_head_trains(patches):
    X, y = patches
    clf = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=None)
    clf.fit(X, y)
    head_before = clf.module_.backbone.get_submodule(clf.head_name_)[1].weight.detach().clone()
    clf.set_params(warm_start=True, max_epochs=2).fit(X, y)
    head_after = clf.module_.backbone.get_submodule(clf.head_name_)[1].weight
    assert not torch.equal(head_before, head_after)


@pytest.mark.parametrize("k", [1, 3])
def test_freeze_k_trains_exactly_the_last_k_stages(patches, k):
    X, y = patches
    clf = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=None, freeze=k)
    clf.fit(X, y)
    backbone = clf.module_.backbone
    stages = clf.stage_names_
    for name in stages[-k:]:
        assert all(p.requires_grad for p in backbone.get_submodule(name).parameters()), name
    for name in stages[:-k]:
        assert not any(p.requires_grad for p in backbone.get_submodule(name).parameters()), name
    full = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=None, freeze="none").fit(X, y)
    assert all(p.requires_grad for p in full.module_.parameters())


class _RecordTrainable(Callback):
    def on_epoch_begin(self, net, **kwargs):
        frozen = [p for n, p in net.module_.named_parameters() if "features.1." in n]
        net.history.record("backbone_trains", all(p.requires_grad for p in frozen))


def test_gradual_unfreezing_at_the_epoch_asked(patches):
    X, y = patches
    clf = TransferClassifier(
        **{**SMALL, "max_epochs": 4},
        weights=None,
        unfreeze_at=3,
        callbacks=[("trainable", _RecordTrainable())],
    )
    clf.fit(X, y)
    assert clf.history_[:, "backbone_trains"] == [False, False, True, True]


def test_backbone_lr_multiplier(patches):
    X, y = patches
    clf = TransferClassifier(
        **{**SMALL, "max_epochs": 1}, weights=None, freeze="none", backbone_lr=0.1, lr_schedule=None
    ).fit(X, y)
    groups = clf.net_.optimizer_.param_groups
    assert [g["lr"] for g in groups] == pytest.approx([0.01, 0.001])
    assert len(groups[0]["params"]) == 2  # the new head's weight and bias


@pytest.mark.parametrize("shape", [(20, 20), (20, 28, 3), (40, 30, 1)])
def test_grayscale_and_rgb_of_other_sizes(shape):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(12, *shape)).astype(np.uint8)
    clf = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=None).fit(X, [0, 1] * 6)
    assert isinstance(clf.module_, TransferNet)
    assert clf.predict_proba(X).shape == (12, 2)


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


def test_safetensors_weights(tmp_path, weights_file, patches):
    safetensors = pytest.importorskip("safetensors.torch")
    path = tmp_path / "mobilenet.safetensors"
    safetensors.save_file(torch.load(weights_file, weights_only=True), str(path))
    clf = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=path).fit(*patches)
    expected = torch.load(weights_file, weights_only=True)["features.0.0.weight"]
    torch.testing.assert_close(clf.module_.backbone.features[0][0].weight, expected)


def test_head_of_another_class_count_is_replaced(tmp_path, patches):
    model = torchvision.models.mobilenet_v3_small(num_classes=7)
    path = tmp_path / "seven.pth"
    torch.save(model.state_dict(), path)
    clf = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=path).fit(*patches)
    assert clf.predict_proba(patches[0]).shape[1] == 2


def test_a_fitted_backbone_is_reusable_as_weights(tmp_path, patches):
    X, y = patches
    source = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=None, freeze="none")
    source.fit(X, y)
    path = tmp_path / "finetuned.pth"
    torch.save(source.module_.backbone.state_dict(), path)
    target = TransferClassifier(**{**SMALL, "max_epochs": 1}, weights=path).fit(
        X, np.r_[y[1:], y[:1]]
    )
    torch.testing.assert_close(
        target.module_.backbone.features[0][0].weight,
        source.module_.backbone.features[0][0].weight,
    )


def _uncached(monkeypatch):
    import sklearn_cnn.transfer as transfer

    monkeypatch.setattr(transfer, "feature_cache_split", lambda module: None)


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small"])
def test_frozen_backbone_features_are_computed_once(patches, tmp_path, backbone,
                                                    monkeypatch):
    X, y = patches
    torch.manual_seed(0)
    path = tmp_path / "w.pth"
    torch.save(torchvision.models.get_model(backbone).state_dict(), path)
    kwargs = {**SMALL, "backbone": backbone, "max_epochs": 3, "weights": path,
              "early_stopping": True, "validation_fraction": 0.25, "precision": "float32"}
    cached = TransferClassifier(**kwargs).fit(X, y)
    assert cached.net_.cached_features_
    calls = []
    module = cached.module_
    handle = module.backbone.register_forward_hook(lambda *a: calls.append(1))
    with monkeypatch.context() as patch:
        _uncached(patch)
        full = TransferClassifier(**kwargs).fit(X, y)
    handle.remove()
    assert not full.net_.cached_features_ and not calls
    # The same model, to float tolerance: same losses, same predictions.
    np.testing.assert_allclose(cached.history_[:, "train_loss"], full.history_[:, "train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(cached.history_[:, "valid_loss"], full.history_[:, "valid_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(cached.predict_proba(X), full.predict_proba(X), atol=1e-5)
    assert module.__dict__.get("_feature_tail") is None  # predict runs the whole network


@pytest.mark.parametrize("params", [{"augment": "flip"}, {"freeze": 1}, {"unfreeze_at": 2},
                                    {"freeze": "none"}])
def test_the_cache_is_skipped_where_it_would_not_be_exact(patches, params):
    X, y = patches
    clf = TransferClassifier(**{**SMALL, "max_epochs": 2}, weights=None, **params).fit(X, y)
    assert not clf.net_.cached_features_
