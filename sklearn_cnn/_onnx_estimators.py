"""ONNX converters of the estimators: the fitted network, with what ``predict`` does
around it (the input layout, pixel scaling, the head that turns outputs into probabilities
or target values, test-time mirroring), exported by torch and placed in skl2onnx's graph;
classifiers' labels, label sets' indicators, regressors' values, PretrainedFeatures'
features.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from ._onnx_graph import MIN_OPSET, constant, export_module, float_output, inline, input_info
from ._series import takes_series

__all__ = ["classifier_converter", "classifier_shape", "features", "features_shape", "head",
           "is_multilabel", "network_nodes", "regressor_converter", "regressor_shape"]


# ------------------------------------------------------------------ torch → ONNX nodes
class _Affine(nn.Module):
    """A regressor's outputs back on the targets' scale."""

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.mean


def head(estimator) -> nn.Module:
    """What turns the network's outputs into what ``predict_proba`` (classifiers) or
    ``predict`` (regressors) returns."""
    target_type = getattr(estimator, "target_type_", None)
    if target_type == "multilabel-indicator":
        return nn.Sigmoid()
    if target_type is not None or hasattr(estimator, "classes_"):
        return nn.Softmax(dim=1)
    if hasattr(estimator, "target_mean_"):
        return _Affine(estimator.target_mean_, estimator.target_scale_)
    return nn.Identity()


class _ChannelsLastInput(nn.Module):
    """What ``predict`` does: the same images in, the network's float32 input made from
    them, and what the graph returns (probabilities, values or features), averaged with
    the mirrored images' when the estimator predicts with ``tta``."""

    def __init__(self, network: nn.Module, *, uint8: bool, layout: tuple, head: nn.Module,
                 tta: bool = False):
        super().__init__()
        self.network = network
        self.uint8 = uint8
        self.layout = layout  # ("flat", (h, w, c)) | ("hw", None) | ("hwc", None) | ("chw", None)
        self.head = head
        self.tta = tta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.uint8:
            x = x / 255.0
        kind, shape = self.layout
        if kind == "flat":
            x = x.reshape(x.shape[0], *shape)
        if kind == "hw":
            x = x.unsqueeze(-1)
        if kind != "chw":
            x = x.permute(0, 3, 1, 2)
        out = self.head(self.network(x))
        if self.tta:
            out = (out + self.head(self.network(x.flip(-1)))) / 2
        return out


def layout(estimator, shape: list) -> tuple:
    input_shape = getattr(estimator, "input_shape_", None)
    if len(shape) == 1:
        return ("flat", tuple(input_shape))
    if len(shape) == 2:
        return ("hw", None)
    return ("chw", None) if estimator.data_format == "channels_first" else ("hwc", None)


class _SeriesInput(nn.Module):
    """What a time-series estimator's ``predict`` does: series (N, C, T), or univariate
    (N, T), NaN-padded at the end where shorter, in; what the graph returns out."""

    def __init__(self, network: nn.Module, *, univariate: bool, head: nn.Module):
        super().__init__()
        self.network = network
        self.univariate = univariate
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        if self.univariate:
            x = x.unsqueeze(1)
        return self.head(self.network(x))


def _series_nodes(scope, container, network: nn.Module, estimator, *, head: nn.Module,
                  input_name: str, shape: list, output_name: str, opset: int) -> None:
    """A time-series estimator's network in the graph: the time axis free, series shorter
    than the longest of a batch NaN-padded at the end, as ``predict`` pads them."""
    network = copy.deepcopy(network).float().cpu().eval()
    module = _SeriesInput(network, univariate=len(shape) == 1, head=head)
    channels, length = estimator.input_shape_
    sample = torch.zeros(2, length) if len(shape) == 1 else torch.zeros(2, channels, length)
    proto = export_module(module, sample, opset, time_axis=sample.dim() - 1,
                          min_time=network.min_length)
    inline(scope, container, proto, input_name, output_name)


def network_nodes(scope, operator, container, network: nn.Module, estimator, *,
                   head: nn.Module, output_name: str) -> None:
    uint8, shape = input_info(operator.inputs[0])
    if takes_series(estimator):
        _series_nodes(scope, container, network, estimator, head=head, shape=shape,
                      input_name=operator.inputs[0].full_name, output_name=output_name,
                      opset=min(int(container.target_opset), 21))
        return
    if None in shape or any(isinstance(s, str) for s in shape):
        raise ValueError(f"{type(estimator).__name__} needs images of a fixed size in the "
                         f"graph; got input shape {shape}.")
    opset = min(int(container.target_opset), 21)
    if opset < MIN_OPSET:
        raise ValueError(f"to_onnx needs target_opset >= {MIN_OPSET} (antialiased Resize); "
                         f"got {container.target_opset}.")
    # The graph computes in float32 on the CPU, whatever the estimator trained in and
    # wherever it lives: a copy of its network, so that the fitted model stays as it is
    # (on its GPU, in its precision).
    network = copy.deepcopy(network).float().cpu().eval()
    module = _ChannelsLastInput(network, uint8=uint8, layout=layout(estimator, shape),
                                head=head, tta=bool(getattr(estimator, "tta", False)))
    sample = torch.zeros(2, *shape, dtype=torch.uint8 if uint8 else torch.float32)
    proto = export_module(module, sample, opset)
    inline(scope, container, proto, operator.inputs[0].full_name, output_name)


# ------------------------------------------------------------------- the classifiers
def is_multilabel(estimator) -> bool:
    return getattr(estimator, "target_type_", None) == "multilabel-indicator"


def classifier_shape(operator):
    """skl2onnx's classifier outputs: label (int64 for numeric classes, else string; for
    label sets the (n, n_labels) int64 indicator matrix) and float probabilities. Its own
    calculator would refuse uint8 images as input."""
    from skl2onnx.common.data_types import (
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    n = operator.inputs[0].get_first_dimension()
    estimator = operator.raw_operator
    classes = estimator.classes_
    if is_multilabel(estimator):
        operator.outputs[0].type = Int64TensorType([n, len(classes)])
    else:
        label = Int64TensorType if classes.dtype.kind in "biuf" else StringTensorType
        operator.outputs[0].type = label([n])
    operator.outputs[1].type = FloatTensorType([n, len(classes)])


def classifier_converter(scope, operator, container):
    from onnx import TensorProto

    estimator = operator.raw_operator
    probabilities = operator.outputs[1].full_name
    network_nodes(scope, operator, container, estimator.module_, estimator,
                   head=head(estimator), output_name=probabilities)
    if is_multilabel(estimator):
        half = constant(scope, container, "half", 0.5, [])
        over = scope.get_unique_variable_name("over_half")
        container.add_node("Greater", [probabilities, half], [over],
                           name=scope.get_unique_operator_name("Greater"))
        container.add_node("Cast", [over], [operator.outputs[0].full_name],
                           to=TensorProto.INT64, name=scope.get_unique_operator_name("Cast"))
        return
    classes = estimator.classes_
    index = scope.get_unique_variable_name("class_index")
    container.add_node("ArgMax", [probabilities], [index], axis=1, keepdims=0,
                       name=scope.get_unique_operator_name("ArgMax"))
    labels = scope.get_unique_variable_name("classes")
    if classes.dtype.kind in "biuf":
        container.add_initializer(labels, TensorProto.INT64, [len(classes)],
                                  classes.astype(np.int64).tolist())
    else:
        container.add_initializer(labels, TensorProto.STRING, [len(classes)],
                                  [str(c).encode() for c in classes])
    container.add_node("Gather", [labels, index], [operator.outputs[0].full_name], axis=0,
                       name=scope.get_unique_operator_name("Gather"))


# -------------------------------------------------------------------- the regressors
def regressor_shape(operator):
    """skl2onnx's regressor output: one float ``variable`` of shape (n, n_outputs)."""
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, int(operator.raw_operator.n_outputs_)])


def regressor_converter(scope, operator, container):
    estimator = operator.raw_operator
    network_nodes(scope, operator, container, estimator.module_, estimator,
                   head=head(estimator), output_name=operator.outputs[0].full_name)


def features_shape(operator):
    float_output(operator, [operator.inputs[0].get_first_dimension(),
                             operator.raw_operator.n_features_out_])


def features(scope, operator, container):
    features = operator.raw_operator
    network_nodes(scope, operator, container, features.model_, features, head=nn.Identity(),
                   output_name=operator.outputs[0].full_name)
