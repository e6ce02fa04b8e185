"""Training options the estimators hand to skorch (``_training.py``): early stopping,
class weights, test-time augmentation, verbosity, the summary, compilation."""

import re

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from sklearn_cnn import CNNClassifier, TransferClassifier

FAST = dict(filters=(8,), max_epochs=4, batch_size=32, device="cpu", random_state=0)


class _Snapshots(Callback):
    def initialize(self):
        self.states = []
        return self

    def on_epoch_end(self, net, **kwargs):
        self.states.append({k: v.clone() for k, v in net.module_.state_dict().items()})


def test_early_stopping_stops_and_restores_the_best_epoch(digits):
    X, y = digits
    snapshots = _Snapshots()
    # A huge learning rate makes the validation loss worsen after the first epochs.
    clf = CNNClassifier(**{**FAST, "max_epochs": 40}, lr=0.5, optimizer="sgd", lr_schedule=None,
                        early_stopping=True, patience=3, callbacks=[snapshots])
    clf.fit(X[:400], y[:400])
    losses = clf.history_[:, "valid_loss"]
    assert len(losses) < 40
    best = int(np.argmin(losses))
    assert len(losses) == best + 1 + 3  # stopped `patience` epochs after the best
    # The best epoch's weights; the batch-norm statistics are then recomputed for them.
    for key, value in clf.module_.named_parameters():
        torch.testing.assert_close(value, snapshots.states[best][key], msg=key)
    assert {"train_loss", "valid_loss", "train_acc", "valid_acc", "lr", "dur"} <= set(
        clf.history_[-1])


def test_no_internal_split_without_early_stopping(digits, without_learning_check):
    X, y = digits
    seen = []
    clf = CNNClassifier(**{**FAST, "max_epochs": 1}, augment=lambda b: seen.append(len(b)) or b)
    with without_learning_check():
        clf.fit(X[:100], y[:100])
    assert sum(seen) == 100 and "valid_loss" not in clf.history_[-1]


def test_early_stopping_needs_two_samples_per_class(digits):
    X, y = digits
    with pytest.raises(ValueError, match="early_stopping.*stratified"):
        CNNClassifier(**FAST, early_stopping=True).fit(X[:11], np.r_[np.zeros(10), 1])


def test_class_weight_changes_the_loss(digits):
    X, y = digits
    y = (y[:300] == 0).astype(int)  # about 10% positives: zeros against the other digits
    learns = {**FAST, "max_epochs": 10, "filters": (8, 16), "lr": 0.01}
    plain = CNNClassifier(**learns).fit(X[:300], y)
    balanced = CNNClassifier(**learns, class_weight="balanced").fit(X[:300], y)
    weight = balanced.net_.criterion_.weight.cpu().numpy()
    np.testing.assert_allclose(weight, 300 / (2 * np.bincount(y)), rtol=1e-6)
    assert balanced.history_[0, "train_loss"] != pytest.approx(plain.history_[0, "train_loss"])
    manual = CNNClassifier(**learns, class_weight={1: 5.0}).fit(X[:300], y)
    np.testing.assert_allclose(manual.net_.criterion_.weight.cpu().numpy(), [1.0, 5.0])
    smooth = CNNClassifier(**learns, label_smoothing=0.2).fit(X[:300], y)
    assert smooth.net_.criterion_.label_smoothing == pytest.approx(0.2)


def test_tta_averages_with_mirrored_images(digits):
    X, y = digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 8}, lr=0.01).fit(X[:200], y[:200])
    plain, mirrored = clf.predict_proba(X[:20]), clf.predict_proba(X[:20, :, ::-1])
    clf.set_params(tta=True)
    np.testing.assert_allclose(clf.predict_proba(X[:20]), (plain + mirrored) / 2, rtol=1e-6)


def test_verbose_prints_epochs(digits, capsys, without_learning_check):
    X, y = digits
    with without_learning_check():
        CNNClassifier(**{**FAST, "max_epochs": 2}).fit(X[:64], y[:64])
        assert capsys.readouterr().out == "" and capsys.readouterr().err == ""
        CNNClassifier(**{**FAST, "max_epochs": 2}, verbose=1).fit(X[:64], y[:64])
    out = capsys.readouterr().out
    assert "train_loss" in out and "train_acc" in out and re.search(r"^\s+2\s", out, re.M)


def test_summary_before_and_after_fit(digits, without_learning_check):
    X, y = digits
    clf = CNNClassifier(filters=(8, 16), device="cpu")
    before = clf.summary(input_shape=(8, 8, 1), n_outputs=10)
    assert "features.0 (Conv2d)" in before and "(16, 2, 2)" in before
    assert not hasattr(clf, "net_")
    with without_learning_check():
        clf.set_params(max_epochs=1).fit(X[:100], y[:100])
    after = clf.summary()
    assert after.total_params == sum(p.numel() for p in clf.module_.parameters())
    assert after == before  # same architecture, same table
    with pytest.raises(ValueError, match="input_shape"):
        CNNClassifier().summary()
    for shape, outputs in [((8, 8, 1), 0), ((8, 8, 1), 2.5), ((0, 8, 1), 2)]:
        with pytest.raises(ValueError, match="n_outputs must be|positive ints"):
            CNNClassifier().summary(input_shape=shape, n_outputs=outputs)
    frozen = TransferClassifier(backbone="resnet18", weights=None, input_size=32).summary(
        (32, 32, 3), n_outputs=3)
    assert frozen.trainable_params == 512 * 3 + 3
    assert f"Frozen params: {frozen.total_params - frozen.trainable_params:,}" in frozen


@pytest.mark.slow
def test_compile_trains_and_pickles(digits):
    import pickle

    X, y = digits
    kwargs = dict(filters=(8, 16), max_epochs=2, device="cpu", random_state=0)
    compiled = CNNClassifier(**kwargs, compile=True).fit(X[:300], y[:300])
    eager = CNNClassifier(**kwargs).fit(X[:300], y[:300])
    np.testing.assert_allclose(compiled.predict_proba(X[:50]), eager.predict_proba(X[:50]),
                               atol=0.02)
    again = pickle.loads(pickle.dumps(compiled))
    np.testing.assert_array_equal(again.predict(X[:50]), compiled.predict(X[:50]))


def test_compile_compiles_the_training_steps_only(digits, without_learning_check):
    # Prediction, the learning check and the batch-norm statistics run the module itself:
    # compiling each inference batch size and grad mode used up torch.compile's recompile
    # limit, after which it ran the training steps eagerly without a word.
    from torch._dynamo.utils import counters

    X, y = digits
    clf = CNNClassifier(filters=(8, 16), max_epochs=1, batch_size=64, device="cpu",
                        random_state=0, compile=True)
    torch._dynamo.reset()  # nothing compiled by earlier tests
    counters.clear()
    clf.fit(X[:300], y[:300])  # 4 full batches and one of 44 images
    assert 1 <= counters["frames"]["ok"] <= 4, dict(counters["frames"])
    counters.clear()
    for n in [7, 50, 300]:
        clf.predict_proba(X[:n])
    assert counters["frames"]["total"] == 0
    # A frozen backbone's features, computed once per fit, are no training step either.
    rng = np.random.RandomState(0)
    images, labels = rng.randint(0, 256, (64, 16, 16, 3)).astype(np.uint8), np.arange(64) % 2
    transfer = TransferClassifier(backbone="resnet18", weights=None, input_size=16,
                                  max_epochs=2, device="cpu", random_state=0, compile=True)
    torch._dynamo.reset()
    counters.clear()
    with without_learning_check(), pytest.warns(UserWarning, match="random initialisation"):
        transfer.fit(images, labels)  # the head alone trains, on cached features
    assert 1 <= counters["frames"]["ok"] <= 2, dict(counters["frames"])


def test_loaded_optimizer_state_takes_the_parameters_memory_layout():
    # A state read from a file is contiguous; on a GPU the convolution weights are
    # channels-last, and the fused optimizers refuse moments in another layout.
    from sklearn_cnn._training import load_optimizer_state

    torch.manual_seed(0)
    saved = torch.nn.Conv2d(3, 4, 3)
    optimizer = torch.optim.Adam(saved.parameters())
    saved(torch.randn(2, 3, 5, 5)).sum().backward()
    optimizer.step()
    state = optimizer.state_dict()
    assert state["state"][0]["exp_avg"].is_contiguous()
    layer = torch.nn.Conv2d(3, 4, 3).to(memory_format=torch.channels_last)
    fused = torch.optim.Adam(layer.parameters(), fused=True)
    load_optimizer_state(fused, state)
    moments = fused.state[layer.weight]
    for key in ["exp_avg", "exp_avg_sq"]:
        assert moments[key].stride() == layer.weight.stride()
        torch.testing.assert_close(moments[key], state["state"][0][key], rtol=0, atol=0)
    layer(torch.randn(2, 3, 5, 5)).sum().backward()
    fused.step()
