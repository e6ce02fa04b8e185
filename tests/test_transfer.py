
import numpy as np
import pytest
import torch
import torchvision
from skorch.callbacks import Callback

from sklearn_cnn import TransferClassifier
from sklearn_cnn.networks import TransferNet

# These tests check the mechanics of freezing, loading and caching on random backbones, on
# purpose (fast, no downloads): heads on frozen random features learn nothing in an epoch
# or two, and both warnings that say so are beside the point here.
# test_base.py::test_frozen_random_backbone_warns asserts the two warnings themselves.
pytestmark = [
    pytest.mark.filterwarnings("ignore:TransferClassifier.weights=None:UserWarning"),
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

SMALL = dict(
    max_epochs=2,
    backbone="mobilenet_v3_small",
    input_size=32,
    batch_size=16,
    device="cpu",
    random_state=0,
    lr=0.01,
)


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


class _StemImages(Callback):
    """Counts the images that reach the backbone's first convolution while the epochs run
    (from on_train_begin to on_train_end): 0 when the epochs train on cached features."""

    def on_train_begin(self, net, **kwargs):
        self.images = 0
        stem = next(m for m in net.module_.backbone.modules() if isinstance(m, torch.nn.Conv2d))
        self.handle = stem.register_forward_hook(self.count)

    def count(self, layer, inputs, output):
        self.images += len(inputs[0])

    def on_train_end(self, net, **kwargs):
        self.handle.remove()


@pytest.mark.parametrize("backbone", ["resnet18", "mobilenet_v3_small"])
def test_frozen_backbone_features_are_computed_once(patches, tmp_path, backbone,
                                                    monkeypatch):
    X, y = patches
    torch.manual_seed(0)
    path = tmp_path / "w.pth"
    torch.save(torchvision.models.get_model(backbone).state_dict(), path)
    kwargs = {**SMALL, "backbone": backbone, "max_epochs": 3, "weights": path,
              "early_stopping": True, "validation_fraction": 0.25, "precision": "float32"}
    stem = _StemImages()
    cached = TransferClassifier(**kwargs, callbacks=[stem]).fit(X, y)
    assert stem.images == 0  # the epochs never ran the backbone
    with monkeypatch.context() as patch:
        _uncached(patch)
        full = TransferClassifier(**kwargs, callbacks=[stem]).fit(X, y)
    assert stem.images == 3 * len(X)  # every epoch ran it on every training and validation image
    # The same model, to float tolerance: same losses, same predictions.
    np.testing.assert_allclose(cached.history_[:, "train_loss"], full.history_[:, "train_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(cached.history_[:, "valid_loss"], full.history_[:, "valid_loss"],
                               rtol=1e-4)
    np.testing.assert_allclose(cached.predict_proba(X), full.predict_proba(X), atol=1e-5)
    assert cached.module_.__dict__.get("_feature_tail") is None  # predict runs it all


@pytest.mark.parametrize("params", [{"augment": "flip"}, {"freeze": 1}, {"unfreeze_at": 2},
                                    {"freeze": "none"}])
def test_the_cache_is_skipped_where_it_would_not_be_exact(patches, params):
    X, y = patches
    stem = _StemImages()
    TransferClassifier(**{**SMALL, "max_epochs": 2}, weights=None, callbacks=[stem],
                       **params).fit(X, y)
    assert stem.images >= 2 * len(X) - 2  # every epoch ran the backbone (a last single
    # image after full batches is left out of an epoch)
