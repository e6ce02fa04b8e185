"""Device selection (``"auto"`` picks the best accelerator, explicit names are checked), the
memory format convolutions run fastest in, and the precision a fit trains in."""

from __future__ import annotations

import torch
from torch import nn

from .networks import probe

__all__ = ["autocast_dtype", "has_tiny_convolutions", "memory_format_for", "native_bfloat16",
           "resolve_device"]

_DEVICE_HELP = "use 'auto', 'cpu', 'cuda', 'cuda:N', 'mps' or a torch.device"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn a device name into a :class:`torch.device` that exists on this machine.

    ``"auto"`` is the quiet choice: the first of CUDA, Apple MPS and CPU that is
    available. An explicit accelerator that is not there is an error, never a silent
    fallback to the CPU.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or a ``torch.device``.

    Returns
    -------
    torch.device
        The device; a bare ``"cuda"`` gets the index of the current CUDA device.

    Raises
    ------
    ValueError
        If the name is unknown or the device is not available here.
    TypeError
        If ``device`` is neither a string nor a ``torch.device``.

    Examples
    --------
    >>> from sklearn_cnn import resolve_device
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in {"cpu", "cuda", "mps"}
    True
    """
    if isinstance(device, torch.device):
        resolved = device
    elif not isinstance(device, str):
        raise TypeError(
            f"device must be a string or a torch.device, got {device!r}; {_DEVICE_HELP}."
        )
    elif device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    else:
        try:
            resolved = torch.device(device)
        except RuntimeError:
            raise ValueError(f"Unknown device {device!r}; {_DEVICE_HELP}.") from None

    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} asks for a CUDA GPU, but PyTorch sees none on this machine "
                "(torch.cuda.is_available() is False). Use device='auto' to fall back to the "
                "CPU quietly, or device='cpu'."
            )
        count = torch.cuda.device_count()
        if resolved.index is None:
            return torch.device("cuda", torch.cuda.current_device())
        if resolved.index >= count:
            raise ValueError(
                f"device={device!r} asks for CUDA device {resolved.index}, but this machine has "
                f"{count} (cuda:0 to cuda:{count - 1})."
            )
    elif resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(
                f"device={device!r} asks for Apple's MPS backend, which is not available here; "
                "use device='auto' or device='cpu'."
            )
    elif resolved.type != "cpu":
        raise ValueError(f"Unsupported device {device!r}; {_DEVICE_HELP}.")
    return resolved


def memory_format_for(device: torch.device) -> torch.memory_format:
    """The memory format convolutions run fastest in on ``device``.

    Channels-last on CPU (oneDNN) and CUDA (cuDNN): measured 1.2-1.9x faster for the
    default ConvNet on two CPU cores (``benchmarks/bench_throughput.py``). Apple's MPS
    supports it only partly, so it keeps the contiguous format.

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.devices import memory_format_for
    >>> memory_format_for(torch.device("cpu"))
    torch.channels_last
    """
    if device.type in ("cpu", "cuda"):
        return torch.channels_last
    return torch.contiguous_format


def native_bfloat16(device: str | torch.device = "auto") -> bool:
    """Whether ``device`` computes in bfloat16 natively, so that ``precision="auto"`` uses it.

    GPUs that PyTorch says support it; CPUs with AVX512-BF16 or AMX (recent x86 servers) or
    Arm's BF16 extension, read from the CPU's own feature flags. Elsewhere bfloat16 would be
    emulated, and slower than float32.

    Parameters
    ----------
    device : str or torch.device, default="auto"
        What the estimators' ``device`` takes: "auto", "cpu", "cuda", "cuda:N", "mps" or a
        ``torch.device`` (resolved with :func:`resolve_device`, so an accelerator that is not
        there is an error).

    Returns
    -------
    bool

    Examples
    --------
    >>> import torch
    >>> from sklearn_cnn.devices import native_bfloat16
    >>> native_bfloat16(torch.device("mps"))
    False
    >>> native_bfloat16("cpu") in (True, False)
    True
    """
    if isinstance(device, str):
        device = resolve_device(device)
    elif not isinstance(device, torch.device):
        raise TypeError(f"device must be a string or a torch.device, got {device!r}; "
                        f"{_DEVICE_HELP}.")
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type != "cpu":
        return False
    return _cpu_has_bfloat16()


def _cpu_has_bfloat16() -> bool:
    capabilities = getattr(torch.cpu, "get_capabilities", None)
    if capabilities is not None:  # torch >= 2.9: cpuinfo's flags
        flags = capabilities()
        return any(bool(flags.get(name)) for name in ("avx512_bf16", "amx_bf16", "bf16",
                                                     "sve_bf16"))
    check = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    return bool(check is not None and check())


# ------------------------------------------------------------------------ precision
def has_tiny_convolutions(module: nn.Module, input_shape: tuple[int, int, int]) -> bool:
    """Whether a strided convolution of the network sees a feature map smaller than its
    kernel (ResNet's last stage, stride 2 and 3×3, on the 1×1 map of a 16-pixel image).

    With bfloat16 on the CPU with two threads, oneDNN 3.12 (torch 2.14) sporadically returns
    NaN weight gradients for such a convolution: ResNet-18 at 16×16 failed within 25 fits in
    each of 3 runs; never in float32, nor in 40 fits with one thread, nor at 32×32 (40
    fits). ``precision="auto"`` trains such networks in float32 on the CPU; maps
    that small gain nothing from bfloat16.
    """
    tiny = []

    def check(layer, inputs, _):
        height, width = inputs[0].shape[-2:]
        kernel_h, kernel_w = layer.kernel_size
        strided = tuple(layer.stride) != (1, 1)
        tiny.append(strided and (height < kernel_h or width < kernel_w))

    probe(module, input_shape, [m for m in module.modules() if isinstance(m, nn.Conv2d)],
          check)
    return any(tiny)


def autocast_dtype(precision: str, device: torch.device, *, module: nn.Module | None = None,
                   input_shape: tuple | None = None) -> torch.dtype | None:
    """The autocast dtype for ``precision`` on ``device``, None for float32.

    "auto" is bfloat16 where the device computes it natively (see
    :func:`~sklearn_cnn.devices.native_bfloat16`), except on the CPU for a ``module`` with
    strided convolutions of maps smaller than their kernel (see
    :func:`has_tiny_convolutions`).
    """
    if precision == "bfloat16":
        return torch.bfloat16
    if precision != "auto" or not native_bfloat16(device):
        return None
    if device.type == "cpu" and module is not None and has_tiny_convolutions(module,
                                                                            input_shape):
        return None
    return torch.bfloat16
