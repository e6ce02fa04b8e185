"""ONNX export of the estimators, the transformers and Pipelines of them, preprocessing
included, through skl2onnx's converter registry (the optional ``sklearn-cnn[onnx]`` extra).

Each of our classes has a shape calculator and a converter registered with
``skl2onnx.update_registered_converter``, so ``skl2onnx.to_onnx`` exports Pipelines that mix
our steps with scikit-learn's own. The networks (with their input adaptation: pixel scaling,
learned standardisation, TransferClassifier's grayscale-to-RGB, resize and normalisation)
are exported by torch's own ONNX exporter and their nodes placed in skl2onnx's graph.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["to_onnx", "register_converters"]

# Antialiased Resize needs opset 18.
MIN_OPSET = 18


def _require():
    try:
        import onnx  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        raise ImportError("ONNX export needs onnx and skl2onnx (and onnxruntime to run the "
                          "graph): pip install 'sklearn-cnn[onnx]'") from None


# ------------------------------------------------------------------ torch → ONNX nodes
class _Affine(nn.Module):
    """A regressor's outputs back on the targets' scale."""

    def __init__(self, mean, scale):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean), dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.mean


def _head(estimator) -> nn.Module:
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


def _export_module(module: nn.Module, sample: torch.Tensor, opset: int):
    """The ONNX graph of ``module`` with a dynamic batch axis (torch's dynamo exporter)."""
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module.eval(), (sample,), dynamo=True, verbose=False,
                                    dynamic_shapes=({0: batch},), opset_version=opset)
    return program.model_proto


def _inline(scope, container, model_proto, input_name: str, output_name: str) -> None:
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


def _input_info(variable):
    """(numpy dtype, shape without the batch axis) of an operator input."""
    from skl2onnx.common.data_types import UInt8TensorType

    uint8 = isinstance(variable.type, UInt8TensorType)
    shape = list(variable.type.shape)[1:]
    return uint8, shape


def _layout(estimator, shape: list) -> tuple:
    input_shape = getattr(estimator, "input_shape_", None)
    if len(shape) == 1:
        return ("flat", tuple(input_shape))
    if len(shape) == 2:
        return ("hw", None)
    return ("chw", None) if estimator.data_format == "channels_first" else ("hwc", None)


def _network_nodes(scope, operator, container, network: nn.Module, estimator, *,
                   head: nn.Module, output_name: str) -> None:
    uint8, shape = _input_info(operator.inputs[0])
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
    module = _ChannelsLastInput(network, uint8=uint8, layout=_layout(estimator, shape),
                                head=head, tta=bool(getattr(estimator, "tta", False)))
    sample = torch.zeros(2, *shape, dtype=torch.uint8 if uint8 else torch.float32)
    proto = _export_module(module, sample, opset)
    _inline(scope, container, proto, operator.inputs[0].full_name, output_name)


# ------------------------------------------------------------------- the classifiers
def _is_multilabel(estimator) -> bool:
    return getattr(estimator, "target_type_", None) == "multilabel-indicator"


def _classifier_shape(operator):
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
    if _is_multilabel(estimator):
        operator.outputs[0].type = Int64TensorType([n, len(classes)])
    else:
        label = Int64TensorType if classes.dtype.kind in "biuf" else StringTensorType
        operator.outputs[0].type = label([n])
    operator.outputs[1].type = FloatTensorType([n, len(classes)])


def _classifier_converter(scope, operator, container):
    from onnx import TensorProto

    estimator = operator.raw_operator
    probabilities = operator.outputs[1].full_name
    _network_nodes(scope, operator, container, estimator.module_, estimator,
                   head=_head(estimator), output_name=probabilities)
    if _is_multilabel(estimator):
        half = _constant(scope, container, "half", 0.5, [])
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
def _regressor_shape(operator):
    """skl2onnx's regressor output: one float ``variable`` of shape (n, n_outputs)."""
    from skl2onnx.common.data_types import FloatTensorType

    n = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([n, int(operator.raw_operator.n_outputs_)])


def _regressor_converter(scope, operator, container):
    estimator = operator.raw_operator
    _network_nodes(scope, operator, container, estimator.module_, estimator,
                   head=_head(estimator), output_name=operator.outputs[0].full_name)


# ------------------------------------------------------------------- the transformers
def _float_output(operator, shape) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    operator.outputs[0].type = FloatTensorType(shape)


def _float_like_input_shape(operator):
    _float_output(operator, list(operator.inputs[0].type.shape))


def _to_float(scope, operator, container) -> str:
    from onnx import TensorProto

    name = scope.get_unique_variable_name("as_float")
    container.add_node("Cast", [operator.inputs[0].full_name], [name], to=TensorProto.FLOAT,
                       name=scope.get_unique_operator_name("Cast"))
    return name


def _constant(scope, container, name: str, values, shape=None) -> str:
    from onnx import TensorProto

    values = np.asarray(values, dtype=np.float32)
    variable = scope.get_unique_variable_name(name)
    container.add_initializer(variable, TensorProto.FLOAT,
                              list(values.shape if shape is None else shape),
                              values.ravel().tolist())
    return variable


def _pixel_scaler(scope, operator, container):
    divisor = _constant(scope, container, "data_max", operator.raw_operator.data_max_, [])
    container.add_node("Div", [_to_float(scope, operator, container), divisor],
                       [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Div"))


def _channel_standardizer(scope, operator, container):
    scaler = operator.raw_operator
    rank = len(operator.inputs[0].type.shape)
    shape = [1] * rank
    if rank == 4:
        shape[1 if scaler.data_format == "channels_first" else 3] = scaler.n_channels_
    mean = _constant(scope, container, "mean", scaler.mean_, shape)
    std = _constant(scope, container, "std", scaler.std_, shape)
    centred = scope.get_unique_variable_name("centred")
    container.add_node("Sub", [_to_float(scope, operator, container), mean], [centred],
                       name=scope.get_unique_operator_name("Sub"))
    container.add_node("Div", [centred, std], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name("Div"))


def _reshaper_shape(operator):
    reshaper = operator.raw_operator
    height, width, channels = reshaper.image_shape_
    tail = [height, width] if channels == 1 else [height, width, channels]
    operator.outputs[0].type = operator.inputs[0].type.__class__(
        [operator.inputs[0].get_first_dimension(), *tail])


def _reshaper(scope, operator, container):
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


def _resizer_shape(operator):
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
    uint8, _ = _input_info(operator.inputs[0])
    operator.outputs[0].type = (UInt8TensorType if uint8 else FloatTensorType)(out)


def _resizer(scope, operator, container):
    resizer = operator.raw_operator
    if resizer.interpolation != "bilinear" or not resizer.antialias:
        raise ValueError("to_onnx exports ImageResizer with interpolation='bilinear' and "
                         "antialias=True (the defaults) only.")
    uint8, shape = _input_info(operator.inputs[0])
    if len(shape) < 2:
        raise ValueError("to_onnx exports ImageResizer on images, not flat rows: put an "
                         "ImageReshaper before it.")
    layout = "hw" if len(shape) == 2 else (
        "chw" if resizer.data_format == "channels_first" else "hwc")
    module = _Resize(resizer.output_size_, uint8, layout)
    sample = torch.zeros(2, *shape, dtype=torch.uint8 if uint8 else torch.float32)
    proto = _export_module(module, sample, min(int(container.target_opset), 21))
    _inline(scope, container, proto, operator.inputs[0].full_name,
            operator.outputs[0].full_name)


def _grayscale_shape(operator):
    shape = list(operator.inputs[0].type.shape)
    channels_first = operator.raw_operator.data_format == "channels_first"
    if len(shape) == 3:
        out = [shape[0], 3, *shape[1:]] if channels_first else [*shape, 3]
    elif channels_first:
        out = [shape[0], 3, *shape[2:]]
    else:
        out = [*shape[:3], 3]
    operator.outputs[0].type = operator.inputs[0].type.__class__(out)


def _grayscale(scope, operator, container):
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


def _features_shape(operator):
    _float_output(operator, [operator.inputs[0].get_first_dimension(),
                             operator.raw_operator.n_features_out_])


def _features(scope, operator, container):
    features = operator.raw_operator
    _network_nodes(scope, operator, container, features.model_, features, head=nn.Identity(),
                   output_name=operator.outputs[0].full_name)


def _refuse_loader(operator=None):
    """ImageLoader's shape calculator: it cannot be exported (so its converter, which
    skl2onnx requires, is never reached)."""
    raise ValueError(
        "ImageLoader decodes files, which an ONNX graph cannot: export the Pipeline without "
        "it, e.g. to_onnx(pipeline[1:], images), and decode images before the graph.")


def _unreachable(scope, operator, container):
    raise AssertionError("a shape calculator that refuses runs before this converter")


# ------------------------------------------------------------------------ registration
_REGISTERED = False


def register_converters() -> None:
    """Register sklearn-cnn's shape calculators and converters with skl2onnx (once).

    After this, ``skl2onnx.to_onnx`` exports Pipelines that mix sklearn-cnn's steps with
    scikit-learn's own; :func:`to_onnx` calls it itself.

    Examples
    --------
    >>> import skl2onnx
    >>> from sklearn_cnn.export import register_converters
    >>> register_converters()
    >>> "SklearnCnnCNNClassifier" in skl2onnx.supported_converters()
    True
    """
    global _REGISTERED
    if _REGISTERED:
        return
    _require()
    from skl2onnx import update_registered_converter

    from .classifier import CNNClassifier, CNNRegressor
    from .feature_extraction import PretrainedFeatures
    from .files import ImageLoader
    from .preprocessing import (
        ChannelStandardizer,
        GrayscaleToRGB,
        ImageReshaper,
        ImageResizer,
        PixelScaler,
    )
    from .transfer import TransferClassifier, TransferRegressor

    classifier_options = {"zipmap": [True, False, "columns"], "nocl": [True, False]}
    for cls in (CNNClassifier, TransferClassifier):
        update_registered_converter(cls, f"SklearnCnn{cls.__name__}", _classifier_shape,
                                    _classifier_converter, options=classifier_options)
    for cls in (CNNRegressor, TransferRegressor):
        update_registered_converter(cls, f"SklearnCnn{cls.__name__}", _regressor_shape,
                                    _regressor_converter)
    for cls, shape, converter in [
        (PixelScaler, _float_like_input_shape, _pixel_scaler),
        (ChannelStandardizer, _float_like_input_shape, _channel_standardizer),
        (ImageReshaper, _reshaper_shape, _reshaper),
        (ImageResizer, _resizer_shape, _resizer),
        (GrayscaleToRGB, _grayscale_shape, _grayscale),
        (PretrainedFeatures, _features_shape, _features),
        (ImageLoader, _refuse_loader, _unreachable),
    ]:
        update_registered_converter(cls, f"SklearnCnn{cls.__name__}", shape, converter)
    _REGISTERED = True


def _check_sample(model, X_sample: np.ndarray) -> None:
    """The graph takes images shaped as ``X_sample`` (the batch axis free): refuse a sample
    that the model itself refuses (another size, another channel count, an unfitted model),
    so that the graph never runs on images ``predict`` would not take."""
    from sklearn.utils.validation import check_is_fitted

    from ._validation import last_step

    check_is_fitted(model)  # NotFittedError, before any shape is looked at
    head = X_sample[:1]
    if hasattr(model, "predict"):
        model.predict(head)
    else:
        model.transform(head)
    final = last_step(model)
    if getattr(getattr(final, "net_", None), "autocast_dtype", None) is not None:
        warnings.warn(
            f"{type(final).__name__} predicts with bfloat16 autocast (precision="
            f"{final.precision!r} on {final.device_}); the ONNX graph computes in float32, so "
            "its outputs differ from predict's by bfloat16's rounding (up to about 1e-2 in "
            "probability), not by 1e-5. For 1e-5 agreement, fit with precision='float32'.",
            UserWarning, stacklevel=3)


def _initial_type(X):
    from skl2onnx.common.data_types import FloatTensorType, UInt8TensorType

    X = np.asarray(X)
    if X.ndim < 2:
        raise ValueError(f"X_sample must be a batch of images (or flat rows), got shape "
                         f"{X.shape}.")
    kind = UInt8TensorType if X.dtype == np.uint8 else FloatTensorType
    return [("X", kind([None, *X.shape[1:]]))]


def to_onnx(model, X_sample, *, target_opset: int | None = None, zipmap: bool = False):
    """Export a fitted estimator, transformer or Pipeline of ours as one ONNX graph.

    The graph takes the images ``predict`` takes (uint8, or floats computed as float32;
    channels-last, grayscale without a channel axis, or flat rows, as ``X_sample`` is) with
    a dynamic batch axis, and does all of the preprocessing itself: pixel scaling, learned
    standardisation, TransferClassifier's grayscale-to-RGB, resize and normalisation.
    The outputs follow skl2onnx's conventions: a classifier's are ``label`` (the
    ``classes_`` values: int64 for numbers, strings otherwise; for label sets the (n,
    n_labels) int64 indicator matrix) and ``probabilities`` (float32, one column per class
    or label); a regressor's is ``variable``, float32 of shape (n, n_outputs), on the
    targets' own scale. A model fitted with ``tta=True`` averages with the mirrored images
    in the graph too. Run it with onnxruntime. Needs ``pip install 'sklearn-cnn[onnx]'``.

    Parameters
    ----------
    model : estimator, transformer or Pipeline
        Fitted; Pipelines may mix our steps with scikit-learn's (the converters are
        registered with skl2onnx). ImageLoader cannot be exported (a graph does not read
        files): export ``pipeline[1:]``.
    X_sample : array-like
        A few images as ``predict`` takes them; their dtype (uint8 or float) and shape (after
        the batch axis) define the graph's input, which then takes images of that shape
        only. A sample the model itself refuses (another image size or channel count than
        it was fitted on) is refused here too.
    target_opset : int or None, default=None
        The ONNX opset; at least 18 (antialiased Resize). None: the newest skl2onnx knows.
    zipmap : bool, default=False
        Probabilities as a list of {class: probability} maps (skl2onnx's ZipMap) instead of
        a tensor (single-label classifiers only).

    Returns
    -------
    onnx.ModelProto

    Examples
    --------
    >>> import numpy as np, onnxruntime as ort
    >>> from sklearn_cnn import CNNClassifier, to_onnx
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X = X.astype(np.float32)
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=5, lr=0.01, precision="float32",
    ...                     device="cpu", random_state=0).fit(X[:200], y[:200])
    >>> onx = to_onnx(clf, X[:2])
    >>> session = ort.InferenceSession(onx.SerializeToString())
    >>> label, proba = session.run(None, {"X": X[:5]})
    >>> bool((label == clf.predict(X[:5])).all()), proba.shape
    (True, (5, 10))
    """
    from sklearn.base import is_classifier
    from sklearn.pipeline import Pipeline

    from ._validation import last_step
    from .files import ImageLoader

    register_converters()
    from skl2onnx import to_onnx as skl_to_onnx

    first = model.steps[0][1] if isinstance(model, Pipeline) else model
    if isinstance(first, ImageLoader):
        _refuse_loader()
    X_sample = np.asarray(X_sample)
    if X_sample.dtype != np.uint8:
        X_sample = X_sample.astype(np.float32)
    _check_sample(model, X_sample)
    options = {}
    final = last_step(model)
    if zipmap and (not is_classifier(final) or _is_multilabel(final)):
        raise ValueError("zipmap=True maps each class to its probability, one class per "
                         "image: it applies to single-label classifiers only. Leave "
                         "zipmap=False.")
    if is_classifier(final):
        options[id(final)] = {"zipmap": zipmap}
    return skl_to_onnx(model, initial_types=_initial_type(X_sample),
                       target_opset=target_opset, options=options or None)
