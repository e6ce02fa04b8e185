"""sklearn-cnn: convolutional networks as scikit-learn estimators.

PyTorch does the math, skorch runs the training loop, torchvision supplies backbones and
image operations; the estimators drop into Pipelines, GridSearchCV, cross-validation and
joblib persistence like any other scikit-learn model.
"""

__version__ = "0.3.0"

# Imported on first use (PEP 562): `import sklearn_cnn` and `sklearn-cnn --help` stay fast,
# and torch, scikit-learn, skorch and torchvision load only where they are needed.
_LAZY = {
    "CNNClassifier": ".classifier",
    "CNNRegressor": ".classifier",
    "TransferClassifier": ".transfer",
    "TransferRegressor": ".transfer",
    "TimeSeriesClassifier": ".timeseries",
    "TimeSeriesRegressor": ".timeseries",
    "resolve_device": ".devices",
    "save": ".persistence",
    "load": ".persistence",
    "to_onnx": ".export",
}

__all__ = ["CNNClassifier", "CNNRegressor", "TimeSeriesClassifier", "TimeSeriesRegressor",
           "TransferClassifier", "TransferRegressor", "load", "resolve_device", "save", "to_onnx",
           "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
