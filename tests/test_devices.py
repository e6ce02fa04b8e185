import pytest
import torch

from sklearn_cnn import resolve_device


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device("auto").type == expected


@pytest.mark.parametrize("name, match", [("tpu9", "Unknown device"), ("vulkan", "Unsupported")])
def test_unknown(name, match):
    with pytest.raises(ValueError, match=match):
        resolve_device(name)


def test_type_error():
    with pytest.raises(TypeError, match="string or a torch.device"):
        resolve_device(0)


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA errors")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_gpu(name):
    with pytest.raises(ValueError, match="sees none.*device='auto'"):
        resolve_device(name)


@pytest.mark.cuda
def test_cuda_index_out_of_range():
    assert resolve_device("cuda").type == "cuda"
    with pytest.raises(ValueError, match="this machine has"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
