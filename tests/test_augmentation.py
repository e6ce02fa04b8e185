"""Train-only augmentation (``augmentation.py``): per-sample transforms, and mixup and
cutmix, which mix images and their targets in pairs."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback
from torchvision.transforms import v2

from sklearn_cnn import CNNClassifier
from sklearn_cnn.augmentation import Augmentation, LabelMixing, make_augmentation


def _batch(n=64, size=8):
    x = torch.arange(size * size, dtype=torch.float32).view(1, 1, size, size) / size**2
    return x.expand(n, 3, size, size).clone()


def test_flip_is_per_sample_and_seeded():
    x = _batch()
    out = Augmentation(flip=True)(x, torch.Generator().manual_seed(0))
    flipped = sum(torch.equal(o, xi.flip(-1)) for o, xi in zip(out, x))
    assert 0 < flipped < len(x)  # some images flipped, some not
    again = Augmentation(flip=True)(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    other = Augmentation(flip=True)(x, torch.Generator().manual_seed(1))
    assert not torch.equal(out, other)


def test_crop_shifts_differ_per_sample_and_keep_the_size():
    x = _batch()
    out = Augmentation(crop_padding=2)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    distinct = {tuple(o[0].flatten().tolist()) for o in out}
    assert len(distinct) > 5
    # A shift moves pixels: the centre pixel of each output is a pixel of the input.
    assert set(out[:, 0, 4, 4].tolist()) <= set(x[0, 0].flatten().tolist())


def test_color_jitter_per_sample():
    x = _batch()
    out = Augmentation(brightness=0.3, contrast=0.3)(x, torch.Generator().manual_seed(0))
    means = out.mean(dim=(1, 2, 3))
    assert means.std() > 0.01
    ratio = out.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3))
    assert ratio.min() >= 0.7 - 1e-6 and ratio.max() <= 1.3 + 1e-6


def test_input_is_not_modified():
    x = _batch()
    before = x.clone()
    Augmentation(flip=True, crop_padding=2, brightness=0.2, contrast=0.2)(
        x, torch.Generator().manual_seed(0))
    assert torch.equal(x, before)


def test_presets_and_callables():
    assert make_augmentation(None, (8, 8, 1)) is None
    crop = make_augmentation("crop", (32, 32, 3))
    assert crop.crop_padding == 4 and not crop.flip
    assert make_augmentation("standard", (8, 8, 1)).flip
    transform = make_augmentation(v2.RandomHorizontalFlip(p=1.0), (8, 8, 1))
    x = _batch(2)
    assert torch.equal(transform(x, torch.Generator()), x.flip(-1))


def test_augmentation_never_touches_predict(digits):
    X, y = digits
    clf = CNNClassifier(filters=(8,), max_epochs=5, lr=0.01, device="cpu", random_state=0,
                        augment="standard").fit(X[:200], y[:200])
    with_augment = clf.predict_proba(X[:50])
    clf.set_params(augment=None)
    np.testing.assert_array_equal(clf.predict_proba(X[:50]), with_augment)
    plain = CNNClassifier(filters=(8,), max_epochs=5, lr=0.01, device="cpu",
                          random_state=0).fit(X[:200], y[:200])
    assert not np.array_equal(plain.predict_proba(X[:50]), with_augment)  # training used it


def test_augmentation_is_not_applied_to_the_validation_split(digits):
    X, y = digits
    seen = []

    def spy(batch):
        seen.append(len(batch))
        return batch

    clf = CNNClassifier(filters=(8,), max_epochs=1, batch_size=1000, device="cpu",
                        random_state=0, early_stopping=True, validation_fraction=0.2,
                        augment=spy)
    with pytest.warns(ConvergenceWarning, match="has not learned"):  # one step only
        clf.fit(X[:500], y[:500])
    assert seen == [400]


@pytest.mark.slow
def test_augmentation_helps_on_small_training_sets(digits):
    X, y = digits
    scores = {}
    for augment in [None, "crop"]:
        clf = CNNClassifier(augment=augment, max_epochs=40, device="cpu", random_state=0)
        scores[augment] = clf.fit(X[:200], y[:200]).score(X[200:], y[200:])
    assert scores["crop"] > scores[None]


MIX = dict(filters=(8, 16), batch_size=16, device="cpu", random_state=0)


# ------------------------------------------------------------------- mixup and cutmix
@pytest.mark.parametrize("mixup, cutmix", [(True, False), (False, True), (True, True)])
def test_images_and_labels_are_mixed_in_the_same_proportion(mixup, cutmix):
    # Image i is filled with the value i and has its own class i: a mixed image's mean is
    # then the label-weighted mean of the classes, whether blended (mixup) or pasted
    # (cutmix, where the label share is the pasted area).
    x = torch.arange(6, dtype=torch.float32).view(6, 1, 1, 1).expand(6, 1, 10, 10)
    y = torch.arange(6)
    mixing = LabelMixing(6, mixup=mixup, cutmix=cutmix)
    mixed, soft = mixing(x, y, torch.Generator().manual_seed(0))
    assert torch.allclose(soft.sum(1), torch.ones(6)) and (soft > 0).sum() > 6
    np.testing.assert_allclose(mixed.mean(dim=(1, 2, 3)), soft @ torch.arange(6.0), atol=1e-5)
    again = mixing(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(mixed, again[0]) and torch.equal(soft, again[1])
    assert torch.equal(x, torch.arange(6.0).view(6, 1, 1, 1).expand(6, 1, 10, 10))


class _Targets(Callback):
    """What each batch's targets were, and how many of the training predictions took the
    larger share of the (soft) target."""

    def initialize(self):
        self.seen, self.right = [], {}
        return self

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        self.seen.append((training, batch[1].dim()))

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        if training:
            epoch = len(net.history)
            right = int((y_pred.argmax(1) == batch[1].argmax(1)).sum())
            count, total = self.right.get(epoch, (0, 0))
            self.right[epoch] = (count + right, total + len(batch[1]))


@pytest.mark.parametrize("augment", ["mixup", "cutmix", ("standard", "mixup"),
                                     ("flip", "mixup", "cutmix")])
def test_mixing_touches_training_batches_only(digits, augment):
    X, y = digits
    spy = _Targets()
    clf = CNNClassifier(**MIX, max_epochs=2, augment=augment, early_stopping=True,
                        callbacks=[spy]).fit(X[:300], y[:300])
    assert {dim for training, dim in spy.seen if training} == {2}  # soft targets
    assert {dim for training, dim in spy.seen if not training} == {1}  # validation: labels
    inputs = []
    handle = clf.module_.register_forward_pre_hook(lambda m, a: inputs.append(a[0].clone()))
    proba = clf.predict_proba(X[:20])
    handle.remove()
    expected = torch.from_numpy(X[:20, None].astype(np.float32))
    assert torch.equal(inputs[0].contiguous(), expected)  # the images, unmixed
    np.testing.assert_array_equal(proba, clf.predict_proba(X[:20]))
    # Training accuracy counts a prediction right when it takes the larger share.
    for epoch, (right, total) in spy.right.items():
        assert clf.history_[epoch - 1, "train_acc"] == pytest.approx(right / total)


def test_unknown_augment_entries_are_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match=r"Unknown augment=\('flip', 'mixer'\)"):
        CNNClassifier(**MIX, augment=("flip", "mixer")).fit(X[:50], y[:50])


# ------------------------------------------------------------------------------ series
def _series(n=32, length=40):
    t = torch.linspace(0, 1, length)
    batch = torch.sin(6 * t).expand(n, 2, length).clone()
    for i in range(0, n, 2):
        batch[i, :, 25 + i % 10:] = float("nan")  # series of their own lengths
    return batch


@pytest.mark.parametrize("options", [dict(slicing=0.2), dict(warp=0.3), dict(scaling=0.2),
                                     dict(jitter=0.1)])
def test_series_augmentation_is_per_series_seeded_and_keeps_lengths(options):
    from sklearn_cnn.augmentation import SeriesAugmentation

    batch = _series()
    before = batch.clone()
    out = SeriesAugmentation(**options)(batch, torch.Generator().manual_seed(0))
    again = SeriesAugmentation(**options)(batch, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again, equal_nan=True)
    torch.testing.assert_close(batch, before, equal_nan=True)  # not in place
    torch.testing.assert_close(out.isnan(), batch.isnan())  # the padding stays padding
    changes = (out - batch).nan_to_num().abs().flatten(1).amax(1)
    assert (changes > 1e-3).all() and changes.unique().numel() > len(batch) // 2


def test_slicing_and_warping_keep_the_series_on_its_own_values():
    from sklearn_cnn.augmentation import SeriesAugmentation

    batch = torch.arange(30.0).expand(4, 1, 30).clone()
    for options in (dict(slicing=0.2), dict(warp=0.5)):
        out = SeriesAugmentation(**options)(batch, torch.Generator().manual_seed(1))
        # a ramp resampled along a monotone time axis: still rising, within its range
        assert (out.diff(dim=-1) >= -1e-5).all() and out.min() >= 0 and out.max() <= 29


def test_series_presets_and_callables_and_what_is_refused():
    from sklearn_cnn.augmentation import make_series_augmentation

    batch = _series()
    transform = make_series_augmentation(("standard", lambda x: x * 2))
    assert transform(batch, torch.Generator()).shape == batch.shape
    with pytest.raises(TypeError, match="returned None.*\\(N, C, T\\)"):
        make_series_augmentation(lambda x: None)(batch, torch.Generator())
    with pytest.raises(ValueError, match="'crop' is for images"):
        make_series_augmentation(("crop",))
    with pytest.raises(ValueError, match="'warp' is for series"):
        make_augmentation(("warp",), input_shape=(8, 8, 1))
