"""ONNX converters of the image transformers (PixelScaler, ChannelStandardizer,
ImageReshaper, ImageResizer, GrayscaleToRGB), and ImageLoader's refusal: files cannot be
decoded in a graph.
"""

from __future__ import annotations

import torch
from torch import nn

from ._onnx_graph import constant, export_module, inline, input_info, to_float

__all__ = ["channel_standardizer", "grayscale", "grayscale_shape", "pixel_scaler",
           "refuse_loader", "reshaper", "reshaper_shape", "resizer", "resizer_shape",
           "unreachable"]


def pixel_scaler(scope, operator, container):
    divisor = constant(scope, container, "data_max", operator.raw_operator.data_max_, [])
    container.add_node("Div", [to_float(scope, operator, container), divisor],
                       [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Div"))


def channel_standardizer(scope, operator, container):
    scaler = operator.raw_operator
    rank = len(operator.inputs[0].type.shape)
    shape = [1] * rank
    if rank == 4:
        shape[1 if scaler.data_format == "channels_first" else 3] = scaler.n_channels_
    mean = constant(scope, container, "mean", scaler.mean_, shape)
    std = constant(scope, container, "std", scaler.std_, shape)
    centred = scope.get_unique_variable_name("centred")
    container.add_node("Sub", [to_float(scope, operator, container), mean], [centred],
                       name=scope.get_unique_operator_name("Sub"))
    container.add_node("Div", [centred, std], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Div"))


def reshaper_shape(operator):
    reshaper = operator.raw_operator
    height, width, channels = reshaper.image_shape_
    tail = [height, width] if channels == 1 else [height, width, channels]
    operator.outputs[0].type = operator.inputs[0].type.__class__(
        [operator.inputs[0].get_first_dimension(), *tail])


def reshaper(scope, operator, container):
    from onnx import TensorProto

    reshaper = operator.raw_operator
    height, width, channels = reshaper.image_shape_
    tail = [height, width] if channels == 1 else [height, width, channels]
    shape = scope.get_unique_variable_name("shape")
    container.add_initializer(shape, TensorProto.INT64, [len(tail) + 1], [-1, *tail])
    container.add_node("Reshape", [operator.inputs[0].full_name, shape],
                       [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Reshape"))


class _Resize(nn.Module):
    def __init__(self, size, uint8: bool, layout: str):
        super().__init__()
        self.size, self.uint8, self.layout = list(size), uint8, layout

    def forward(self, x):
        x = x.float()
        if self.layout == "hw":
            x = x.unsqueeze(-1)
        if self.layout != "chw":
            x = x.permute(0, 3, 1, 2)
        x = nn.functional.interpolate(x, size=self.size, mode="bilinear", antialias=True,
                                      align_corners=False)
        if self.uint8:
            x = x.round().clamp(0, 255).to(torch.uint8)
        if self.layout != "chw":
            x = x.permute(0, 2, 3, 1)
        return x[..., 0] if self.layout == "hw" else x


def resizer_shape(operator):
    from skl2onnx.common.data_types import FloatTensorType, UInt8TensorType

    resizer = operator.raw_operator
    height, width = resizer.output_size_
    shape = list(operator.inputs[0].type.shape)
    if len(shape) == 3:
        out = [shape[0], height, width]
    elif resizer.data_format == "channels_first":
        out = [shape[0], shape[1], height, width]
    else:
        out = [shape[0], height, width, shape[3]]
    uint8, _ = input_info(operator.inputs[0])
    operator.outputs[0].type = (UInt8TensorType if uint8 else FloatTensorType)(out)


def resizer(scope, operator, container):
    resizer = operator.raw_operator
    if resizer.interpolation != "bilinear" or not resizer.antialias:
        raise ValueError("to_onnx exports ImageResizer with interpolation='bilinear' and "
                         "antialias=True (the defaults) only.")
    uint8, shape = input_info(operator.inputs[0])
    if len(shape) < 2:
        raise ValueError("to_onnx exports ImageResizer on images, not flat rows: put an "
                         "ImageReshaper before it.")
    layout = "hw" if len(shape) == 2 else (
        "chw" if resizer.data_format == "channels_first" else "hwc")
    module = _Resize(resizer.output_size_, uint8, layout)
    sample = torch.zeros(2, *shape, dtype=torch.uint8 if uint8 else torch.float32)
    proto = export_module(module, sample, min(int(container.target_opset), 21))
    inline(scope, container, proto, operator.inputs[0].full_name,
            operator.outputs[0].full_name)


def grayscale_shape(operator):
    shape = list(operator.inputs[0].type.shape)
    channels_first = operator.raw_operator.data_format == "channels_first"
    if len(shape) == 3:
        out = [shape[0], 3, *shape[1:]] if channels_first else [*shape, 3]
    elif channels_first:
        out = [shape[0], 3, *shape[2:]]
    else:
        out = [*shape[:3], 3]
    operator.outputs[0].type = operator.inputs[0].type.__class__(out)


def grayscale(scope, operator, container):
    from onnx import TensorProto

    channels_first = operator.raw_operator.data_format == "channels_first"
    shape = list(operator.inputs[0].type.shape)
    axis = 1 if channels_first else 3
    source = operator.inputs[0].full_name
    if len(shape) == 3:
        axes = scope.get_unique_variable_name("axes")
        container.add_initializer(axes, TensorProto.INT64, [1], [axis])
        expanded = scope.get_unique_variable_name("with_channel")
        container.add_node("Unsqueeze", [source, axes], [expanded],
                           name=scope.get_unique_operator_name("Unsqueeze"))
        source, channels = expanded, 1
    else:
        channels = shape[axis]
    if channels == 3:
        container.add_node("Identity", [source], [operator.outputs[0].full_name],
                           name=scope.get_unique_operator_name("Identity"))
        return
    if channels != 1:
        raise ValueError(f"GrayscaleToRGB takes 1 or 3 channels, the graph's input has "
                         f"{channels}.")
    repeats = scope.get_unique_variable_name("repeats")
    counts = [1, 1, 1, 1]
    counts[axis] = 3
    container.add_initializer(repeats, TensorProto.INT64, [4], counts)
    container.add_node("Tile", [source, repeats], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Tile"))


def refuse_loader(operator=None):
    """ImageLoader's shape calculator: it cannot be exported (so its converter, which
    skl2onnx requires, is never reached)."""
    raise ValueError(
        "ImageLoader decodes files, which an ONNX graph cannot: export the Pipeline without "
        "it, e.g. to_onnx(pipeline[1:], images), and decode images before the graph.")


def unreachable(scope, operator, container):
    raise AssertionError("a shape calculator that refuses runs before this converter")
