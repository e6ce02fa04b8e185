"""TransferClassifier throughput: the frozen-backbone feature cache against the full pass
(resnet18 and mobilenet_v3_small, with held-out accuracy), and resnet18 at 224×224,
fine-tuned and predicting, against a hand-written loop over the same network.

On CUDA with bf16 autocast (``precision="auto"``) and channels-last; on the CPU in float32
with fewer images. Random weights (``weights=None``): speed does not depend on them.
The hand loop gets float32 images already normalised, at 224×224, on the device (the
ceiling); TransferClassifier gets the uint8 images and normalises per batch on the device.
Run: ``python benchmarks/bench_transfer.py [--device cuda]``.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torchvision
from _common import images, machine, table, timed
from torch import nn
from torch.nn import functional as F

from sklearn_cnn import TransferClassifier
from sklearn_cnn.backbones import IMAGENET_MEAN, IMAGENET_STD
from sklearn_cnn.devices import resolve_device


def hand_model(freeze: str, device) -> nn.Module:
    model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Sequential(nn.Dropout(0.2), nn.Linear(512, 10))
    if freeze == "backbone":
        for name, param in model.named_parameters():
            param.requires_grad_(name.startswith("fc."))
    return model.to(device=device, memory_format=torch.channels_last)


def hand_fit(model, X, y, *, epochs, batch_size, autocast_dtype, frozen):
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    if frozen:  # frozen batch norm keeps its statistics, as in TransferClassifier
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
    for _ in range(epochs):
        order = torch.randperm(len(X), generator=generator).to(X.device)
        for start in range(0, len(X), batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(X.device.type, dtype=autocast_dtype,
                                enabled=autocast_dtype is not None):
                loss = F.cross_entropy(model(X[index]).float(), y[index])
            loss.backward()
            optimizer.step()


@torch.inference_mode()
def hand_predict(model, X, *, batch_size, autocast_dtype):
    model.eval()
    with torch.autocast(X.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
        out = [model(X[i:i + batch_size]).float().softmax(1) for i in range(0, len(X), batch_size)]
    return torch.cat(out).cpu()


def cache_table(device, n_train=400, epochs=10) -> str:
    """Frozen backbone, fit with the feature cache against the full pass every epoch (the
    cache switched off), same data and seed, and the held-out accuracy of each."""
    import warnings

    import sklearn_cnn.transfer as transfer
    from sklearn_cnn.datasets import load_sample_patches

    X, y = load_sample_patches(patch_size=224, n_patches=(n_train + 100) // 2, random_state=0)
    order = np.random.RandomState(0).permutation(len(X))
    train, test = order[:n_train], order[n_train:]
    rows = []
    for backbone in ["resnet18", "mobilenet_v3_small"]:
        # Frozen "pretrained" weights from a file (no download here): a random network's,
        # whose features a linear head can still separate these photos with.
        path = f"/tmp/{backbone}-random.pth"
        torch.manual_seed(0)
        torch.save(torchvision.models.get_model(backbone).state_dict(), path)
        kwargs = dict(backbone=backbone, weights=path, freeze="backbone", max_epochs=epochs,
                      lr=0.01, device=device, random_state=0)
        result = {}
        for cached in [True, False]:
            split = transfer.feature_cache_split
            if not cached:
                transfer.feature_cache_split = lambda module: None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    clf = TransferClassifier(**kwargs)
                    seconds = timed(lambda clf=clf: clf.fit(X[train], y[train]))
            finally:
                transfer.feature_cache_split = split
            result[cached] = (seconds, clf.score(X[test], y[test]), clf.predict_proba(X[test]))
        (fast, fast_acc, fast_p), (slow, slow_acc, slow_p) = result[True], result[False]
        precision = "bf16" if clf.net_.autocast_dtype is not None else "float32"
        rows.append([backbone, precision, f"{slow:.1f}", f"{fast:.1f}",
                     f"**{slow / fast:.1f}×**", f"{slow_acc:.3f}", f"{fast_acc:.3f}",
                     f"{np.abs(fast_p - slow_p).max():.1e}"])
    return (f"### Frozen backbone: feature cache against the full pass, {n_train} images "
            f"224×224, {epochs} epochs, on {device}\n\n"
            + table(["backbone", "precision", "uncached fit s", "cached fit s", "speed-up",
                     "held-out acc. uncached", "cached", "max |Δp| held-out"], rows))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--n", type=int, default=None, help="images (default 4096 on CUDA)")
    parser.add_argument("--cache-only", action="store_true",
                        help="only the feature-cache table")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"Machine: {machine()}\n")
    print(cache_table(device), "\n", flush=True)
    if args.cache_only:
        return
    gpu = device.type == "cuda"
    n = args.n or (4096 if gpu else 64)
    batch_size = 64
    X, y = images(n, 224, 3)
    mean = np.asarray(IMAGENET_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(IMAGENET_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    X_norm = (X.transpose(0, 3, 1, 2).astype(np.float32) / 255 - mean) / std
    X_dev = torch.as_tensor(X_norm, device=device).contiguous(memory_format=torch.channels_last)
    del X_norm
    y_dev = torch.as_tensor(y, device=device)
    rows = []
    for freeze in ["backbone", "none"]:
        clf = TransferClassifier(backbone="resnet18", weights=None, freeze=freeze, max_epochs=1,
                                 batch_size=batch_size, device=device, random_state=0)
        clf.fit(X[:256], y[:256])  # warm-up: kernels, allocator
        autocast_dtype = clf.net_.autocast_dtype
        frozen = freeze == "backbone"
        model = hand_model(freeze, device)
        hand_fit(model, X_dev[:256], y_dev[:256], epochs=1, batch_size=batch_size,
                 autocast_dtype=autocast_dtype, frozen=frozen)
        contenders = {
            "fit": lambda clf=clf: clf.fit(X, y),
            "hand fit": lambda freeze=freeze, dtype=autocast_dtype, frozen=frozen: hand_fit(
                hand_model(freeze, device), X_dev, y_dev, epochs=1, batch_size=batch_size,
                autocast_dtype=dtype, frozen=frozen),
            "predict": lambda clf=clf: clf.predict_proba(X),
            "hand predict": lambda model=model, dtype=autocast_dtype: hand_predict(
                model, X_dev, batch_size=4 * batch_size, autocast_dtype=dtype),
        }
        best = {name: float("inf") for name in contenders}
        for _ in range(2):  # interleaved rounds, best of each: the machine's speed drifts
            for name, fn in contenders.items():
                best[name] = min(best[name], timed(fn))
        fit_s, hand_fit_s = best["fit"], best["hand fit"]
        predict_s, hand_predict_s = best["predict"], best["hand predict"]
        precision = "bf16 autocast" if autocast_dtype is not None else "float32"
        rows.append([f"freeze={freeze!r}", precision, f"{n / hand_fit_s:,.0f}",
                     f"{n / fit_s:,.0f}", f"**{hand_fit_s / fit_s:.2f}**",
                     f"{n / hand_predict_s:,.0f}", f"{n / predict_s:,.0f}",
                     f"**{hand_predict_s / predict_s:.2f}**"])
    print(f"### resnet18, {n} uint8 images of 224×224×3, batch {batch_size} (predict "
          f"{4 * batch_size}), channels-last, on {device}\n")
    print(table(["", "precision", "hand fit img/s", "fit img/s", "vs hand",
                 "hand predict img/s", "predict_proba img/s", "vs hand"], rows))


if __name__ == "__main__":
    main()
