"""The pieces every ONNX converter of ours builds with: torch's exporter for a module with a
free batch axis, its nodes placed into skl2onnx's graph with unique names, and small graph
helpers (float outputs, casts, constants). Used by the estimator and transformer converters
(``_onnx_estimators.py``, ``_onnx_transformers.py``) that ``export.py`` registers.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["MIN_OPSET", "constant", "export_module", "float_like_input_shape", "float_output",
           "inline", "input_info", "require_onnx", "to_float"]


# Antialiased Resize needs opset 18.
MIN_OPSET = 18


def require_onnx():
    try:
        import onnx  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export needs onnx and skl2onnx (and onnxruntime to run the "
                          "graph): pip install 'sklearn-cnn[onnx]'") from None


def export_module(module: nn.Module, sample: torch.Tensor, opset: int, *,
                  time_axis: int | None = None, min_time: int = 2):
    """The ONNX graph of ``module`` with a dynamic batch axis, and a dynamic ``time_axis``
    (series of any length from ``min_time``) where given (torch's dynamo exporter)."""
    axes = {0: torch.export.Dim("batch")}
    if time_axis is not None:
        axes[time_axis] = torch.export.Dim("time", min=max(2, min_time))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), (sample,), dynamo=True, verbose=False,
                                    dynamic_shapes=(axes,), opset_version=opset)
    return program.model_proto


def inline(scope, container, model_proto, input_name: str, output_name: str) -> None:
    """Place an exported graph's initializers and nodes into skl2onnx's container, every
    name made unique in its scope."""
    from onnx import helper, numpy_helper

    graph = model_proto.graph
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise RuntimeError("expected a graph with one input and one output")
    names = {graph.input[0].name: input_name, graph.output[0].name: output_name}

    def rename(name: str) -> str:
        if not name:
            return name
        if name not in names:
            names[name] = scope.get_unique_variable_name(f"cnn_{name}")
        return names[name]

    for tensor in graph.initializer:
        array = numpy_helper.to_array(tensor)
        container.add_initializer(rename(tensor.name), tensor.data_type, list(array.shape),
                                  numpy_helper.from_array(array))
    empty = None
    for node in graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise RuntimeError(f"the exported network uses the operator domain {node.domain!r}")
        inputs = [rename(i) for i in node.input]
        if "" in inputs[:-1] or (inputs and inputs[-1] == "" and node.op_type == "Resize"):
            # An omitted optional input between given ones (Resize's roi and scales when
            # sizes are given): skl2onnx's topological sort cannot place a name that no
            # node produces, so it becomes an empty tensor, which ONNX reads the same.
            if node.op_type != "Resize":
                raise RuntimeError(f"an omitted optional input of {node.op_type}")
            if empty is None:
                empty = scope.get_unique_variable_name("empty")
                container.add_initializer(empty, 1, [0], [])  # FLOAT
            inputs = [name or empty for name in inputs]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, inputs,
                           [rename(o) for o in node.output],
                           name=scope.get_unique_operator_name(f"cnn_{node.op_type}"),
                           op_version=container.target_opset, **attrs)


def input_info(variable):
    """(numpy dtype, shape without the batch axis) of an operator input."""
    from skl2onnx.common.data_types import UInt8TensorType

    uint8 = isinstance(variable.type, UInt8TensorType)
    shape = list(variable.type.shape)[1:]
    return uint8, shape


def float_output(operator, shape) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType(shape)


def float_like_input_shape(operator):
    float_output(operator, list(operator.inputs[0].type.shape))


def to_float(scope, operator, container) -> str:
    from onnx import TensorProto

    name = scope.get_unique_variable_name("as_float")
    container.add_node("Cast", [operator.inputs[0].full_name], [name], to=TensorProto.FLOAT,
                       name=scope.get_unique_operator_name("Cast"))
    return name


def constant(scope, container, name: str, values, shape=None) -> str:
    from onnx import TensorProto

    values = np.asarray(values, dtype=np.float32)
    variable = scope.get_unique_variable_name(name)
    container.add_initializer(variable, TensorProto.FLOAT,
                              list(values.shape if shape is None else shape),
                              values.ravel().tolist())
    return variable
