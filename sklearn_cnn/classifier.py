"""CNNClassifier: a convolutional network built from its parameters."""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from ._base import BaseCNNClassifier
from ._data import channel_statistics
from .networks import ConvNet

__all__ = ["CNNClassifier"]


def _check_positive_ints(name: str, values, *, allow_empty: bool, example: str) -> None:
    if not allow_empty and len(values) == 0:
        raise ValueError(f"{name} is empty; give at least one layer size, e.g. {name}={example}.")
    for value in values:
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must hold positive integers, got {tuple(values)!r}; "
                             f"e.g. {name}={example}.")


class CNNClassifier(BaseCNNClassifier):
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

    Parameters
    ----------
    filters : tuple of int, default=(32, 64, 128)
        Output channels of each convolutional block; one block per entry.
    kernel_size : int, default=3
        Convolution kernel size (odd).
    pooling : {"max", "avg"} or None, default="max"
        2×2 pooling after each block; None downsamples with stride-2 convolutions.
    batch_norm : bool, default=True
        Batch normalisation after each convolution.
    dropout : float, default=0.25
        Dropout rate before each dense layer, in [0, 1).
    hidden_units : tuple of int, default=()
        Dense ReLU layers between the pooled features and the output layer.
    optimizer : {"adam", "adamw", "sgd", "rmsprop"} or torch.optim.Optimizer class, \
default="adam"
        The optimizer.
    lr : float, default=0.002
        Learning rate, > 0.
    momentum : float, default=0.9
        Momentum, used by "sgd" and "rmsprop".
    weight_decay : float, default=0.0
        L2 penalty on the weights (the optimizer's ``weight_decay``).
    batch_size : int, default=32
        Images per training step.
    max_epochs : int, default=30
        Passes over the training data (the most, with ``early_stopping``).
    augment : None, {"flip", "crop", "color", "standard"} or callable, default=None
        Random augmentation of training batches only, per image, seeded by
        ``random_state``; a callable or torchvision v2 transform gets float batches of
        shape (N, C, H, W). See :mod:`sklearn_cnn.augmentation`.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified), stop when its
        loss has not improved for ``patience`` epochs, and restore the best weights.
    validation_fraction : float, default=0.1
        Share of the training data held out when ``early_stopping`` is on.
    patience : int, default=5
        Epochs without validation improvement before stopping.
    lr_schedule : {"cosine", "onecycle", "step", "plateau"} or None, default="cosine"
        Learning-rate schedule: cosine annealing to 0 over ``max_epochs``; one-cycle per
        batch; ×0.1 every ``max_epochs // 3`` epochs; or ×0.5 after 2 epochs without
        improvement of the validation loss (the training loss without early stopping).
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's classifiers.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss, in [0, 1).
    tta : bool, default=False
        Test-time augmentation: average predictions over the images and their mirrors.
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input: (N, H, W, C) or (N, C, H, W).
    image_shape : tuple of int or None, default=None
        (height, width[, channels]) of flat 2-D input rows. Without it, rows of a perfect
        square length are square grayscale images and others a one-pixel-high strip.
    device : str or torch.device, default="auto"
        "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N", "mps".
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        "auto" trains and predicts with bfloat16 autocast where the device computes it
        natively (recent GPUs; CPUs with AVX512-BF16, AMX or Arm BF16), float32 elsewhere.
        Weights stay float32. See the user guide's "Precision on the CPU".
    compile : bool, default=False
        Compile the module with ``torch.compile``.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, instances or ``(name, callback)`` tuples.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and augmentation; an int makes CPU fits
        bit-identical. The global torch random state is left untouched.
    verbose : int, default=0
        0 is silent; 1 prints a progress bar and a line per epoch.
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``, for ``max_epochs`` more
        epochs, with the training parameters as they are then (``lr``, ``optimizer``,
        ``batch_size``, ``augment``, ``class_weight``, ...). Parameters that shape the
        network (``filters``, ``kernel_size``, ``pooling``, ``batch_norm``, ``dropout``,
        ``hidden_units``) cannot change: such a fit raises an error naming them.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels.
    n_features_in_ : int
        Values per image (height × width × channels).
    input_shape_ : tuple of int
        (height, width, channels) of the training images.
    pixel_range_ : tuple of float
        (min, max) of the training pixels as the network saw them (uint8 scaled to
        [0, 1]); ``predict`` warns on images scaled very differently.
    device_ : torch.device
        The device the network trains and predicts on.
    net_ : skorch.NeuralNetClassifier
        The trained skorch net.
    module_ : torch.nn.Module
        The trained network, a :class:`~sklearn_cnn.networks.ConvNet`.
    history_ : skorch.History
        Per-epoch ``train_loss``, ``train_acc``, ``valid_loss``, ``valid_acc``, ``lr``, ``dur``.

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
        **BaseCNNClassifier._parameter_constraints,
        "filters": [tuple, list],
        "kernel_size": [Interval(Integral, 1, None, closed="left")],
        "pooling": [None, StrOptions({"max", "avg"})],
        "batch_norm": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "hidden_units": [tuple, list],
    }
    _architecture_params = ("filters", "kernel_size", "pooling", "batch_norm", "dropout",
                            "hidden_units")

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
        validation_fraction=0.1,
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
        verbose=0,
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

    def _check_architecture(self) -> None:
        _check_positive_ints("filters", self.filters, allow_empty=False, example="(32, 64)")
        _check_positive_ints("hidden_units", self.hidden_units, allow_empty=True,
                             example="(128,)")
        if self.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd (3, 5, 7, ...) so that 'same' padding "
                             f"keeps the image size, got {self.kernel_size}.")

    def _learn_input_statistics(self, module: ConvNet, images: np.ndarray) -> None:
        # The network sees uint8 pixels scaled to [0, 1], so their statistics are too.
        mean, std = channel_statistics(images)
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        module.standardize.set_statistics(mean / scale, std / scale)

    def _build_module(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        height, width, channels = input_shape
        return ConvNet(
            in_channels=channels,
            n_classes=n_classes,
            input_size=(height, width),
            filters=tuple(self.filters),
            kernel_size=self.kernel_size,
            pooling=self.pooling,
            batch_norm=self.batch_norm,
            dropout=self.dropout,
            hidden_units=tuple(self.hidden_units),
        )
