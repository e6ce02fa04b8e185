"""sklearn_cnn.save / load: safetensors + JSON, nothing unpickled; and lean joblib files."""

import json
import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import sklearn_cnn
from sklearn_cnn import CNNClassifier, TransferClassifier
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

FAST = dict(filters=(8, 16), max_epochs=2, batch_size=16, device="cpu", random_state=0)


@pytest.fixture(scope="module")
def photos():
    return load_sample_patches(patch_size=16, n_patches=20, random_state=0)


@pytest.fixture(scope="module")
def digits_pipeline(digits):
    X, y = digits
    pipe = make_pipeline(ImageReshaper(), PixelScaler(), ChannelStandardizer(),
                         CNNClassifier(**FAST))
    return pipe.fit(X[:300].reshape(300, -1), y[:300]), X[:100].reshape(100, -1)


def _proba_in_fresh_process(path, X, tmp_path):
    np.save(tmp_path / "X.npy", X)
    code = ("import numpy as np, pickle, torch, sklearn_cnn\n"
            "def refuse(*args, **kwargs):\n"
            "    raise AssertionError('unpickling during load')\n"
            "class Refuse(pickle.Unpickler):\n"
            "    load = refuse\n"
            "pickle.load = pickle.loads = torch.load = refuse\n"
            "pickle.Unpickler = Refuse\n"
            f"model = sklearn_cnn.load({str(path)!r})\n"
            f"np.save({str(tmp_path / 'proba.npy')!r}, model.predict_proba("
            f"np.load({str(tmp_path / 'X.npy')!r})))\n")
    subprocess.run([sys.executable, "-c", code], check=True)
    return np.load(tmp_path / "proba.npy")


def test_pipeline_predicts_bit_identically_in_a_fresh_process(digits_pipeline, tmp_path):
    pipe, X = digits_pipeline
    path = sklearn_cnn.save(pipe, tmp_path / "digits.safetensors")
    np.testing.assert_array_equal(_proba_in_fresh_process(path, X, tmp_path),
                                  pipe.predict_proba(X))
    loaded = sklearn_cnn.load(path)
    assert [name for name, _ in loaded.steps] == [name for name, _ in pipe.steps]
    assert loaded.get_params()["cnnclassifier__filters"] == (8, 16)
    assert loaded[-1].history_[-1, "train_loss"] == pipe[-1].history_[-1, "train_loss"]
    np.testing.assert_array_equal(loaded[2].mean_, pipe[2].mean_)


@pytest.mark.parametrize("labels", [
    np.array(["cat", "dog"] * 20),
    np.array([3, 70] * 20),
    np.array([1.0, -3.0] * 20),
    np.array([3, 70] * 20, dtype=np.int8),
    np.array(["cat", "dog"] * 20, dtype=object),
])
def test_class_labels_round_trip_exactly(tiny, tmp_path, labels):
    X, _ = tiny
    clf = CNNClassifier(**FAST).fit(X, labels)
    loaded = sklearn_cnn.load(sklearn_cnn.save(clf, tmp_path / "m.safetensors"))
    assert loaded.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))


def test_transfer_classifier_and_transformers_round_trip(photos, tmp_path):
    X, y = photos
    gray = X.mean(axis=-1).astype(np.uint8)
    pipe = make_pipeline(ImageResizer(size=20), GrayscaleToRGB(), TransferClassifier(
        backbone="mobilenet_v3_small", weights=None, freeze="none", input_size=24,
        max_epochs=1, device="cpu", random_state=0)).fit(gray, y)
    loaded = sklearn_cnn.load(sklearn_cnn.save(pipe, tmp_path / "t.safetensors"))
    np.testing.assert_array_equal(loaded.predict_proba(gray), pipe.predict_proba(gray))
    assert loaded[-1].module_.adapter.size == (24, 24)
    features = PretrainedFeatures(backbone="resnet18", weights=None, input_size=16, device="cpu",
                                  random_state=0).fit(X)
    again = sklearn_cnn.load(sklearn_cnn.save(features, tmp_path / "f.safetensors"))
    np.testing.assert_array_equal(again.transform(X), features.transform(X))
    assert again.get_feature_names_out()[0] == features.get_feature_names_out()[0]


def test_image_loader_pipelines_round_trip(tmp_path, photos):
    from PIL import Image

    X, y = photos
    paths = []
    for i, image in enumerate(X):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    pipe = make_pipeline(ImageLoader(size=12), CNNClassifier(**FAST)).fit(paths, y)
    loaded = sklearn_cnn.load(sklearn_cnn.save(pipe, tmp_path / "files.safetensors"))
    np.testing.assert_array_equal(loaded.predict_proba(paths), pipe.predict_proba(paths))


def test_warm_start_after_load_continues_with_the_optimizer_state(tiny, tmp_path):
    X, y = tiny
    clf = CNNClassifier(**FAST, lr_schedule=None).fit(X, y)
    with_state = sklearn_cnn.load(sklearn_cnn.save(clf, tmp_path / "a", optimizer=True))
    without = sklearn_cnn.load(sklearn_cnn.save(clf, tmp_path / "b"))
    assert not without.net_.optimizer_.state
    reference = clf.set_params(warm_start=True, max_epochs=1).fit(X, y).predict_proba(X)
    continued = with_state.set_params(warm_start=True, max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(continued.predict_proba(X), reference)
    assert len(continued.history_) == 3
    afresh = without.set_params(warm_start=True, max_epochs=1).fit(X, y)
    assert not np.array_equal(afresh.predict_proba(X), reference)


def test_a_model_saved_for_a_gpu_loads_on_the_cpu(tiny, tmp_path):
    X, y = tiny
    clf = CNNClassifier(**FAST).fit(X, y)
    clf.set_params(device="cuda")  # as if it had been trained there
    path = sklearn_cnn.save(clf, tmp_path / "gpu.safetensors")
    loaded = sklearn_cnn.load(path, device=None if not torch.cuda.is_available() else "cpu")
    # It runs on the CPU, and says so: a warm start trains there too.
    assert loaded.device_ == torch.device("cpu") and loaded.get_params()["device"] == "cpu"
    np.testing.assert_array_equal(loaded.predict_proba(X),
                                  clf.set_params(device="cpu").predict_proba(X))
    loaded.set_params(warm_start=True, max_epochs=1).fit(X, y)
    assert len(loaded.history_) == 3


@pytest.mark.parametrize("model, match", [
    (make_pipeline(StandardScaler(), ImageReshaper(image_shape=(6, 6))), "StandardScaler"),
    (LogisticRegression(), "LogisticRegression"),
])
def test_steps_the_format_cannot_hold_are_refused_at_save(model, match, tmp_path):
    with pytest.raises(ValueError, match=f"cannot hold a .*{match}.*joblib"):
        sklearn_cnn.save(model, tmp_path / "x.safetensors")
    assert not list(tmp_path.iterdir())


def test_parameters_holding_code_are_refused_at_save(tiny, tmp_path):
    X, y = tiny
    clf = CNNClassifier(**FAST, augment=lambda batch: batch).fit(X, y)
    with pytest.raises(ValueError, match=r"augment is <function.*never code"):
        sklearn_cnn.save(clf, tmp_path / "x.safetensors")


def test_unfitted_models_are_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        sklearn_cnn.save(CNNClassifier(), tmp_path / "x.safetensors")


def test_a_failed_save_keeps_the_earlier_file(tiny, tmp_path):
    X, y = tiny
    path = sklearn_cnn.save(CNNClassifier(**FAST).fit(X, y), tmp_path / "m.safetensors")
    before = path.read_bytes()
    with pytest.raises(ValueError):
        sklearn_cnn.save(CNNClassifier(**FAST, augment=lambda b: b).fit(X, y), path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


@pytest.fixture(scope="module")
def saved(tiny_module, tmp_path_factory):
    X, y = tiny_module
    path = tmp_path_factory.mktemp("saved") / "m.safetensors"
    return sklearn_cnn.save(CNNClassifier(**FAST).fit(X, y), path)


@pytest.fixture(scope="module")
def tiny_module():
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 1, size=(20, 6, 6)).astype(np.float32)
    return X, np.array([0, 1] * 10)


def _rewritten(path, tmp_path, change):
    data = bytearray(path.read_bytes())
    change(data)
    out = tmp_path / "changed.safetensors"
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("change, match", [
    (lambda d: d.__setitem__(len(d) - 7, d[len(d) - 7] ^ 1), "corrupted: its checksum"),
    (lambda d: d.__delitem__(slice(len(d) // 2, None)), "truncated, corrupted"),
    (lambda d: d.__delitem__(slice(0, None)), "truncated, corrupted"),
])
def test_damaged_files_are_errors_that_say_so(saved, tmp_path, change, match):
    with pytest.raises(ValueError, match=match):
        sklearn_cnn.load(_rewritten(saved, tmp_path, change))


def test_a_changed_description_is_caught(saved, tmp_path):
    data = saved.read_bytes()
    changed = data.replace(b'\\"lr\\": 0.002', b'\\"lr\\": 0.003')
    assert changed != data
    out = tmp_path / "lr.safetensors"
    out.write_bytes(changed)
    with pytest.raises(ValueError, match="checksum"):
        sklearn_cnn.load(out)


def test_files_that_are_not_ours_are_refused(saved, tmp_path, tiny_module):
    from safetensors.torch import save_file

    joblib.dump(CNNClassifier(**FAST).fit(*tiny_module), tmp_path / "m.joblib")
    with pytest.raises(ValueError, match="pickle .joblib. file.*never unpickles"):
        sklearn_cnn.load(tmp_path / "m.joblib")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not one written by sklearn_cnn.save"):
        sklearn_cnn.load(tmp_path / "plain.safetensors")
    with pytest.raises(ValueError, match="No model file"):
        sklearn_cnn.load(tmp_path / "missing.safetensors")


def test_unknown_classes_in_a_file_are_refused(saved, tmp_path):
    # A file that names a class outside sklearn-cnn (with a valid checksum) is refused, and
    # nothing is imported.
    from safetensors import safe_open
    from safetensors.torch import save_file

    from sklearn_cnn.persistence import _checksum

    with safe_open(str(saved), framework="pt") as file:
        meta = file.metadata()
        tensors = {k: file.get_tensor(k) for k in file.keys()}
    doc = json.loads(meta["sklearn_cnn"])
    doc["model"]["class"] = "os.system"
    text = json.dumps(doc)
    path = tmp_path / "evil.safetensors"
    save_file(tensors, str(path), metadata={"sklearn_cnn": text,
                                            "sklearn_cnn_sha256": _checksum(text, tensors)})
    with pytest.raises(ValueError, match="'os.system' is not one of sklearn-cnn's"):
        sklearn_cnn.load(path)


def test_joblib_files_are_lean_and_predict_identically(photos, tmp_path):
    X, y = photos
    clf = TransferClassifier(backbone="resnet18", weights=None, freeze="none", input_size=16,
                             max_epochs=1, device="cpu", random_state=0).fit(X, y)
    weights = sum(t.numel() * t.element_size() for t in clf.module_.state_dict().values())
    joblib.dump(clf, tmp_path / "m.joblib")
    assert os.path.getsize(tmp_path / "m.joblib") <= 1.1 * weights
    assert clf.net_.optimizer_.state  # the fitted model keeps its state in memory
    again = joblib.load(tmp_path / "m.joblib")
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))
    assert os.path.getsize(sklearn_cnn.save(clf, tmp_path / "m.safetensors")) <= 1.1 * weights


@pytest.mark.parametrize("make_y", [
    lambda y: y.astype(float),                                  # one target
    lambda y: np.stack([y, y ** 2], axis=1).astype(float),      # two targets
])
def test_regressors_round_trip_bit_identically(digits, tmp_path, make_y, in_fresh_process):
    X, y = digits
    targets = make_y(y[:300])
    reg = sklearn_cnn.CNNRegressor(**FAST, lr=0.01).fit(X[:300], targets)
    path = sklearn_cnn.save(reg, tmp_path / "reg.safetensors")
    again = in_fresh_process(path, X[300:400], "predict")
    np.testing.assert_array_equal(again, reg.predict(X[300:400]))
    loaded = sklearn_cnn.load(path)
    np.testing.assert_array_equal(loaded.target_mean_, reg.target_mean_)
    assert loaded.outputs_2d_ == reg.outputs_2d_ and loaded.loss == "squared_error"
    np.testing.assert_array_equal(joblib.load(_dump(reg, tmp_path)).predict(X[:5]),
                                  reg.predict(X[:5]))


def test_label_set_models_round_trip_bit_identically(digits, tmp_path, in_fresh_process):
    X, y = digits
    sets = np.stack([y[:300] < 5, y[:300] % 2 == 0], axis=1).astype(np.uint8)
    clf = CNNClassifier(**{**FAST, "max_epochs": 6}, lr=0.01).fit(X[:300], sets)
    path = sklearn_cnn.save(clf, tmp_path / "sets.safetensors")
    again = in_fresh_process(path, X[300:400], "predict")
    np.testing.assert_array_equal(again, clf.predict(X[300:400]))
    assert again.dtype == np.uint8
    loaded = sklearn_cnn.load(path)
    assert loaded.target_type_ == "multilabel-indicator"
    np.testing.assert_array_equal(loaded.predict_proba(X[:20]), clf.predict_proba(X[:20]))


def _dump(model, tmp_path):
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return path


def test_save_keeps_the_file_mode_and_cleans_up_after_killed_saves(tiny, tmp_path):
    import stat
    import time

    X, y = tiny
    clf = CNNClassifier(**FAST, lr=0.01).fit(X, y)
    path = tmp_path / "model.safetensors"
    path.write_bytes(b"old")
    os.chmod(path, 0o644)
    sklearn_cnn.save(clf, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # was made 0600
    new = tmp_path / "new.safetensors"
    umask = os.umask(0o022)
    try:
        sklearn_cnn.save(clf, new)
    finally:
        os.umask(umask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o644
    stale = tmp_path / ".model.safetensors.abcd1234.partial"  # a save killed an hour ago
    stale.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = tmp_path / ".model.safetensors.efgh5678.partial"  # a save running now
    fresh.write_bytes(b"half")
    sklearn_cnn.save(clf, path)
    assert not stale.exists() and fresh.exists()


def test_save_and_load_explain_folders_and_pickles(tiny, tmp_path):
    X, y = tiny
    clf = CNNClassifier(**FAST, lr=0.01).fit(X, y)
    with pytest.raises(ValueError, match="it is a folder; give a file name in it"):
        sklearn_cnn.save(clf, tmp_path)
    with pytest.raises(ValueError, match="is a folder, not a model file"):
        sklearn_cnn.load(tmp_path)
    for compress in [0, 3, ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)]:
        path = tmp_path / f"model-{compress}.joblib"
        joblib.dump(clf, path, compress=compress)
        with pytest.raises(ValueError, match=r"pickle \(joblib\) file.*joblib.load"):
            sklearn_cnn.load(path)


def test_passthrough_steps_are_saved(tiny, tmp_path):
    X, y = tiny
    pipe = make_pipeline("passthrough", PixelScaler(), CNNClassifier(**FAST, lr=0.01))
    pipe.fit(X, y)
    loaded = sklearn_cnn.load(sklearn_cnn.save(pipe, tmp_path / "p.safetensors"))
    assert loaded.steps[0][1] == "passthrough"
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def test_files_of_format_1_keep_their_stride_pooling(tiny_module, tmp_path):
    # Before 0.3 (format 1), CNNClassifier's pooling=None meant stride-2 convolutions; it
    # now means no pooling. Such a file loads as the network it was, not as another one
    # with the same weights.
    from safetensors import safe_open
    from safetensors.torch import save_file

    from sklearn_cnn.persistence import _checksum

    X, y = tiny_module
    strided = CNNClassifier(**FAST, pooling="stride").fit(X, y)
    path = sklearn_cnn.save(strided, tmp_path / "new.safetensors")
    with safe_open(str(path), framework="pt") as file:
        meta = file.metadata()
        tensors = {k: file.get_tensor(k) for k in file.keys()}
    doc = json.loads(meta["sklearn_cnn"])
    doc["format_version"], doc["model"]["params"]["pooling"] = 1, None
    text = json.dumps(doc)
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"sklearn_cnn": text,
                                           "sklearn_cnn_sha256": _checksum(text, tensors)})
    loaded = sklearn_cnn.load(old)
    assert loaded.pooling == "stride"
    np.testing.assert_array_equal(loaded.predict_proba(X), strided.predict_proba(X))
