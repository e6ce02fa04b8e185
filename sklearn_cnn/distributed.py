"""Data-parallel training across processes: one model, every process on its shard of each
batch, launched by ``torchrun``, ``accelerate launch`` or an MPI launcher (``mpirun``).

A script that fits an estimator runs unchanged under ``torchrun --nproc_per_node N
script.py``: the launcher sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``, and ``fit`` then
joins the process group (gloo on the CPU, nccl on CUDA) and trains one model data-parallel.
``accelerate launch --multi_gpu`` runs torchrun; on CPUs, ``accelerate launch
--mpirun_hostfile`` runs ``mpirun``, whose variables (Open MPI's, MPICH's and Intel MPI's,
MVAPICH's: the ones Accelerate reads) are read the same way, with ``MASTER_ADDR`` and
``MASTER_PORT`` for the rendezvous.
``batch_size`` stays the global batch: each process takes its share of every batch (the same
seeded order on all of them), the gradients are averaged over all the images of the batch
(weighted by each share's size), and the losses and metrics the history records are those of
the whole batch, so that early stopping, schedules and the finite-loss check decide the same
everywhere, and every process ends with the same weights.

This is torch.distributed's own collective operations, used directly rather than
``DistributedDataParallel`` or skorch's ``AccelerateMixin``: the estimators' network is
swapped for a cached-feature tail, unwrapped for saving and exported to ONNX, which a wrapper
around ``module_`` would get in the way of; one all-reduce of one flat buffer per step is
what DDP does for a network this size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

__all__ = ["Context", "context", "is_main_process"]


@dataclass(frozen=True)
class Context:
    """This process's place in a data-parallel fit: ``rank`` of ``world_size``.

    Examples
    --------
    The second of two processes takes every other image of each batch:

    >>> import torch
    >>> from sklearn_cnn.distributed import Context
    >>> Context(rank=1, world_size=2).shard(torch.arange(6)).tolist()
    [1, 3, 5]
    """

    rank: int
    world_size: int

    # ------------------------------------------------------------------ agreement
    def agree(self, error: BaseException | None) -> None:
        """Every process reports whether its preparation failed; when any did, all raise the
        first failing process's error (a bad input on one process must not leave the others
        waiting forever in a collective)."""
        import torch.distributed as dist

        reports: list = [None] * self.world_size
        report = None if error is None else (type(error).__name__, str(error))
        dist.all_gather_object(reports, report)
        failed = [(rank, r) for rank, r in enumerate(reports) if r is not None]
        if not failed:
            return
        rank, (kind, message) = failed[0]
        if error is not None and rank == self.rank:
            raise error
        error_type = {"TypeError": TypeError}.get(kind, ValueError)
        raise error_type(f"{message} (in process {rank} of the data-parallel fit)")

    # ------------------------------------------------------------------ tensors
    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Process 0's weights and buffers, everywhere (a fit without random_state draws
        different initial weights in each process)."""
        import torch.distributed as dist

        with torch.no_grad():
            for tensor in [*module.parameters(), *module.buffers()]:
                dist.broadcast(tensor.data, src=0)

    def average_gradients(self, parameters, n_local: int) -> None:
        """The gradients of the whole batch: each process's (of the mean loss of its share)
        weighted by its share's size, summed, divided by the batch size. One all-reduce of
        one flat buffer."""
        import torch.distributed as dist

        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_ones(1)])
        flat.mul_(n_local)
        dist.all_reduce(flat)
        flat.div_(flat[-1].clone())
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
            offset += grad.numel()

    def mean(self, value: torch.Tensor, n_local: int) -> tuple[torch.Tensor, int]:
        """The size-weighted mean over all processes of a per-share mean, and the total size."""
        import torch.distributed as dist

        both = torch.stack([value.detach().float() * n_local,
                            value.new_tensor(float(n_local), dtype=torch.float32)])
        dist.all_reduce(both)
        return both[0] / both[1], int(both[1].item())

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """The sum over all processes (a copy)."""
        import torch.distributed as dist

        total = tensor.detach().clone()
        dist.all_reduce(total)
        return total

    def shard(self, index: torch.Tensor) -> torch.Tensor:
        """This process's share of a batch's indices: every ``world_size``-th from ``rank``."""
        return index[self.rank::self.world_size]


# (world size, rank, local rank) variables of the launchers, torchrun's first.
_LAUNCHERS = (
    ("WORLD_SIZE", "RANK", "LOCAL_RANK"),  # torchrun; accelerate launch on GPUs
    ("OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK"),  # Open MPI
    ("PMI_SIZE", "PMI_RANK", "MPI_LOCALRANKID"),  # MPICH, Intel MPI
    ("MV2_COMM_WORLD_SIZE", "MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_LOCAL_RANK"),  # MVAPICH
)


def _launch() -> tuple[int, int, int, str | None]:
    """(world size, rank, local rank, the variable that gave the size) of this process's
    multi-process launch, or (1, 0, 0, None) outside one."""
    for size, rank, local in _LAUNCHERS:
        world_size = int(os.environ.get(size, "1") or 1)
        if world_size > 1:
            return (world_size, int(os.environ.get(rank, "0") or 0),
                    int(os.environ.get(local, "0") or 0), size)
    return 1, 0, 0, None


def context(device: torch.device | None = None) -> Context | None:
    """The data-parallel context of this process, joining the process group the launcher
    (torchrun, accelerate launch, mpirun) prepared, or None outside a multi-process launch.

    The backend is nccl for CUDA devices and gloo otherwise.

    Examples
    --------
    >>> from sklearn_cnn.distributed import context
    >>> context() is None  # run without torchrun
    True
    """
    world_size, rank, _, variable = _launch()
    if world_size <= 1:
        return None
    import torch.distributed as dist

    if not dist.is_available():
        raise RuntimeError("This PyTorch has no torch.distributed, which a launch with "
                           f"{variable}={world_size} needs; run the script without a launcher.")
    if not dist.is_initialized():
        missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
        if missing:  # torchrun always sets them; a bare mpirun does not
            raise RuntimeError(
                f"This process is one of {world_size} ({variable}={world_size}), but "
                f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: the "
                "processes cannot find each other. Set MASTER_ADDR (the first process's host) "
                "and MASTER_PORT (a free port) for every process, e.g. mpirun -x "
                "MASTER_ADDR=127.0.0.1 -x MASTER_PORT=29500 ..., or launch with torchrun.")
        backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size)
    return Context(rank=dist.get_rank(), world_size=dist.get_world_size())


def is_main_process() -> bool:
    """Whether this is process 0 of a data-parallel launch (or no such launch): the one that
    saves the model and prints.

    Examples
    --------
    >>> from sklearn_cnn.distributed import is_main_process
    >>> is_main_process()
    True
    """
    return _launch()[1] == 0


def local_device(device: torch.device) -> torch.device:
    """Under a launch on GPUs, each process on its own: ``cuda:LOCAL_RANK``."""
    world_size, _, local_rank, _ = _launch()
    if device.type != "cuda" or world_size <= 1:
        return device
    return torch.device("cuda", local_rank)
