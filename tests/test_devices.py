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


def test_auto_precision_is_bfloat16_where_the_cpu_has_it():
    from sklearn_cnn.devices import autocast_dtype, native_bfloat16

    cpu = torch.device("cpu")
    flags = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    if flags:
        assert native_bfloat16(cpu) == any(
            flags.get(name) for name in ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16"))
    expected = torch.bfloat16 if native_bfloat16(cpu) else None
    assert autocast_dtype("auto", cpu) == expected
    assert autocast_dtype("float32", cpu) is None
    assert autocast_dtype("bfloat16", cpu) == torch.bfloat16
    assert not native_bfloat16(torch.device("mps"))


def test_importing_the_package_loads_nothing_heavy():
    import subprocess
    import sys

    code = ("import sys, sklearn_cnn\n"
            "print(sorted(m for m in ('torch', 'torchvision', 'skorch', 'sklearn') "
            "if m in sys.modules))\n"
            "from sklearn_cnn import CNNClassifier\n"
            "print(sorted(m for m in ('torchvision', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split("\n")
    assert out[0] == "[]"  # `import sklearn_cnn` alone imports none of them
    assert out[1] == "[]"  # a CNNClassifier needs neither torchvision nor matplotlib


def test_auto_precision_avoids_bfloat16_on_strided_convolutions_of_tiny_maps():
    # oneDNN's bfloat16 weight gradients are sporadically NaN for a stride-2 convolution on a
    # 1×1 map (ResNet's last stage at 16 pixels): "auto" trains such networks in float32.
    from sklearn_cnn.backbones import load_backbone
    from sklearn_cnn.devices import has_tiny_convolutions

    resnet = load_backbone("resnet18").model.eval()
    assert has_tiny_convolutions(resnet, (16, 16, 3))
    assert not has_tiny_convolutions(resnet, (64, 64, 3))
    import numpy as np

    from sklearn_cnn import TransferClassifier

    X, y = np.random.RandomState(0).rand(8, 16, 16, 3).astype(np.float32), [0, 1] * 4
    kwargs = dict(backbone="resnet18", weights=None, freeze="none", max_epochs=1, device="cpu")
    assert TransferClassifier(**kwargs, input_size=16).fit(X, y).net_.autocast_dtype is None
    explicit = TransferClassifier(**kwargs, input_size=16, precision="bfloat16").fit(X, y)
    assert explicit.net_.autocast_dtype == torch.bfloat16  # the user's choice stands
