"""Class activation maps over time, for the time-series estimators: Wang, Yan & Oates'
CAM (2017) and Grad-CAM, through the last block of a :mod:`~sklearn_cnn.networks1d`
network. :func:`sklearn_cnn.inspection.class_activation_maps` calls this for series.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._series import validate_series
from .networks import eval_mode

__all__ = ["linear_head", "series_activation_maps"]


def linear_head(module: nn.Module) -> bool:
    """Whether the network's pooled features go to its outputs through one linear layer
    (no ``hidden_units``): what CAM needs."""
    return sum(isinstance(m, nn.Linear) for m in module.head.modules()) == 1


def _cam(module: nn.Module, x: torch.Tensor, wanted: torch.Tensor | None, method: str,
         softmax: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(maps (N, T'), mask (N, T')) at the last block's resolution."""
    with torch.enable_grad():
        features, mask = module.features(x)
        features = features.float()
        if not features.requires_grad:
            features = features.detach().requires_grad_()
        outputs = module.head(features, mask).float()
        index = outputs.argmax(1) if wanted is None else wanted
        if method == "cam":
            weights = module.output_layer.weight.float()                   # (outputs, C)
            chosen = weights[index]                                        # (N, C)
            if softmax and len(weights) > 1:
                # A softmax depends on the logits' differences: the class's weights against
                # the others' mean, as Grad-CAM weighs classes here too.
                chosen = chosen - (weights.sum(0) - chosen) / (len(weights) - 1)
            maps = torch.einsum("nc,nct->nt", chosen, features.detach())
            return maps, mask[:, 0]
        score = outputs.gather(1, index[:, None])[:, 0]
        if softmax and outputs.shape[1] > 1:  # against the other classes' mean, as for images
            score = score - (outputs.sum(1) - score) / (outputs.shape[1] - 1)
        grads, = torch.autograd.grad(score.sum(), features)
    real = mask.float()
    weights = (grads * real).sum(-1, keepdim=True) / real.sum(-1, keepdim=True).clamp_min(1)
    return torch.relu((weights * features.detach()).sum(1)), mask[:, 0]


def series_activation_maps(final, X, *, wanted: np.ndarray | None, method: str,
                           softmax: bool, batch_size: int = 32) -> np.ndarray:
    """Maps over time for the series ``X`` of a fitted time-series estimator: (n_cases,
    n_timepoints) in [0, 1], each scaled from its minimum to its maximum over the series'
    own time points, NaN after the end of series shorter than the longest. ``wanted`` is
    the output index to explain per series (None: the predicted class); ``method`` "cam",
    "gradcam" or "auto" (CAM where the network ends in one linear layer)."""
    values, _ = validate_series(final, X, fitting=False)
    module = final.module_
    if method == "auto":
        method = "cam" if linear_head(module) else "gradcam"
    if method == "cam" and not linear_head(module):
        raise ValueError(
            "method='cam' weighs the last block's channels by the output layer's weights, "
            f"which needs the pooled features to go straight to the outputs; this network "
            f"has hidden_units={tuple(final.hidden_units)!r}. Use method='gradcam'.")
    device = next(module.parameters()).device
    length = values.shape[-1]
    maps = []
    with eval_mode(module):
        for start in range(0, len(values), batch_size):
            x = torch.from_numpy(values[start:start + batch_size]).to(device)
            index = None if wanted is None else torch.as_tensor(
                wanted[start:start + batch_size], device=device)
            cam, mask = _cam(module, x, index, method, softmax)
            if cam.shape[-1] != length:  # pooled: back to the series' time points
                cam = F.interpolate(cam[:, None], size=length, mode="linear",
                                    align_corners=False)[:, 0]
            maps.append(cam.detach().float().cpu())
    cams = torch.cat(maps)
    real = torch.from_numpy(~np.isnan(values[:, 0]))
    low = torch.where(real, cams, torch.full_like(cams, torch.inf)).amin(1, keepdim=True)
    high = torch.where(real, cams, torch.full_like(cams, -torch.inf)).amax(1, keepdim=True)
    span = high - low
    scaled = torch.where(span > 1e-12, (cams - low) / span.clamp_min(1e-12),
                         torch.zeros_like(cams)).clamp(0, 1)
    return torch.where(real, scaled, torch.full_like(scaled, torch.nan)).numpy().astype(
        np.float32)
