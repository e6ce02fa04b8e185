"""sklearn-cnn: convolutional networks as scikit-learn estimators.

PyTorch does the math, skorch runs the training loop, torchvision supplies backbones and
image operations; the estimators drop into Pipelines, GridSearchCV, cross-validation and
joblib persistence like any other scikit-learn model.
"""

from .classifier import CNNClassifier
from .devices import resolve_device
from .export import to_onnx
from .persistence import load, save
from .transfer import TransferClassifier

__version__ = "0.1.0"

__all__ = ["CNNClassifier", "TransferClassifier", "load", "resolve_device", "save", "to_onnx",
           "__version__"]
