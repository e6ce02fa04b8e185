"""CNNClassifier and CNNRegressor: a convolutional network built from its parameters."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from . import _docstrings
from ._classification import CNNClassifierBase
from ._data import channel_statistics
from ._regression import CNNRegressorBase
from .networks import ConvNet, check_pooling

__all__ = ["CNNClassifier", "CNNRegressor"]


def _check_positive_ints(name: str, values, *, allow_empty: bool, example: str) -> None:
    if not allow_empty and len(values) == 0:
        raise ValueError(f"{name} is empty; give at least one layer size, e.g. {name}={example}.")
    for value in values:
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must hold positive integers, got {tuple(values)!r}; "
                             f"e.g. {name}={example}.")


class _ConvNetEstimator:
    """The network of CNNClassifier (and of CNNRegressor): built from its parameters."""

    _parameter_constraints: dict = {
        "filters": [tuple, list],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": [None, StrOptions({"max", "avg", "stride"}), tuple, list],
        "batch_norm": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "hidden_units": [tuple, list],
    }
    _architecture_params = ("filters", "kernel_size", "pooling", "batch_norm", "dropout",
                            "hidden_units")

    def _check_architecture(self) -> None:
        _check_positive_ints("filters", self.filters, allow_empty=False, example="(32, 64)")
        _check_positive_ints("hidden_units", self.hidden_units, allow_empty=True,
                             example="(128,)")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (3, 5, 7, ...) so that 'same' padding "
                             f"keeps the image size, got {self.kernel_size}.")
        check_pooling(self.pooling, n_blocks=len(self.filters))

    def _build_module(self, input_shape: tuple[int, int, int], n_outputs: int, *,
                      images: np.ndarray | None = None, config: dict | None = None
                      ) -> nn.Module:
        height, width, channels = input_shape
        module = ConvNet(
            in_channels=channels,
            n_classes=n_outputs,
            input_size=(height, width),
            filters=tuple(self.filters),
            kernel_size=self.kernel_size,
            pooling=tuple(self.pooling) if isinstance(self.pooling, list) else self.pooling,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            hidden_units=tuple(self.hidden_units),
        )
        if images is not None:
            # The network sees uint8 pixels scaled to [0, 1], so their statistics are too.
            mean, std = channel_statistics(images)
            scale = 255.0 if images.dtype == np.uint8 else 1.0
            module.standardize.set_statistics(mean / scale, std / scale)
        return module


class CNNClassifier(_ConvNetEstimator, CNNClassifierBase):
    """A convolutional network classifier for images, trained like any scikit-learn model.

    The network is the classic one: blocks of Conv → BatchNorm → ReLU → pooling, global
    average pooling, dropout and a dense output layer. It adapts to the image size, from
    8×8 digits to 224×224 photos. Training runs through skorch on the chosen device.

    ``fit`` learns the per-channel mean and standard deviation of the training images and
    keeps them in the network's first layer (``module_.standardize``), so raw pixels of any
    range train well and the statistics travel with the saved model. After the last epoch
    it recomputes the batch-norm statistics with the final weights, so that predictions
    (in eval mode) agree with the accuracy training reported, and it warns when the model
    predicts its own training images no better than the most frequent class.

    ``y`` holds one label per image, or label sets: a binary indicator matrix (n_samples,
    n_labels), as :class:`~sklearn.preprocessing.MultiLabelBinarizer` makes. With label
    sets the network has one sigmoid output per label and trains on binary cross-entropy;
    ``predict`` returns the indicator matrix and ``predict_proba`` each label's probability.

    Parameters
    ----------
$convnet_parameters
$training_parameters

    Attributes
    ----------
$classifier_attributes
$fitted_attributes
    module_ : torch.nn.Module
        The trained network, a :class:`~sklearn_cnn.networks.ConvNet`.

    See Also
    --------
    TransferClassifier : fine-tunes a pretrained torchvision backbone.
    sklearn_cnn.preprocessing : image transformers to put before it in a Pipeline.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from sklearn_cnn import CNNClassifier
    >>> X, y = load_digits(return_X_y=True)
    >>> X = X.reshape(-1, 8, 8) / 16
    >>> clf = CNNClassifier(filters=(32, 64), max_epochs=5, random_state=0, device="cpu")
    >>> clf.fit(X[:500], y[:500]).input_shape_
    (8, 8, 1)
    >>> clf.predict(X[500:503]).shape
    (3,)
    >>> clf.score(X[500:], y[500:]) > 0.8
    True
    """

    _parameter_constraints: dict = {
        **CNNClassifierBase._parameter_constraints,
        **_ConvNetEstimator._parameter_constraints,
    }

    def __init__(
        self,
        *,
        filters=(32, 64, 128),
        kernel_size=3,
        pooling="max",
        batch_norm=True,
        dropout=0.25,
        hidden_units=(),
        optimizer="adam",
        lr=0.002,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=30,
        augment=None,
        early_stopping=False,
        validation_fraction=None,
        patience=5,
        lr_schedule="cosine",
        class_weight=None,
        label_smoothing=0.0,
        tta=False,
        data_format="channels_last",
        image_shape=None,
        device="auto",
        precision="auto",
        compile=False,
        callbacks=None,
        random_state=None,
        verbose="auto",
        warm_start=False,
    ):
        self.filters = filters
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.class_weight = class_weight
        self.label_smoothing = label_smoothing
        self.tta = tta
        self.data_format = data_format
        self.image_shape = image_shape
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start


_docstrings.fill(
    CNNClassifier,
    convnet_parameters=_docstrings.CONVNET_PARAMETERS,
    training_parameters=_docstrings.training_parameters(
        optimizer="adam", lr=0.002, max_epochs=30, task="classifier"),
    classifier_attributes=_docstrings.CLASSIFIER_ATTRIBUTES,
    fitted_attributes=_docstrings.FITTED_ATTRIBUTES,
)


class CNNRegressor(_ConvNetEstimator, CNNRegressorBase):
    """A convolutional network regressor for images: one number (an angle, a count, an age)
    or several per image, trained like any scikit-learn model.

    The network is :class:`CNNClassifier`'s with one linear output per target. The targets
    are standardised inside ``fit`` with their mean and standard deviation (kept as
    ``target_mean_`` and ``target_scale_`` and saved with the model), so that angles in
    degrees or prices in thousands train as well as values near 0; ``predict`` returns them
    on their own scale, in the shape ``fit`` saw. ``score`` is R².

    Parameters
    ----------
$convnet_parameters
$training_parameters

    Attributes
    ----------
$regressor_attributes
$fitted_attributes
    module_ : torch.nn.Module
        The trained network, a :class:`~sklearn_cnn.networks.ConvNet`.

    See Also
    --------
    CNNClassifier : the same network for class labels and label sets.
    TransferRegressor : regression on a pretrained backbone.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import CNNRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(0, 0.2, size=(300, 8, 8)).astype(np.float32)
    >>> y = rng.uniform(0, 8, size=300)           # where a bright column is, in pixels
    >>> for image, column in zip(X, y.astype(int)):
    ...     image[:, column] += 0.8
    >>> reg = CNNRegressor(filters=(16, 32), max_epochs=20, lr=0.01, random_state=0,
    ...                    device="cpu").fit(X[:200], y[:200])
    >>> reg.predict(X[200:203]).shape
    (3,)
    >>> reg.score(X[200:], y[200:]) > 0.8
    True
    """

    _parameter_constraints: dict = {
        **CNNRegressorBase._parameter_constraints,
        **_ConvNetEstimator._parameter_constraints,
    }

    def __init__(
        self,
        *,
        filters=(32, 64, 128),
        kernel_size=3,
        pooling="max",
        batch_norm=True,
        dropout=0.25,
        hidden_units=(),
        optimizer="adam",
        lr=0.002,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=32,
        max_epochs=30,
        augment=None,
        early_stopping=False,
        validation_fraction=None,
        patience=5,
        lr_schedule="cosine",
        loss="squared_error",
        tta=False,
        data_format="channels_last",
        image_shape=None,
        device="auto",
        precision="auto",
        compile=False,
        callbacks=None,
        random_state=None,
        verbose="auto",
        warm_start=False,
    ):
        self.filters = filters
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.augment = augment
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.loss = loss
        self.tta = tta
        self.data_format = data_format
        self.image_shape = image_shape
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start


_docstrings.fill(
    CNNRegressor,
    convnet_parameters=_docstrings.CONVNET_PARAMETERS,
    training_parameters=_docstrings.training_parameters(
        optimizer="adam", lr=0.002, max_epochs=30, task="regressor"),
    regressor_attributes=_docstrings.REGRESSOR_ATTRIBUTES,
    fitted_attributes=_docstrings.FITTED_ATTRIBUTES,
)
