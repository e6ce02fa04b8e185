"""Device selection: ``"auto"`` picks the best accelerator, explicit names are checked."""

from __future__ import annotations

import torch

__all__ = ["resolve_device", "memory_format_for", "native_bfloat16"]

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
