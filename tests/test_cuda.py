"""The CUDA paths, run for real on a GPU (``pytest -m cuda``); skipped without one.

Each test here says something that can only go wrong on a GPU: where the data lives and in
what dtype, the pinned-memory path, bf16 autocast, the fused optimizers, the loss history
that is read once per epoch, and a CUDA-trained model loaded where there is no GPU.
"""

import os
import subprocess
import sys

import joblib
import numpy as np
import pytest
import torch
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

import sklearn_cnn
from sklearn_cnn import (
    CNNClassifier,
    CNNRegressor,
    TransferClassifier,
    TransferRegressor,
)
from sklearn_cnn import _base as base
from sklearn_cnn import _training as training
from sklearn_cnn._data import (
    BatchIterator,
    ImageDataset,
    place_dataset,
    prediction_batch_size,
    to_compact_tensor,
)
from sklearn_cnn.networks import network_input_size

pytestmark = pytest.mark.cuda

CUDA = dict(filters=(8, 16), max_epochs=3, batch_size=32, device="cuda", random_state=0)


def _bright_quadrant(n=256, size=16, seed=0):
    """uint8 images whose class (0..3) is the quadrant holding a bright square."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 4, n)
    X = rng.randint(0, 100, size=(n, size, size, 3)).astype(np.uint8)
    half = size // 2
    for k in range(4):
        r, c = divmod(k, 2)
        X[y == k, r * half:(r + 1) * half, c * half:(c + 1) * half] = 255
    return X, y


def test_fit_on_cuda_learns_and_keeps_the_model_there():
    X, y = _bright_quadrant()
    clf = CNNClassifier(**{**CUDA, "max_epochs": 8}).fit(X, y)
    assert clf.device_.type == "cuda"
    assert all(p.is_cuda for p in clf.module_.parameters())
    conv = clf.module_.features[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert clf.score(X, y) >= 0.95
    proba = clf.predict_proba(X)
    assert isinstance(proba, np.ndarray) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def test_loss_history_is_complete_though_read_once_per_epoch():
    X, y = _bright_quadrant(n=100)
    clf = CNNClassifier(**{**CUDA, "early_stopping": True, "validation_fraction": 0.2}).fit(X, y)
    for epoch in clf.history_:
        batches = epoch["batches"]
        train = [b for b in batches if "train_loss" in b]
        valid = [b for b in batches if "valid_loss" in b]
        assert len(train) == epoch["train_batch_count"] == 3  # 80 images in batches of 32
        assert len(valid) == epoch["valid_batch_count"] == 1
        assert all(isinstance(b["train_loss"], float) and np.isfinite(b["train_loss"])
                   for b in train)
        # skorch's epoch loss is the batch-size-weighted mean of the batch losses.
        sizes = [b["train_batch_size"] for b in train]
        expected = np.average([b["train_loss"] for b in train], weights=sizes)
        assert epoch["train_loss"] == pytest.approx(expected, rel=1e-6)


def test_fused_optimizer_on_cuda_only(without_learning_check):
    X, y = _bright_quadrant(n=64)
    for optimizer in ["adam", "adamw", "sgd", "rmsprop"]:
        with without_learning_check():  # one epoch: which optimizer is the point
            clf = CNNClassifier(**{**CUDA, "max_epochs": 1}, optimizer=optimizer).fit(X, y)
        fused = clf.net_.optimizer_.defaults.get("fused")
        expected = training.OPTIMIZERS[optimizer] in training.FUSED_ON_CUDA
        assert bool(fused) == expected, optimizer
    with without_learning_check():
        cpu = CNNClassifier(**{**CUDA, "max_epochs": 1, "device": "cpu"}).fit(X, y)
    assert not cpu.net_.optimizer_.defaults.get("fused")


def test_dataset_is_held_once_on_the_gpu_as_uint8(without_learning_check):
    X, y = _bright_quadrant(n=20_000, size=32)  # 61 MB as uint8, 246 MB as float32
    clf = CNNClassifier(filters=(8,), max_epochs=1, batch_size=256, device="cuda",
                        random_state=0)
    with without_learning_check():  # one epoch: memory is the point here
        clf.fit(X[:256], y[:256])  # warm-up: CUDA context, cuDNN, allocator
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        clf.fit(X, y)
    added = torch.cuda.max_memory_allocated() - before
    # A float32 copy anywhere would add 246 MB more.
    assert X.nbytes <= added < X.nbytes + 120 * 2**20, added / 2**20


def test_host_path_delivers_the_same_batches_as_the_resident_one():
    X, y = _bright_quadrant(n=100)
    dataset = ImageDataset(to_compact_tensor(X), torch.from_numpy(y))
    resident = place_dataset(dataset, torch.device("cuda"))
    host = place_dataset(dataset, torch.device("cuda"), max_fraction=0.0)
    assert resident.X.is_cuda and resident.X.dtype == torch.uint8
    assert host is dataset and not host.X.is_cuda
    for shuffle in [True, False]:
        kwargs = dict(batch_size=32, shuffle=shuffle, device="cuda", seed=3)
        for (xa, ya), (xb, yb) in zip(BatchIterator(resident, **kwargs),
                                      BatchIterator(host, **kwargs), strict=True):
            assert xa.is_cuda and xb.is_cuda and xa.dtype == xb.dtype == torch.float32
            assert xb.is_contiguous(memory_format=torch.channels_last)
            torch.testing.assert_close(xa, xb, rtol=0, atol=0)
            torch.testing.assert_close(ya, yb, rtol=0, atol=0)


def test_fit_and_predict_from_host_memory(monkeypatch):
    # A dataset too large for the GPU stays on the host; batches go through pinned memory.
    X, y = _bright_quadrant()
    resident = CNNClassifier(**{**CUDA, "max_epochs": 8}).fit(X, y)
    monkeypatch.setattr(base, "place_dataset",
                        lambda dataset, device, **kwargs: place_dataset(dataset, device, 0.0))
    clf = CNNClassifier(**{**CUDA, "max_epochs": 8}).fit(X, y)
    assert clf.score(X, y) >= 0.95
    # The same batches in the same order: the same model, to cuDNN's float tolerance.
    np.testing.assert_allclose(clf.predict_proba(X), resident.predict_proba(X), atol=2e-3)


def test_prediction_batches_on_cuda_hold_more_small_images(without_learning_check):
    X, y = _bright_quadrant(n=64, size=8)
    assert prediction_batch_size(torch.device("cuda"), pixels=64, batch_size=32) == 2**21 // 64
    assert prediction_batch_size(torch.device("cpu"), pixels=64, batch_size=32) == 2**16 // 64
    with without_learning_check(), pytest.warns(UserWarning, match="random initialisation"):
        large = TransferClassifier(backbone="resnet18", weights=None, batch_size=8,
                                   max_epochs=1, device="cuda").fit(X[:16], y[:16])
    # The backbone sees the resized images.
    assert network_input_size(large.module_, (8, 8)) == (224, 224)
    assert prediction_batch_size(torch.device("cuda"), pixels=224 * 224, batch_size=8) == 41


@pytest.mark.parametrize("precision, dtype", [("auto", torch.bfloat16), ("bfloat16",
                                              torch.bfloat16), ("float32", None)])
def test_precision_on_cuda(precision, dtype):
    X, y = _bright_quadrant()
    clf = CNNClassifier(**{**CUDA, "max_epochs": 8}, precision=precision).fit(X, y)
    assert clf.net_.autocast_dtype is dtype
    assert clf.score(X, y) >= 0.95
    assert all(p.dtype == torch.float32 for p in clf.module_.parameters())


def test_seeded_cuda_fits_repeat():
    # Same seed, same GPU: the same batches, dropout masks and initial weights. cuDNN may
    # pick non-deterministic backward kernels, so the weights agree to float tolerance.
    X, y = _bright_quadrant(n=128)
    a = CNNClassifier(**CUDA, precision="float32").fit(X, y)
    b = CNNClassifier(**CUDA, precision="float32").fit(X, y)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)


def test_fit_leaves_the_global_cuda_rng_alone():
    X, y = _bright_quadrant(n=64)
    before = torch.cuda.get_rng_state()
    CNNClassifier(**CUDA).fit(X, y)
    assert torch.equal(torch.cuda.get_rng_state(), before)


@pytest.mark.parametrize("precision", ["float32", "auto"])
def test_cuda_model_loads_on_a_cpu_only_process(tmp_path, precision):
    X, y = _bright_quadrant(n=128)
    clf = CNNClassifier(**CUDA, precision=precision).fit(X, y)
    joblib.dump(clf, tmp_path / "model.joblib")
    np.save(tmp_path / "X.npy", X)
    code = (
        "import joblib, numpy as np, torch, warnings\n"
        "assert not torch.cuda.is_available()\n"
        f"m = joblib.load({str(tmp_path / 'model.joblib')!r})\n"
        "assert m.device_.type == 'cpu'\n"
        "assert all(not p.is_cuda for p in m.module_.parameters())\n"
        f"X = np.load({str(tmp_path / 'X.npy')!r})\n"
        f"np.save({str(tmp_path / 'proba.npy')!r}, m.predict_proba(X))\n"
    )
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    cpu_proba = np.load(tmp_path / "proba.npy")
    # The reference: the same weights run on this process's CPU.
    reference = sklearn_cnn.load(sklearn_cnn.save(clf, tmp_path / "model.safetensors"),
                                 device="cpu")
    np.testing.assert_array_equal(cpu_proba, reference.predict_proba(X))
    # ... and it trains on from there (warm start) on the CPU.
    reference.set_params(warm_start=True, max_epochs=1, device="cpu").fit(X, y)
    assert reference.device_.type == "cpu"
    gpu_proba = clf.predict_proba(X)
    if precision == "float32":
        np.testing.assert_allclose(cpu_proba, gpu_proba, atol=1e-5)
        np.testing.assert_array_equal(clf.classes_[cpu_proba.argmax(1)], clf.predict(X))
    else:  # bf16 on the GPU, float32 on the CPU: the same labels, bf16-close probabilities
        np.testing.assert_allclose(cpu_proba, gpu_proba, atol=0.05)


def test_compile_on_cuda():
    X, y = _bright_quadrant()
    clf = CNNClassifier(**{**CUDA, "max_epochs": 8}, compile=True).fit(X, y)
    assert clf.score(X, y) >= 0.95
    again = joblib.load(_dump(clf))
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))


def _dump(model):
    import io

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    return buffer


class _InitialWeights(Callback):
    def on_train_begin(self, net, **kwargs):
        self.weights = {k: v.detach().clone() for k, v in net.module_.named_parameters()}


@pytest.mark.parametrize("freeze", ["backbone", "none"])
def test_transfer_on_cuda_trains_what_it_should(freeze):
    X, y = _bright_quadrant(n=96, size=32)
    initial = _InitialWeights()
    clf = TransferClassifier(backbone="resnet18", weights=None, freeze=freeze, input_size=32,
                             max_epochs=6, batch_size=32, lr=0.003, device="cuda",
                             callbacks=[initial], random_state=0).fit(X, y)
    assert clf.device_.type == "cuda" and clf.net_.autocast_dtype is torch.bfloat16
    assert clf.predict_proba(X).shape == (96, 4)
    after = dict(clf.module_.named_parameters())
    head = "backbone.fc.1.weight"
    assert not torch.equal(after[head], initial.weights[head])
    stem = "backbone.conv1.weight"
    assert torch.equal(after[stem], initial.weights[stem]) == (freeze == "backbone")
    if freeze == "backbone":  # random features suffice for where the bright square is
        assert clf.score(X, y) >= 0.9


def test_threaded_grid_search_shares_the_gpu():
    from joblib import parallel_backend

    X, y = _bright_quadrant(n=256)
    with parallel_backend("threading"):
        search = GridSearchCV(CNNClassifier(**{**CUDA, "max_epochs": 8}),
                              {"dropout": [0.0, 0.5]}, cv=2, n_jobs=2, error_score="raise")
        search.fit(X, y)
    assert search.best_estimator_.device_.type == "cuda"
    assert np.all(search.cv_results_["mean_test_score"] >= 0.8)


# ------------------------------------------------------------- since the last GPU run
COLUMNS = dict(filters=(16, 32), max_epochs=20, lr=0.01, batch_size=32, device="cuda",
               random_state=0)


def test_save_of_a_cuda_model_loads_in_a_cpu_only_process(tmp_path):
    X, y = _bright_quadrant(n=128)
    clf = CNNClassifier(**CUDA, precision="float32").fit(X, y)
    path = sklearn_cnn.save(clf, tmp_path / "model.safetensors", optimizer=True)
    np.save(tmp_path / "X.npy", X)
    code = (
        "import numpy as np, torch, sklearn_cnn\n"
        "assert not torch.cuda.is_available()\n"
        f"m = sklearn_cnn.load({str(path)!r})\n"
        "assert m.device_.type == 'cpu' and m.device == 'cpu'\n"
        "assert all(not p.is_cuda for p in m.module_.parameters())\n"
        f"np.save({str(tmp_path / 'proba.npy')!r}, m.predict_proba(np.load("
        f"{str(tmp_path / 'X.npy')!r})))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "CUDA_VISIBLE_DEVICES": ""})
    on_cpu = sklearn_cnn.load(path, device="cpu")
    np.testing.assert_array_equal(np.load(tmp_path / "proba.npy"), on_cpu.predict_proba(X))
    np.testing.assert_allclose(on_cpu.predict_proba(X), clf.predict_proba(X), atol=1e-5)
    # Loaded here without device=: back on the GPU it was saved from, optimizer state too.
    again = sklearn_cnn.load(path)
    assert again.device_.type == "cuda"
    np.testing.assert_allclose(again.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    again.set_params(warm_start=True, max_epochs=1).fit(X, y)
    state = next(iter(again.net_.optimizer_.state.values()))
    assert state["exp_avg"].is_cuda and len(again.history_) == len(clf.history_) + 1


def test_warm_start_and_partial_fit_stay_on_the_gpu():
    X, y = _bright_quadrant()
    clf = CNNClassifier(**{**CUDA, "max_epochs": 4}, warm_start=True).fit(X, y)
    first = clf.net_
    clf.fit(X, y)
    assert clf.net_ is not first and len(clf.history_) == 8  # a new net, the history on
    assert clf.device_.type == "cuda" and clf.score(X, y) >= 0.95
    moments = [s["exp_avg"] for s in clf.net_.optimizer_.state.values()]
    assert moments and all(m.is_cuda for m in moments)  # Adam's state carried, on the GPU
    online = CNNClassifier(**CUDA)
    for _ in range(6):
        online.partial_fit(X, y, classes=np.arange(4))
    assert len(online.history_) == 6 and online.device_.type == "cuda"
    assert all(p.is_cuda for p in online.module_.parameters())
    assert online.score(X, y) >= 0.9


@pytest.mark.parametrize("precision, dtype", [("auto", torch.bfloat16), ("float32", None)])
def test_regressor_on_cuda(columns, precision, dtype):
    X, y, _ = columns
    reg = CNNRegressor(**COLUMNS, precision=precision).fit(X[:240], 1000 * y[:240] + 5e5)
    assert reg.net_.autocast_dtype is dtype and reg.device_.type == "cuda"
    predicted = reg.predict(X[240:])
    assert predicted.shape == (120,) and predicted.dtype == np.float64
    assert reg.score(X[240:], 1000 * y[240:] + 5e5) > 0.9  # standardised targets, on the GPU
    two = CNNRegressor(**COLUMNS, precision=precision).fit(X[:240], np.stack([y, -y], 1)[:240])
    assert two.predict(X[:5]).shape == (5, 2)


def test_label_sets_on_cuda(columns):
    X, _, labels = columns
    clf = CNNClassifier(**COLUMNS).fit(X[:240], labels[:240])
    assert clf.net_.autocast_dtype is torch.bfloat16
    predicted = clf.predict(X[240:])
    assert predicted.shape == (120, 3) and predicted.dtype == np.int8
    np.testing.assert_array_equal(predicted, clf.predict_proba(X[240:]) > 0.5)
    assert clf.score(X[240:], labels[240:]) > 0.8


def test_inspection_of_a_cuda_model_agrees_with_the_cpu(tmp_path):
    from sklearn_cnn.inspection import class_activation_maps, lr_find, top_losses

    X, y = _bright_quadrant(n=128, size=16)
    clf = CNNClassifier(**{**CUDA, "max_epochs": 8}, precision="float32").fit(X, y)
    on_cpu = sklearn_cnn.load(sklearn_cnn.save(clf, tmp_path / "m.safetensors"), device="cpu")
    before = {k: v.clone() for k, v in clf.module_.state_dict().items()}
    maps = class_activation_maps(clf, X[:4])
    assert maps.shape == (4, 16, 16) and np.isfinite(maps).all() and maps.max() > 0
    np.testing.assert_allclose(maps, class_activation_maps(on_cpu, X[:4]), atol=1e-2)
    worst, worst_cpu = top_losses(clf, X, y, k=5), top_losses(on_cpu, X, y, k=5)
    assert np.all(np.diff(worst.losses) <= 0)
    np.testing.assert_allclose(worst.losses, worst_cpu.losses, rtol=1e-3, atol=1e-5)
    found = lr_find(clf, X, y, steps=30)
    assert 1e-6 <= found.suggestion <= 1.0 and np.isfinite(found.raw_losses).all()
    for key, value in clf.module_.state_dict().items():  # the estimator was left alone
        assert torch.equal(value, before[key]), key


def test_onnx_export_of_a_cuda_model():
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("skl2onnx")
    X, y = _bright_quadrant(n=128)
    clf = CNNClassifier(**CUDA, precision="float32").fit(X, y)
    onx = sklearn_cnn.to_onnx(clf, X[:2])
    assert clf.device_.type == "cuda"  # export did not move the model
    labels, proba = ort.InferenceSession(onx.SerializeToString()).run(None, {"X": X})
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(labels, clf.predict(X))


def test_a_pretrained_timm_backbone_on_cuda(few_shot, lite0_weights, monkeypatch):
    import sklearn_cnn.transfer as transfer

    X_train, y_train, X_test, y_test = few_shot
    kwargs = dict(backbone="timm/tf_efficientnet_lite0", weights=lite0_weights, input_size=96,
                  lr=0.01, max_epochs=30, device="cuda", random_state=0)
    clf = TransferClassifier(**kwargs).fit(X_train, y_train)
    assert clf.net_.autocast_dtype is torch.bfloat16 and clf.device_.type == "cuda"
    assert clf.score(X_test, y_test) >= 0.9  # as on the CPU: the weights are ImageNet's
    # The feature cache on the GPU gives the uncached model (float32 for exactness).
    exact = {**kwargs, "max_epochs": 4, "precision": "float32"}
    cached = TransferClassifier(**exact).fit(X_train, y_train)
    with monkeypatch.context() as patch:
        patch.setattr(transfer, "feature_cache_split", lambda module: None)
        full = TransferClassifier(**exact).fit(X_train, y_train)
    np.testing.assert_allclose(cached.predict_proba(X_test), full.predict_proba(X_test),
                               atol=1e-4)
    reg = TransferRegressor(**{**kwargs, "batch_size": 8})
    brightness = X_train.mean(axis=(1, 2, 3))
    assert reg.fit(X_train, brightness).score(X_train, brightness) > 0.5


def test_the_data_parallel_path_on_nccl_with_one_process(tmp_path, monkeypatch):
    # One GPU here, and nccl refuses two processes on one device: a process group of one
    # runs every collective of a data-parallel fit (gradient all-reduce, loss means,
    # broadcast of the initial weights, agreement on errors, pooled batch norm) on nccl.
    import torch.distributed as dist

    from sklearn_cnn import distributed

    X, y = _bright_quadrant(n=128)
    plain = CNNClassifier(**CUDA, precision="float32").fit(X, y)
    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1, device_id=torch.device("cuda", 0))
    try:
        monkeypatch.setattr(distributed, "context",
                            lambda device=None: distributed.Context(rank=0, world_size=1))
        parallel = CNNClassifier(**CUDA, precision="float32").fit(X, y)
    finally:
        dist.destroy_process_group()
    assert parallel.device_.type == "cuda"
    np.testing.assert_allclose(parallel.history_[:, "train_loss"],
                               plain.history_[:, "train_loss"], rtol=1e-4)
    np.testing.assert_allclose(parallel.predict_proba(X), plain.predict_proba(X), atol=1e-4)


def test_time_series_train_on_cuda_and_load_where_there_is_none(tmp_path):
    # Series on the GPU: the NaN padding of unequal lengths, masked batch norm in bf16
    # autocast, CAM, and a CUDA-trained model read back onto the CPU.
    from sklearn_cnn import TimeSeriesClassifier
    from sklearn_cnn.inspection import class_activation_maps

    rng = np.random.RandomState(0)
    y = np.array(["down", "up"] * 48)
    X = [0.3 * rng.randn(2, 30 + i % 20) for i in range(len(y))]
    for series, label in zip(X, y):
        series[0, 5:11] += 2.0 if label == "up" else -2.0
    clf = TimeSeriesClassifier(filters=(8, 16, 8), max_epochs=15, lr=0.01, device="cuda",
                               random_state=0, verbose=0).fit(X, y)
    assert clf.device_.type == "cuda" and clf.score(X, y) > 0.9
    alone = np.vstack([clf.predict_proba([s]) for s in X[:4]])
    np.testing.assert_allclose(clf.predict_proba(X[:4]), alone, atol=2e-2)
    assert class_activation_maps(clf, X[:4]).shape == (4, 33)  # the longest of the four
    path = sklearn_cnn.save(clf, tmp_path / "series.safetensors")
    on_cpu = sklearn_cnn.load(path, device="cpu")
    assert (on_cpu.predict(X) == clf.predict(X)).mean() > 0.95
