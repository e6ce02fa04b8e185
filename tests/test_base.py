"""The estimators' shared machinery (``_base.py``): one commit point, interrupts, warm
starts that apply their parameters, and the checks that keep results from being quietly
wrong."""

import os
import signal

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback

from sklearn_cnn import CNNClassifier, TransferClassifier
from sklearn_cnn.datasets import load_sample_patches

FAST = dict(filters=(8, 16), max_epochs=2, batch_size=16, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def photos():
    """160 uint8 16×16 patches of the two sample photos, no transformers."""
    return load_sample_patches(patch_size=16, n_patches=80, random_state=0)


class _CtrlC(Callback):
    """Sends the process a real SIGINT (what Ctrl-C does) in the middle of an epoch."""

    def __init__(self, at_epoch=1):
        self.at_epoch = at_epoch

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.at_epoch:
            os.kill(os.getpid(), signal.SIGINT)


def _state(clf):
    return {k: v.clone() for k, v in clf.module_.state_dict().items()}


# ------------------------------------------------------------------ interrupts and state
def test_ctrl_c_propagates_and_leaves_an_unfitted_estimator_unfitted(tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST, callbacks=[_CtrlC()])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    for name in ["net_", "classes_", "n_features_in_", "input_shape_", "device_"]:
        assert not hasattr(clf, name), name
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("how", ["refit", "warm_start", "partial_fit"])
def test_ctrl_c_leaves_a_fitted_model_exactly_as_it_was(tiny, how):
    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    net, proba, state = clf.net_, clf.predict_proba(X), _state(clf)
    # A refit trains a new network (here on other images); the others continue the history.
    clf.set_params(callbacks=[_CtrlC(at_epoch=1 if how == "refit" else 3)],
                   warm_start=how == "warm_start")
    with pytest.raises(KeyboardInterrupt):
        if how == "partial_fit":
            clf.partial_fit(X, y)
        else:
            clf.fit(X[:, :5, :5] if how == "refit" else X, y)
    assert clf.net_ is net and len(clf.history_) == 2
    assert clf.input_shape_ == (6, 6, 1) and clf.n_features_in_ == 36
    for key, value in clf.module_.state_dict().items():
        assert torch.equal(value, state[key]), key
    np.testing.assert_array_equal(clf.predict_proba(X), proba)


def test_early_stopping_still_stops_the_skorch_way(digits):
    # skorch's EarlyStopping stops a fit by raising KeyboardInterrupt itself: not a Ctrl-C.
    X, y = digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 30}, lr=0.5, optimizer="sgd",
                        lr_schedule=None, early_stopping=True, patience=2)
    with pytest.warns(ConvergenceWarning):  # lr=0.5 makes the validation loss worsen
        clf.fit(X[:300], y[:300])
    assert len(clf.history_) < 30


def test_a_failed_refit_keeps_the_input_bookkeeping(tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="weight of 0"):
        clf.set_params(class_weight={"top": 0, "bottom": 0}).fit(X[:, :4, :4], y)
    assert clf.n_features_in_ == 36 and clf.input_shape_ == (6, 6, 1)
    clf.predict(X)  # the data the model was trained on is still accepted
    clf.predict(X.reshape(len(X), -1))


# ------------------------------------------------------------- eval mode agrees with fit
@pytest.mark.parametrize("epochs", [2, 5])
def test_eval_predictions_agree_with_the_training_log(photos, epochs):
    # Raw uint8 pixels, no transformers, a short fit: batch-norm running statistics used to
    # lag so far behind that train accuracy 0.99 came with score 0.5.
    X, y = photos
    clf = CNNClassifier(max_epochs=epochs, device="cpu", random_state=0).fit(X, y)
    assert abs(clf.score(X, y) - clf.history_[-1, "train_acc"]) <= 0.05


def test_input_statistics_are_learned_and_saved_in_the_network(photos):
    X, y = photos
    clf = CNNClassifier(**FAST).fit(X, y)
    mean = X.reshape(-1, 3).mean(axis=0) / 255
    std = X.reshape(-1, 3).std(axis=0) / 255
    np.testing.assert_allclose(clf.module_.standardize.mean.flatten(), mean, rtol=1e-5)
    np.testing.assert_allclose(clf.module_.standardize.std.flatten(), std, rtol=1e-5)
    assert "standardize.mean" in clf.module_.state_dict()


def test_a_model_that_learned_nothing_warns(tiny):
    X, y = tiny
    blank = np.zeros_like(X)  # nothing in the images tells the classes apart
    with pytest.warns(ConvergenceWarning, match="no better than always answering"):
        CNNClassifier(**FAST).fit(blank, y)


# ------------------------------------------------------------------- TransferClassifier
def test_transfer_learns_from_float_pixels_in_0_255(photos):
    X, y = photos
    kwargs = dict(backbone="resnet18", weights=None, freeze="none", input_size=16,
                  max_epochs=3, device="cpu", random_state=0)
    uint8 = TransferClassifier(**kwargs).fit(X, y)
    floats = TransferClassifier(**kwargs).fit(X.astype(np.float32), y)
    # Both learn (chance is 0.5; the float images used to stay there).
    assert floats.score(X.astype(np.float32), y) >= 0.85 and uint8.score(X, y) >= 0.85
    # The other scale at predict time: a warning that names the ranges.
    with pytest.warns(UserWarning, match="trained on values from 0 to 1"):
        uint8.predict(X[:4].astype(np.float32))


def test_frozen_random_backbone_warns(photos):
    X, y = photos
    with pytest.warns(UserWarning, match="freezes the whole backbone at its random"), \
            pytest.warns(ConvergenceWarning, match="has not learned"):
        TransferClassifier(backbone="resnet18", weights=None, input_size=16, max_epochs=1,
                           device="cpu", random_state=0).fit(X[::5], y[::5])


# ----------------------------------------------------------------------- batch size one
def test_batch_size_one_trains_every_image(tiny):
    X, y = tiny
    clf = CNNClassifier(**{**FAST, "batch_size": 1}, batch_norm=False).fit(X, y)
    assert clf.history_[-1, "train_batch_count"] == len(X)
    with pytest.raises(ValueError, match="batch_size=1 cannot train.*batch normalisation"):
        CNNClassifier(**{**FAST, "batch_size": 1}).fit(X, y)


# -------------------------------------------------------------------------- warm starts
def test_onecycle_restarts_at_the_same_peak_on_each_call(digits):
    X, y = digits
    clf = CNNClassifier(**{**FAST, "max_epochs": 3}, lr=0.01, lr_schedule="onecycle",
                        warm_start=True)
    clf.fit(X[:128], y[:128]).fit(X[:128], y[:128])
    lrs = clf.history_[:, "lr"]
    assert lrs[3] == pytest.approx(lrs[0]) == pytest.approx(0.01 / 25)
    assert clf.net_.optimizer_.param_groups[0]["max_lr"] == pytest.approx(0.01)
    clf.partial_fit(X[:128], y[:128])
    assert clf.history_[-1, "lr"] == pytest.approx(0.01 / 25)


def test_warm_start_applies_the_changed_training_parameters(digits):
    X, y = digits
    X, y = X[:96], y[:96]
    seen = []
    clf = CNNClassifier(**{**FAST, "max_epochs": 6}, lr=0.01, lr_schedule=None,
                        warm_start=True).fit(X, y)
    steps = int(clf.net_.optimizer_.state_dict()["state"][0]["step"])
    clf.set_params(lr=0.05, batch_size=32, class_weight={0: 3.0}, label_smoothing=0.1,
                   augment=lambda batch: seen.append(len(batch)) or batch, max_epochs=1)
    clf.fit(X, y)
    assert clf.history_[-1, "lr"] == 0.05 and clf.net_.lr == 0.05
    assert [b["train_batch_size"] for b in clf.history_[-1, "batches"]] == [32, 32, 32]
    assert sum(seen) == 96
    assert clf.net_.criterion_.weight[0] == 3.0 and clf.net_.criterion_.label_smoothing == 0.1
    # The same optimizer carries its state (Adam's moments) into the new call.
    new_state = clf.net_.optimizer_.state_dict()["state"]
    assert int(new_state[0]["step"]) == steps + 3
    # Another optimizer starts afresh.
    clf.set_params(optimizer="sgd", augment=None).fit(X, y)
    assert isinstance(clf.net_.optimizer_, torch.optim.SGD) and len(clf.history_) == 8


@pytest.mark.parametrize("param, value", [("filters", (4,)), ("dropout", 0.5),
                                          ("batch_norm", False)])
def test_warm_start_refuses_a_changed_architecture(tiny, param, value):
    X, y = tiny
    clf = CNNClassifier(**{**FAST, "max_epochs": 10}, lr=0.01, warm_start=True).fit(X, y)
    net, fitted_value = clf.net_, clf.get_params()[param]
    with pytest.raises(ValueError, match=f"{param}=.*fitted with.*warm_start=False"):
        clf.set_params(**{param: value}).fit(X, y)
    with pytest.raises(ValueError, match=f"{param}=.*fitted with"):
        clf.partial_fit(X, y)
    assert clf.net_ is net
    clf.set_params(warm_start=False).fit(X, y)  # a new network: fine
    assert clf.net_.built_with_[param] == value
    with pytest.raises(ValueError, match=param):
        clf.set_params(**{param: fitted_value}).partial_fit(X, y)


def test_warm_start_keeps_filters_given_as_a_list(tiny):
    X, y = tiny
    clf = CNNClassifier(**{**FAST, "filters": [8, 16]}, warm_start=True).fit(X, y)
    clf.set_params(filters=(8, 16)).fit(X, y)
    assert len(clf.history_) == 4


# --------------------------------------------------------------------- non-finite values
@pytest.mark.parametrize("weights, match", [({"top": -1.0}, "finite numbers >= 0"),
                                            ({"top": float("nan")}, "finite numbers >= 0"),
                                            ({"top": 0.0, "bottom": 0.0}, "weight of 0")])
def test_class_weights_that_would_give_a_nan_loss_are_refused(tiny, weights, match):
    with pytest.raises(ValueError, match=match):
        CNNClassifier(**FAST, class_weight=weights).fit(*tiny)


def test_pixels_beyond_float32_are_refused(tiny):
    X, y = tiny
    with pytest.raises(ValueError, match=r"beyond float32's range.*Rescale"):
        CNNClassifier(**FAST).fit(X.astype(np.float64) * 1e39, y)


def test_huge_pixels_train_to_a_finite_model(tiny):
    X, y = tiny
    clf = CNNClassifier(**{**FAST, "max_epochs": 10}, lr=0.01).fit(X * 1e20, y)
    proba = clf.predict_proba(X * 1e20)
    assert np.isfinite(proba).all() and clf.score(X * 1e20, y) >= 0.9


def test_predicting_on_input_that_overflows_is_an_error(tiny):
    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    with pytest.warns(UserWarning, match="trained on values"), pytest.raises(
            ValueError, match="overflowed .* for 40 of the 40 images"):
        clf.predict(X * np.float32(3e38))


def test_a_diverging_fit_stops_with_a_clear_error(digits):
    X, y = digits
    clf = CNNClassifier(**FAST, batch_norm=False, optimizer="sgd", lr=1e12, lr_schedule=None)
    with pytest.raises(FloatingPointError, match=r"diverged.*epoch 1.*Lower lr"):
        clf.fit(X[:200], y[:200])
    assert not hasattr(clf, "net_")


# ------------------------------------------------------------------------ input layouts
def test_channels_first_arrays_are_flagged(tiny):
    X, y = tiny
    first = np.repeat(X[:, None], 3, axis=1)  # (40, 3, 6, 6): PyTorch's habit
    with pytest.warns(UserWarning, match="looks like channels-first.*data_format="):
        CNNClassifier(**FAST).fit(first, y)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        CNNClassifier(**FAST, data_format="channels_first").fit(first, y)
        CNNClassifier(**FAST).fit(first.transpose(0, 2, 3, 1), y)


def test_verbose_output_is_plain_text_outside_a_terminal(digits, capsys):
    X, y = digits
    CNNClassifier(**FAST, verbose=1).fit(X[:64], y[:64])
    out = capsys.readouterr()
    text = out.out + out.err
    assert "train_loss" in text
    assert "\x1b[" not in text and "%|" not in text


def test_a_warm_start_on_images_scaled_far_beyond_the_first_fit_is_refused(photos):
    X, y = photos
    clf = CNNClassifier(**{**FAST, "max_epochs": 4}, lr=0.01, warm_start=True).fit(X, y)
    proba = clf.predict_proba(X)
    with pytest.raises(ValueError, match=r"values from 0 to 255.*trained on values from 0 to 1"
                                         r".*warm_start=False"):
        clf.fit(X.astype(np.float32), y)  # 0..255 floats after uint8 (seen as 0..1)
    np.testing.assert_array_equal(clf.predict_proba(X), proba)  # left as it was
    with pytest.raises(ValueError, match="values from 0 to 255"):
        clf.partial_fit(X.astype(np.float32), y)
