"""Save and load fitted models in a file that runs no code: safetensors weights, JSON for
everything else.

A model file is one `safetensors <https://huggingface.co/docs/safetensors>`_ file: the
network weights (and, on request, the optimizer state) are its tensors, and a JSON document
in its metadata holds the rest: each estimator's parameters and fitted attributes (classes
with their dtype, input shape, learned statistics), the training history, the library
versions, and a SHA-256 checksum over the document and every tensor. Loading parses JSON
and tensors only: nothing is unpickled, no module named by the file is imported, and
classes come from a fixed list of sklearn-cnn's own. A damaged file is an error that says so.

joblib (pickle) remains the scikit-learn habit for trusted files and the same library
versions; this format is for sharing and serving.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

__all__ = ["save", "load"]

FORMAT = "sklearn-cnn"
# 2 (sklearn-cnn 0.3): CNNClassifier's pooling=None means no pooling; files of version 1
# meant stride-2 convolutions by it, and are read so (see _migrate).
FORMAT_VERSION = 2
_DOC_KEY = "sklearn_cnn"
_SUM_KEY = "sklearn_cnn_sha256"


# ------------------------------------------------------------------------ the classes
def _classes() -> dict:
    """Every class a file may name: sklearn-cnn's own, and scikit-learn's Pipeline."""
    from sklearn.pipeline import Pipeline

    from . import preprocessing
    from .classifier import CNNClassifier, CNNRegressor
    from .feature_extraction import PretrainedFeatures
    from .timeseries import TimeSeriesClassifier, TimeSeriesRegressor
    from .transfer import TransferClassifier, TransferRegressor

    classes = [CNNClassifier, CNNRegressor, TransferClassifier, TransferRegressor,
               TimeSeriesClassifier, TimeSeriesRegressor, PretrainedFeatures, Pipeline,
               *(getattr(preprocessing, name) for name in preprocessing.__all__)]
    return {cls.__name__: cls for cls in classes}


# ------------------------------------------------------------- plain values <-> JSON
def _encode(value, where: str):
    """A parameter or fitted value as JSON, with tags for what JSON lacks (tuples, arrays,
    devices, paths, torchvision weights). Anything else cannot be held without code."""
    from ._weights import is_weights_enum

    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, np.str_):
        return str(value)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        return {"__dict__": [[_encode(k, where), _encode(v, where)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biufUO" or (value.dtype.kind == "O" and not all(
                isinstance(v, (str, int, float)) for v in value.ravel())):
            raise ValueError(f"{where} is an array of dtype {value.dtype}, which the safe "
                             "format cannot hold; use numbers or strings.")
        return {"__ndarray__": {"dtype": value.dtype.str if value.dtype.kind != "O" else "O",
                                "shape": list(value.shape), "data": value.ravel().tolist()}}
    if isinstance(value, torch.device):
        return {"__device__": str(value)}
    if is_weights_enum(value):
        return {"__weights__": f"{type(value).__name__}.{value.name}"}
    if isinstance(value, os.PathLike):
        return {"__path__": os.fspath(value)}
    raise ValueError(
        f"{where} is {value!r}, which sklearn_cnn.save cannot write: the safe format holds "
        "numbers, strings, lists, arrays and names, never code (a callable, a class, a "
        "callback or a random generator). Set it to a plain value (e.g. a preset name or an "
        "int random_state) before saving, or use joblib for trusted files.")


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise _Corrupt(f"an unknown value {value!r}")
    (tag, body), = value.items()
    if tag == "__tuple__":
        return tuple(_decode(v) for v in body)
    if tag == "__dict__":
        return {_decode(k): _decode(v) for k, v in body}
    if tag == "__ndarray__":
        dtype = np.dtype(object) if body["dtype"] == "O" else np.dtype(body["dtype"])
        if dtype.kind not in "biufUO":
            raise _Corrupt(f"an array of dtype {dtype}")
        return np.array(body["data"], dtype=dtype).reshape(body["shape"])
    if tag == "__device__":
        return torch.device(body)
    if tag == "__path__":
        return Path(body)
    if tag == "__weights__":
        import torchvision

        return torchvision.models.get_weight(body)  # torchvision's registry, not an import
    raise _Corrupt(f"an unknown value tag {tag!r}")


class _Corrupt(ValueError):
    pass


def _is_pickle_or_joblib(head: bytes) -> bool:
    """Whether a file's first bytes are a pickle's (protocol 2+, or 0/1's opcodes) or one of
    joblib's compressed files' (zlib, gzip, bz2, lzma, xz)."""
    return (head[:1] == b"\x80" or head[:2] in (b"(l", b"(d", b"]q", b"}q", b"(c")
            or (head[:1] == b"x" and len(head) > 1 and (0x78 * 256 + head[1]) % 31 == 0)
            or head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:3] == b"]\x00\x00"
            or head[:6] == b"\xfd7zXZ\x00")


# --------------------------------------------------------------------------- writing
def _params(estimator, where: str, skip=()) -> dict:
    return {name: _encode(value, f"{where}{name}")
            for name, value in estimator.get_params(deep=False).items() if name not in skip}


def _fitted(estimator, where: str, skip=()) -> dict:
    return {name: _encode(value, f"{where}{name}") for name, value in vars(estimator).items()
            if name.endswith("_") and not name.startswith("__") and name not in skip}


def _node(model, prefix: str, tensors: dict, optimizer: bool) -> dict:
    from sklearn.pipeline import Pipeline
    from sklearn.utils.validation import check_is_fitted

    from ._base import BaseCNNEstimator, network_config
    from .feature_extraction import PretrainedFeatures

    if model is None or (isinstance(model, str) and model == "passthrough"):
        return {"class": "passthrough"}  # a Pipeline step that does nothing: no code
    name = type(model).__name__
    known = _classes()
    if known.get(name) is not type(model):
        supported = ", ".join(sorted(known))
        raise ValueError(
            f"sklearn_cnn.save cannot hold a {type(model).__module__}.{name}: the safe format "
            f"knows only {supported}, so that loading never needs to run code. Save this "
            "model with joblib (for trusted files), or export it with sklearn_cnn.to_onnx.")
    where = f"{prefix or 'the model'}: {name}."
    if isinstance(model, Pipeline):
        # Without its cache folder: a path of the machine it was fitted on.
        return {"class": name, "params": _params(model, where, skip={"steps", "memory"}),
                "steps": [[step, _node(est, f"{prefix}steps.{i}.", tensors, optimizer)]
                          for i, (step, est) in enumerate(model.steps)]}
    tags = model.__sklearn_tags__()
    if tags.requires_fit:
        check_is_fitted(model)
    node = {"class": name, "params": _params(model, where)}
    if isinstance(model, BaseCNNEstimator):
        node["fitted"] = _fitted(model, where, skip={"net_"})
        node["module_config"] = _encode(network_config(model), where)
        node["history"] = json.loads(json.dumps(list(model.history_), default=_number))
        for key, value in model.module_.state_dict().items():
            tensors[f"{prefix}module.{key}"] = value
        if optimizer:
            node["optimizer"] = _optimizer_state(model.net_.optimizer_, prefix, tensors)
    elif isinstance(model, PretrainedFeatures):
        node["fitted"] = _fitted(model, where, skip={"model_", "device_"})
        for key, value in model.model_.state_dict().items():
            tensors[f"{prefix}model.{key}"] = value
    else:
        node["fitted"] = _fitted(model, where)
    return node


def _number(value):
    if isinstance(value, (np.generic, torch.Tensor)):
        return value.item()
    raise TypeError(f"{value!r} in the training history is not a number")


def _optimizer_state(optimizer, prefix: str, tensors: dict) -> dict:
    state = optimizer.state_dict()
    plain = {}
    for index, values in state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}optimizer.{index}.{key}"] = value
            else:
                plain[f"{index}.{key}"] = _encode(value, "the optimizer state")
    return {"class": type(optimizer).__name__, "plain": plain,
            "group_sizes": [len(g["params"]) for g in state["param_groups"]]}


def _checksum(document: str, tensors: dict) -> str:
    digest = hashlib.sha256(document.encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def _versions() -> dict:
    import sklearn
    import skorch
    import torchvision

    from . import __version__

    versions = {"sklearn_cnn": __version__, "torch": torch.__version__,
                "torchvision": torchvision.__version__, "scikit-learn": sklearn.__version__,
                "skorch": skorch.__version__, "numpy": np.__version__}
    timm = sys.modules.get("timm")
    if timm is not None:  # the file may name a timm backbone: say which timm built it
        versions["timm"] = timm.__version__
    return versions


def save(model, path, *, optimizer: bool = False) -> Path:
    """Save a fitted model to a file that loads without running code.

    Parameters
    ----------
    model : estimator, transformer or Pipeline
        The fitted model: one of sklearn-cnn's estimators (CNNClassifier, CNNRegressor,
        TransferClassifier, TransferRegressor), its transformers (sklearn_cnn.preprocessing,
        ImageLoader, PretrainedFeatures), or a Pipeline made of them. Any other step is
        refused with an error (use joblib for it).
    path : str or os.PathLike
        Where to write. The file is written next to it first and moved into place, so a
        failure never leaves a half-written file where an earlier one was.
    optimizer : bool, default=False
        Keep the optimizer's state (Adam's moments), so that ``warm_start`` after
        :func:`load` continues exactly; prediction needs none of it.

    Returns
    -------
    pathlib.Path
        The path written.

    See Also
    --------
    load : read the file back.
    sklearn_cnn.to_onnx : the model as an ONNX graph, for other runtimes.

    Examples
    --------
    >>> import os, tempfile
    >>> import sklearn_cnn
    >>> from sklearn_cnn import CNNClassifier
    >>> from sklearn_cnn.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> clf = CNNClassifier(filters=(8, 16), max_epochs=5, lr=0.01, device="cpu",
    ...                     random_state=0).fit(X[:200], y[:200])
    >>> path = sklearn_cnn.save(clf, os.path.join(tempfile.mkdtemp(), "digits.safetensors"))
    >>> again = sklearn_cnn.load(path)
    >>> bool((again.predict_proba(X[:50]) == clf.predict_proba(X[:50])).all())
    True
    """
    from safetensors.torch import save_file

    tensors: dict = {}
    node = _node(model, "", tensors, optimizer)
    document = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION,
                           "versions": _versions(), "model": node}, sort_keys=True)
    tensors = {name: t.detach().cpu().contiguous() for name, t in tensors.items()}
    metadata = {_DOC_KEY: document, _SUM_KEY: _checksum(document, tensors)}
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"Cannot save to {path}: it is a folder; give a file name in it, e.g. "
                         f"{path / 'model.safetensors'}.")
    if not path.parent.is_dir():
        raise ValueError(f"Cannot save to {path}: the folder {path.parent} does not exist.")
    _remove_stale_partials(path)
    mode = _file_mode(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                                         suffix=".partial")
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.chmod(temporary, mode)  # mkstemp makes it 0600
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


# A partial file this old was left by a save that was killed (a running save writes for
# seconds, not hours); the next save to the same path removes it.
_STALE_PARTIAL_S = 3600


def _remove_stale_partials(path: Path) -> None:
    for partial in path.parent.glob(f".{glob.escape(path.name)}.*.partial"):
        try:
            if time.time() - partial.stat().st_mtime > _STALE_PARTIAL_S:
                partial.unlink()
        except OSError:
            pass  # another process's, or gone already: not ours to fix


def _file_mode(path: Path) -> int:
    """The permissions a saved file gets: those of the file it replaces, or for a new file
    what the process's umask allows (as open() would give)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


# --------------------------------------------------------------------------- reading
def load(path, *, device=None):
    """Load a model written by :func:`save`: JSON and tensors only, nothing unpickled.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save`.
    device : str, torch.device or None, default=None
        Where the networks run; None keeps each estimator's ``device`` parameter where
        that device exists here, and uses the CPU otherwise (a model trained on a GPU
        loads on a machine without one). The loaded estimators' ``device`` parameter names
        the device they run on, so a warm-start fit trains there too.

    Returns
    -------
    estimator
        The fitted model, predicting exactly as the saved one did on the same device.

    Raises
    ------
    ValueError
        If the file is not a sklearn-cnn model file, is truncated or corrupted, names a
        class that is not sklearn-cnn's, or was written by a newer format version.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> import sklearn_cnn
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn_cnn import CNNRegressor
    >>> from sklearn_cnn.preprocessing import PixelScaler
    >>> X = np.random.default_rng(0).integers(0, 256, (16, 8, 8), dtype=np.uint8)
    >>> model = make_pipeline(PixelScaler(), CNNRegressor(max_epochs=1, verbose=0))
    >>> model.fit(X, X.mean(axis=(1, 2)))  # doctest: +ELLIPSIS
    Pipeline(...)
    >>> path = os.path.join(tempfile.mkdtemp(), "brightness.safetensors")
    >>> again = sklearn_cnn.load(sklearn_cnn.save(model, path), device="cpu")
    >>> bool((again.predict(X) == model.predict(X)).all())
    True
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file; pass the file written by "
                         "sklearn_cnn.save.")
    if not path.is_file():
        raise ValueError(f"No model file at {path}.")
    with open(path, "rb") as file:
        head = file.read(16)
    # A safetensors file starts with the length of its JSON header, then "{"; pickles start
    # with their protocol byte, joblib's compressed files with a zlib or gzip header.
    is_safetensors = head[8:9] == b"{"
    if not is_safetensors and _is_pickle_or_joblib(head):
        raise ValueError(
            f"{path} is a pickle (joblib) file, not a sklearn-cnn model file. sklearn_cnn.load "
            "never unpickles: loading a pickle runs whatever code it holds. If you trust its "
            "source, use joblib.load(path).")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as file:
            metadata = file.metadata() or {}
            tensors = {name: file.get_tensor(name) for name in file.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path} is not a readable sklearn-cnn model file: it is truncated, "
                         f"corrupted or of another format ({exc}).") from None
    if _DOC_KEY not in metadata:
        raise ValueError(f"{path} is a safetensors file, but not one written by "
                         "sklearn_cnn.save (it holds no model description): plain weights "
                         "load with TransferClassifier(weights=path).")
    document = metadata[_DOC_KEY]
    if _checksum(document, tensors) != metadata.get(_SUM_KEY):
        raise ValueError(f"{path} is corrupted: its checksum does not match its contents (a "
                         "changed byte in the weights or the description). Save the model "
                         "again, or copy the file again.")
    try:
        doc = json.loads(document)
        if doc.get("format") != FORMAT:
            raise _Corrupt("no sklearn-cnn format marker")
        if doc.get("format_version", 0) > FORMAT_VERSION:
            raise ValueError(
                f"{path} was written by a newer sklearn-cnn (format version "
                f"{doc['format_version']}, versions {doc.get('versions')}); this one reads "
                f"version {FORMAT_VERSION}. Upgrade sklearn-cnn to load it.")
        return _build(_migrate(doc["model"], doc.get("format_version", 0)), "", tensors,
                      device)
    except (_Corrupt, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} has a model description that sklearn-cnn does not know "
                         f"({exc}); it was not written by sklearn_cnn.save, or was "
                         "altered.") from exc


def _migrate(node: dict, format_version: int) -> dict:
    """A model description of an older format in this version's terms: the same network."""
    if format_version < 2:
        if node.get("class") in ("CNNClassifier", "CNNRegressor") and (
                "pooling" in node.get("params", {}) and node["params"]["pooling"] is None):
            node["params"]["pooling"] = "stride"
        for step in node.get("steps", []):
            _migrate(step[1], format_version)
    return node


def _build(node: dict, prefix: str, tensors: dict, device):
    from . import feature_extraction
    from ._base import BaseCNNEstimator, restore
    from .devices import resolve_device

    name = node["class"]
    if name == "passthrough":
        return "passthrough"
    cls = _classes().get(name)
    if cls is None:
        raise _Corrupt(f"the class {name!r} is not one of sklearn-cnn's")
    params = {key: _decode(value) for key, value in node["params"].items()}
    if name == "Pipeline":
        steps = [(step, _build(child, f"{prefix}steps.{i}.", tensors, device))
                 for i, (step, child) in enumerate(node["steps"])]
        return cls(steps, **params)
    model = cls(**params)
    model._validate_params()
    fitted = {key: _decode(value) for key, value in node["fitted"].items()}
    fitted.pop("device_", None)  # files of 0.1.0 hold it; it is the net's device now
    if isinstance(model, BaseCNNEstimator):
        return _restore(restore, model, fitted=fitted, config=_decode(
            node.get("module_config", {})), state_dict=_state(f"{prefix}module.", tensors),
            history=node.get("history", []), optimizer_state=_optimizer(node, prefix, tensors),
            device=_device(model, device, resolve_device))
    for key, value in fitted.items():
        setattr(model, key, value)
    if isinstance(model, feature_extraction.PretrainedFeatures):
        if "input_size_" not in fitted:  # files of 0.1.0
            model.input_size_ = int(node["module_config"]["input_size"])
        _restore(feature_extraction.restore, model, state_dict=_state(f"{prefix}model.",
                                                                      tensors),
                 device=_device(model, device, resolve_device))
    return model


def _restore(restore, model, **kwargs):
    try:
        return restore(model, **kwargs)
    except ValueError as exc:  # weights that do not fit the network described
        raise _Corrupt(str(exc)) from None


def _device(model, override, resolve_device) -> torch.device:
    """Where a loaded network runs: ``override``, else the saved ``device`` where it exists
    here, else the CPU. The estimator's ``device`` parameter then names it, so that a
    warm-start fit trains where the model now is."""
    if override is not None:
        device = resolve_device(override)
        model.set_params(device=str(device) if isinstance(override, torch.device) else override)
        return device
    try:
        return resolve_device(model.device)
    except ValueError:  # saved on a GPU this machine does not have
        model.set_params(device="cpu")
        return torch.device("cpu")


def _state(prefix: str, tensors: dict) -> dict:
    return {key[len(prefix):]: value for key, value in tensors.items()
            if key.startswith(prefix)}


def _optimizer(node: dict, prefix: str, tensors: dict) -> dict | None:
    """The saved optimizer state as ``torch.optim.Optimizer.state_dict`` has it, or None."""
    saved = node.get("optimizer")
    if saved is None:
        return None
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith(f"{prefix}optimizer."):
            index, name = key[len(prefix) + len("optimizer."):].split(".", 1)
            state.setdefault(int(index), {})[name] = value
    for key, value in saved["plain"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = _decode(value)
    groups, offset = [], 0
    for size in saved["group_sizes"]:
        groups.append({"params": list(range(offset, offset + size))})
        offset += size
    return {"class": saved["class"], "state": state, "param_groups": groups}
