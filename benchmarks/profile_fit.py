"""Where a training step's time goes: the profiler's view of CNNClassifier.fit against the
hand-written loop, with each of our per-step changes taken back one at a time.

For each variant: wall milliseconds per step (best of three runs, no profiler), then one
profiled run for kernel launches, device-busy time and host-device synchronisations per
step. The variants:

* ``hand loop``: float32 tensors already on the device, channels-last, Adam (PyTorch's
  default multi-tensor path), no synchronisation;
* ``CNNClassifier``: as shipped;
* ``- deferred losses``: skorch's own epoch loop, which reads every batch's loss with
  ``.item()`` (a host-device synchronisation per step);
* ``- fused optimizer``: PyTorch's default multi-tensor optimizer instead of the fused one;
* ``- one-kernel uint8 scaling``: ``x.float().div_(255)`` per batch (two kernels);
* ``before (all three)``: the first round's code path.

And for prediction: predict_proba as shipped, with every image copied to the device at
once, and with the images copied batch by batch on a side stream, one batch ahead.

Run: ``python benchmarks/profile_fit.py [--device cuda] [--quick]``.
"""

from __future__ import annotations

import argparse
import time
from contextlib import ExitStack, contextmanager

import torch
from _common import hand_fit, hand_predict, machine, setup, table
from skorch import NeuralNet

import sklearn_cnn._base as base
import sklearn_cnn._data as data
import sklearn_cnn._training as training
from sklearn_cnn import CNNClassifier
from sklearn_cnn.devices import resolve_device

# --------------------------------------------------------------- taking changes back


def _skorch_epoch(self, iterator, training, prefix, step_fn, **fit_params):
    self._training_mode_ = None
    self._set_training(training)
    NeuralNet.run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params)


def _two_kernel_scaling(batch):
    return batch.float().div_(255.0) if batch.dtype == torch.uint8 else batch.float()


@contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def without(*changes):
    stack = ExitStack()
    if "losses" in changes:
        stack.enter_context(patched(training.Net, "run_single_epoch", _skorch_epoch))
    if "fused" in changes:
        stack.enter_context(patched(training, "FUSED_ON_CUDA", ()))
    if "scaling" in changes:
        stack.enter_context(patched(data, "to_float_batch", _two_kernel_scaling))
    if "at once" in changes:  # predict: every image to the device before the first batch
        stack.enter_context(patched(base, "PREDICT_AT_ONCE_BYTES", float("inf")))
    if "streamed" in changes:  # predict: batch by batch, each copy ahead of the compute
        stack.enter_context(patched(base, "PREDICT_AT_ONCE_BYTES", 0))
    return stack


# ----------------------------------------------------------------------- measuring


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def wall(fn, device, rounds):
    times = []
    for _ in range(rounds):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return min(times)


def profile_counts(fn, device):
    """Kernel launches, device-busy microseconds and synchronisations in one call of fn."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    sync(device)
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        sync(device)
    counts = dict(launches=0, syncs=0, items=0)
    # Device time as the profiler's own table totals it ("Self CUDA time total").
    counts["busy_us"] = sum(getattr(e, "self_device_time_total", 0)
                            for e in prof.key_averages())
    for event in prof.events():
        name = event.name
        if name in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC",
                    "cuLaunchKernelEx", "cudaLaunchCooperativeKernel"):
            counts["launches"] += 1
        elif name in ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaMemcpy"):
            counts["syncs"] += 1
        elif name == "aten::_local_scalar_dense":
            counts["items"] += 1
    return counts, prof


def per_step(make_fn, device, short=8, long=40):
    """Profiler counts per training step: two runs of different lengths, differenced, so
    that what a fit does once (building the model, copying the data) cancels out."""
    a, _ = profile_counts(make_fn(short), device)
    b, prof = profile_counts(make_fn(long), device)
    steps = long - short
    return {k: (b[k] - a[k]) / steps for k in a}, prof


def run(size, channels, n, epochs, batch_size, precision, device, rounds):
    X8, y, _, X_dev, y_dev, fresh = setup(size, channels, n, device)
    autocast_dtype = torch.bfloat16 if precision == "bfloat16" else None
    lr = 1e-3
    steps = data.count_batches(n, batch_size) * epochs
    clf_kwargs = dict(max_epochs=epochs, batch_size=batch_size, lr=lr, lr_schedule=None,
                      dropout=0.25, device=device, precision=precision, random_state=0)

    def hand(m, e=epochs):
        return lambda: hand_fit(fresh(), X_dev[:m], y_dev[:m], epochs=e, batch_size=batch_size,
                                lr=lr, autocast_dtype=autocast_dtype)

    def ours(m, e=epochs):
        return lambda: CNNClassifier(**{**clf_kwargs, "max_epochs": e}).fit(X8[:m], y[:m])

    variants = {
        "hand loop (data on the device)": (hand, ()),
        "**CNNClassifier.fit**": (ours, ()),
        "- deferred losses": (ours, ("losses",)),
        "- fused optimizer": (ours, ("fused",)),
        "- one-kernel uint8 scaling": (ours, ("scaling",)),
        "before (all three)": (ours, ("losses", "fused", "scaling")),
    }
    for make, changes in variants.values():  # warm-up: allocator, cuDNN's kernel choice
        with without(*changes):
            make(4 * batch_size, 1)()
    best = {}
    for _ in range(rounds):  # interleaved rounds: the machine's speed drifts
        for name, (make, changes) in variants.items():
            with without(*changes):
                best[name] = min(best.get(name, float("inf")), wall(make(n), device, 1))
    hand_s = best["hand loop (data on the device)"]
    rows, tops = [], {}
    for name, (make, changes) in variants.items():
        with without(*changes):
            counts, prof = per_step(lambda k, make=make: make(k * batch_size, 1), device)
        if name in ("hand loop (data on the device)", "**CNNClassifier.fit**"):
            tops[name] = prof.key_averages().table(sort_by="self_cpu_time_total",
                                                   row_limit=15)
        ms = 1000 * best[name] / steps
        rows.append([name, f"{ms:.3f}", f"{hand_s / best[name]:.2f}",
                     f"{counts['launches']:.1f}", f"{counts['busy_us'] / 1000:.3f}",
                     f"{100 * counts['busy_us'] / 1000 / ms:.0f}%",
                     f"{counts['syncs']:.2f}", f"{counts['items']:.2f}"])

    # Prediction.
    fitted = CNNClassifier(**clf_kwargs).fit(X8, y)
    predict_batch = 4 * batch_size
    pred = {
        "hand inference_mode loop (data on the device)": (lambda: hand_predict(
            fitted.module_, X_dev, batch_size=predict_batch, autocast_dtype=autocast_dtype), ()),
        "**CNNClassifier.predict_proba**": (lambda: fitted.predict_proba(X8), ()),
        "images copied at once": (lambda: fitted.predict_proba(X8), ("at once",)),
        "images copied batch by batch": (lambda: fitted.predict_proba(X8), ("streamed",)),
    }
    for fn, changes in pred.values():
        with without(*changes):
            fn()
    best_pred = {}
    for _ in range(rounds + 2):
        for name, (fn, changes) in pred.items():
            with without(*changes):
                best_pred[name] = min(best_pred.get(name, float("inf")), wall(fn, device, 1))
    hand_pred = best_pred["hand inference_mode loop (data on the device)"]
    pred_rows = [[name, f"{n / best_pred[name]:,.0f}", f"{hand_pred / best_pred[name]:.2f}"]
                 for name in pred]
    return rows, pred_rows, tops


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--all", action="store_true", help="more settings on CUDA")
    parser.add_argument("--tops", default=None, help="file to write the profiler tables to")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"Machine: {machine()}\n")
    if args.quick:
        settings = [(8, 1, 1024, 1, 32, "float32")]
    elif device.type == "cuda":
        settings = [(8, 1, 50_000, 2, 256, "float32"), (32, 3, 50_000, 2, 256, "bfloat16")]
        if args.all:
            settings += [(8, 1, 16384, 1, 32, "float32"), (32, 3, 50_000, 2, 256, "float32")]
    else:
        settings = [(8, 1, 4096, 2, 32, "float32"), (32, 3, 2048, 1, 64, "float32")]
    all_tops = []
    for size, channels, n, epochs, batch_size, precision in settings:
        rows, pred_rows, tops = run(size, channels, n, epochs, batch_size, precision, device,
                                    rounds=1 if args.quick else 2)
        title = (f"{n} images {size}×{size}×{channels}, batch {batch_size}, {epochs} epochs, "
                 f"{precision}, on {device}")
        print(f"### fit: {title}\n")
        print(table(["", "ms/step", "vs hand loop", "launches/step", "device-busy ms/step",
                     "device busy", "syncs/step", ".item()/step"], rows), "\n")
        print(f"### predict_proba: {title}, batch {4 * batch_size}\n")
        print(table(["", "images/s", "vs hand loop"], pred_rows), "\n", flush=True)
        all_tops += [f"## {title}: {name}\n{top}" for name, top in tops.items()]
    if args.tops:
        with open(args.tops, "w") as f:
            f.write("\n\n".join(all_tops))


if __name__ == "__main__":
    main()
