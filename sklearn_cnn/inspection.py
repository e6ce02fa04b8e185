"""Looking inside a network: the layer summary.

``BaseCNNClassifier.summary()`` returns a :class:`ModelSummary`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ModelSummary"]


class ModelSummary(str):
    """A Keras-like layer table: a string that prints as itself, with parameter counts."""

    total_params: int
    trainable_params: int

    def __repr__(self) -> str:
        return str(self)

    @classmethod
    def of(cls, module: nn.Module, input_shape: tuple[int, int, int], title: str):
        rows = []

        def hook(layer, _inputs, output):
            shape = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else "-"
            params = sum(p.numel() for p in layer.parameters(recurse=False))
            rows.append((names[layer], type(layer).__name__, str(shape), params))

        names = {m: n for n, m in module.named_modules()}
        leaves = [m for m in module.modules() if not list(m.children())]
        handles = [m.register_forward_hook(hook) for m in leaves]
        height, width, channels = input_shape
        parameter = next(module.parameters())
        was_training = module.training
        try:
            module.eval()
            with torch.no_grad():
                module(torch.zeros(1, channels, height, width, device=parameter.device))
        finally:
            module.train(was_training)
            for handle in handles:
                handle.remove()
        total = sum(p.numel() for p in module.parameters())
        trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
        width_name = max([len(f"{n} ({t})") for n, t, _, _ in rows] + [12])
        width_shape = max([len(s) for _, _, s, _ in rows] + [12])
        header = f"{'Layer (type)':<{width_name}}  {'Output shape':<{width_shape}}  {'Param #':>10}"
        lines = [f"{title}: input (height, width, channels) = {input_shape}", header,
                 "-" * len(header)]
        lines += [f"{f'{n} ({t})':<{width_name}}  {s:<{width_shape}}  {p:>10,}"
                  for n, t, s, p in rows]
        lines += ["-" * len(header), f"Total params: {total:,}",
                  f"Trainable params: {trainable:,}", f"Frozen params: {total - trainable:,}"]
        summary = cls("\n".join(lines))
        summary.total_params, summary.trainable_params = total, trainable
        return summary
