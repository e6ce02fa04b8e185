"""TimeSeriesClassifier and TimeSeriesRegressor: 1-D convolutional networks for time series
and other signals (sensor data, ECGs, spectra), as scikit-learn estimators.

The estimators take aeon's and sktime's layout (n_cases, n_channels, n_timepoints), 2-D
univariate arrays, or lists of series of unequal lengths (see ``_series.py``), and share
everything else with the image estimators: the tasks (labels, label sets, regression),
training, persistence, export and inspection. The networks are in
:mod:`sklearn_cnn.networks1d`.
"""

from __future__ import annotations

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, StrOptions
from torch import nn

from . import _docstrings
from ._classification import CNNClassifierBase
from ._regression import CNNRegressorBase
from ._series import channel_statistics, check_min_length, series_lengths, validate_series
from ._tasks import EVAL_GAP_FIX
from .augmentation import (
    SERIES_MIXING,
    SERIES_PRESETS,
    check_augment,
    make_mixing,
    make_series_augmentation,
)
from .networks import check_pooling
from .networks1d import ARCHITECTURES, DEFAULTS, fcn_kernel_sizes, padding_free

__all__ = ["TimeSeriesClassifier", "TimeSeriesRegressor"]

# The image estimators' parameters that series have no use for.
_IMAGE_ONLY = ("tta", "data_format", "image_shape", "augment")


def _series_constraints(base: dict) -> dict:
    return {name: rule for name, rule in base.items() if name not in _IMAGE_ONLY}


def _positive_ints(name: str, values, *, allow_empty: bool = False, example: str) -> tuple:
    values = (values,) if isinstance(values, Integral) else tuple(values)
    if (not values and not allow_empty) or not all(
            isinstance(v, Integral) and not isinstance(v, bool) and v >= 1 for v in values):
        raise ValueError(f"{name} must hold positive integers, got {values!r}; e.g. "
                         f"{name}={example}.")
    return values


class _SeriesEstimator:
    """The network and the inputs of TimeSeriesClassifier (and of TimeSeriesRegressor):
    series in, a 1-D network of the chosen ``architecture`` built from the parameters."""

    _samples = "series"
    # Series of widely different scales (counts from 1 to 20,000 in Covid3Month) give
    # batches whose batch-norm statistics the running ones miss.
    _eval_gap_fix = (EVAL_GAP_FIX + " When the series differ widely in scale: "
                     "normalize='series' or batch_norm=False.")
    _input_axes = ("channels", "time points")
    _parameter_constraints: dict = {
        "architecture": [StrOptions(set(ARCHITECTURES))],
        "filters": [None, tuple, list],
        "kernel_size": [None, Interval(Integral, 1, None, closed="left"), tuple, list],
        "pooling": [None, StrOptions({"max", "avg", "stride"}), tuple, list],
        "batch_norm": ["boolean"],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "hidden_units": [tuple, list],
        "normalize": [None, StrOptions({"series", "channel"})],
        "augment": [None, StrOptions({*SERIES_PRESETS, *SERIES_MIXING}), callable, tuple,
                    list],
    }
    _architecture_params = ("architecture", "filters", "kernel_size", "pooling", "batch_norm",
                            "dropout", "hidden_units", "normalize")

    # ---------------------------------------------------------------- the network
    def _network_params(self) -> dict:
        """The keyword arguments of the ``architecture``'s network, defaults filled in."""
        defaults = DEFAULTS[self.architecture]
        filters = _positive_ints("filters", defaults["filters"] if self.filters is None
                                 else self.filters, example=str(defaults["filters"]))
        kernel = defaults["kernel_size"] if self.kernel_size is None else self.kernel_size
        hidden = _positive_ints("hidden_units", self.hidden_units, allow_empty=True,
                                example="(128,)")
        params = dict(filters=filters, batch_norm=self.batch_norm, dropout=self.dropout,
                      hidden_units=hidden, normalize=self.normalize)
        if self.architecture == "convnet":
            if not isinstance(kernel, Integral) or kernel % 2 == 0:
                raise ValueError(f"kernel_size must be one odd int for architecture='convnet' "
                                 f"('same' padding keeps the length), got {kernel!r}.")
            check_pooling(self.pooling, n_blocks=len(filters))
            pooling = tuple(self.pooling) if isinstance(self.pooling, list) else self.pooling
            return {**params, "kernel_size": int(kernel), "pooling": pooling}
        if self.pooling != "max":
            raise ValueError(f"pooling={self.pooling!r} applies to architecture='convnet' only: "
                             f"{self.architecture!r} keeps the whole time axis up to its "
                             "global average pooling. Leave pooling at 'max'.")
        if self.architecture == "fcn" and self.kernel_size is None:
            kernel = fcn_kernel_sizes(len(filters))
        sizes = _positive_ints("kernel_size", kernel, example=str(defaults["kernel_size"]))
        if self.architecture == "fcn" and len(sizes) != len(filters):
            if len(sizes) != 1:
                raise ValueError(f"kernel_size={kernel!r} must give one kernel size per block "
                                 f"of filters={filters} for architecture='fcn', or one for "
                                 "all.")
            sizes = sizes * len(filters)
        if self.architecture == "inception" and any(k % 2 == 0 for k in sizes):
            raise ValueError(f"kernel_size={kernel!r}: the inception branches need odd kernel "
                             "sizes, e.g. (39, 19, 9).")
        return {**params, "kernel_sizes": sizes}

    def _check_architecture(self) -> None:
        self._network_params()

    def _build_module(self, input_shape: tuple[int, int], n_outputs: int, *,
                      images: np.ndarray | None = None, config: dict | None = None
                      ) -> nn.Module:
        channels = input_shape[0]
        module = ARCHITECTURES[self.architecture](
            in_channels=channels, n_outputs=n_outputs, **self._network_params())
        if images is not None:
            self._check_lengths(images, module)
            if self.normalize == "channel":
                module.input.set_statistics(*channel_statistics(images))
        return module

    def _check_lengths(self, values: np.ndarray, module: nn.Module) -> None:
        check_min_length(values, module.min_length, name=type(self).__name__, fix=(
            "Use smaller kernels (kernel_size), fewer pooling blocks, or longer series "
            "(resample or pad them)."))

    # ------------------------------------------------------------------ the inputs
    def _validate_inputs(self, X, *, fitting: bool):
        return validate_series(self, X, fitting=fitting)

    def _load_inputs(self, X, *, warm: bool, stream: bool):
        if warm:
            self._check_lengths(X, self.module_)
        return torch.from_numpy(X), X, {}

    def _prediction_inputs(self, X):
        values, _ = validate_series(self, X, fitting=False)
        self._check_lengths(values, self.module_)
        return torch.from_numpy(values)

    def _input_positions(self, module: nn.Module, dataset) -> int:
        return int(dataset.X.shape[-1])

    def _check_augment(self) -> None:
        check_augment(self.augment, series=True)

    def _augmentation(self, input_shape: tuple, n_outputs: int):
        return make_series_augmentation(self.augment), make_mixing(self.augment, n_outputs)

    @contextmanager
    def _training_inputs(self, net, train_set, valid_set):
        # Series of one length (the common case) leave no padding in any batch: batch norm
        # then computes its statistics as torch's own does, faster.
        lengths = series_lengths(train_set.X.cpu().numpy())
        with padding_free(net.module_, free=bool((lengths == train_set.X.shape[-1]).all())):
            yield train_set, valid_set

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if tags.classifier_tags is not None:
            # The networks pool over time (global average pooling): scikit-learn's checks
            # fit tabular rows of 2 columns, which to a network of series are 2 time
            # points (0.77 on the check's three blobs, which ask 0.83, with test_common's
            # settings; 1.0 on GunPoint, docs/benchmarks.md).
            tags.classifier_tags.poor_score = True
        return tags


_TS_PARAMETERS = """\
    architecture : {"fcn", "resnet", "inception", "convnet"}, default="fcn"
        The network: Wang, Yan & Oates' fully convolutional network (three Conv → BatchNorm
        → ReLU blocks, global average pooling) or their residual network, InceptionTime's
        network, or the lesson's Conv → ReLU → pool blocks. FCN is the default: as accurate
        as ResNet and InceptionTime's network on the archive sets we measured, in half
        their time or less (docs/benchmarks.md § Time series).
    filters : tuple of int or None, default=None
        Output channels of each block (of each residual block; of each inception module's
        branches). None: the architecture's published sizes, (128, 256, 128) for FCN,
        (64, 128, 128) for ResNet, (32,) * 6 for InceptionTime, (64, 128, 128) for convnet.
    kernel_size : int, tuple of int or None, default=None
        Convolution kernel sizes: one odd int (convnet); one per block (FCN); the
        convolutions of every residual block (ResNet); the branches of every inception
        module (odd). None: 8, 5, then 3 for FCN's blocks, (8, 5, 3) for ResNet,
        (39, 19, 9) for inception, 7 for convnet.
    pooling : {"max", "avg", "stride"}, None or a tuple of them, default="max"
        convnet only: downsampling by 2 after each block (one value, or one per block: a
        max or average pooling, a stride-2 convolution, or None for none).
    batch_norm : bool, default=True
        Batch normalisation after each convolution (over the real time points of padded
        series).
    dropout : float, default=0.0
        Dropout rate before each dense layer, in [0, 1).
    hidden_units : tuple of int, default=()
        Dense ReLU layers between the pooled features and the output layer.
    normalize : {"channel", "series"} or None, default="channel"
        How the network's first layer normalises the series: "channel" standardises each
        channel with the training series' mean and standard deviation (learned in fit,
        saved with the model); "series" z-normalises each channel of each series over its
        own time points (the UCR archive's convention, whose series come z-normalised
        already; each series' level and scale are lost, which cost JapaneseVowels' speakers
        0.99 → 0.81 accuracy, docs/benchmarks.md); None takes the values as they are."""


class TimeSeriesClassifier(_SeriesEstimator, CNNClassifierBase):
    """A 1-D convolutional network classifier for time series, trained like any
    scikit-learn model.

    Classifies univariate or multivariate series of equal or unequal lengths with the
    networks of the deep-learning time-series literature (FCN and ResNet of Wang et al.
    2017, InceptionTime's network of Ismail Fawaz et al. 2020) or the lesson's
    Conv → ReLU → pool blocks. ``X`` is (n_cases, n_channels, n_timepoints), as aeon and
    sktime have it; (n_cases, n_timepoints) for univariate series; or a list of
    (n_channels, n_timepoints_i) arrays of unequal lengths, which are padded in each
    batch, the padding ignored by the network (masked batch normalisation and global
    average pooling). The network's first layer standardises each channel with the
    training series' statistics, saved with the model (``normalize``).

    ``y`` holds one label per series, or label sets (a binary indicator matrix). After the
    last epoch fit recomputes the batch-norm statistics and warns when the model predicts
    its own training series no better than the most frequent class.

    Parameters
    ----------
$series_parameters
$training_parameters

    Attributes
    ----------
$classifier_attributes
$fitted_attributes
    module_ : torch.nn.Module
        The trained network (:mod:`sklearn_cnn.networks1d`).

    See Also
    --------
    TimeSeriesRegressor : the same networks for numeric targets.
    sklearn_cnn.datasets.load_ts_file : reads the UCR/UEA archive's ``.ts`` files.
    sklearn_cnn.inspection.class_activation_maps : where in time the evidence is (CAM).

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import TimeSeriesClassifier
    >>> rng = np.random.RandomState(0)
    >>> t = np.linspace(0, 1, 60)
    >>> y = np.array(["sine", "square"] * 30)
    >>> X = np.where(y[:, None] == "sine", np.sin(8 * t), np.sign(np.sin(8 * t)))
    >>> X = X + 0.3 * rng.randn(60, 60)                  # 60 noisy series of 60 points
    >>> clf = TimeSeriesClassifier(filters=(16, 32, 16), max_epochs=15, random_state=0,
    ...                            device="cpu").fit(X[:40], y[:40])
    >>> clf.input_shape_, clf.predict(X[40:43]).tolist()
    ((1, 60), ['sine', 'square', 'sine'])
    >>> clf.score(X[40:], y[40:]) > 0.9
    True
    """

    _parameter_constraints: dict = {
        **_series_constraints(CNNClassifierBase._parameter_constraints),
        **_SeriesEstimator._parameter_constraints,
    }

    def __init__(
        self,
        *,
        architecture="fcn",
        filters=None,
        kernel_size=None,
        pooling="max",
        batch_norm=True,
        dropout=0.0,
        hidden_units=(),
        normalize="channel",
        optimizer="adam",
        lr=0.001,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=16,
        max_epochs=200,
        augment=None,
        early_stopping=False,
        validation_fraction=None,
        patience=20,
        lr_schedule="cosine",
        class_weight=None,
        label_smoothing=0.0,
        device="auto",
        precision="auto",
        compile=False,
        callbacks=None,
        random_state=None,
        verbose="auto",
        warm_start=False,
    ):
        self.architecture = architecture
        self.filters = filters
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.normalize = normalize
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
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start


class TimeSeriesRegressor(_SeriesEstimator, CNNRegressorBase):
    """A 1-D convolutional network regressor for time series: one number or several per
    series (a rate from an ECG, a concentration from a spectrum, next month's value).

    The networks and inputs of :class:`TimeSeriesClassifier`, with one linear output per
    target. The targets are standardised inside ``fit`` (``target_mean_``,
    ``target_scale_``, saved with the model); ``predict`` returns them on their own scale,
    in the shape ``fit`` saw. ``score`` is R². The series are standardised per channel (the
    default): ``normalize="series"`` would remove each series' level and scale, which a
    target often depends on.

    Parameters
    ----------
$series_parameters
$training_parameters

    Attributes
    ----------
$regressor_attributes
$fitted_attributes
    module_ : torch.nn.Module
        The trained network (:mod:`sklearn_cnn.networks1d`).

    See Also
    --------
    TimeSeriesClassifier : the same networks for class labels and label sets.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn_cnn import TimeSeriesRegressor
    >>> rng = np.random.RandomState(0)
    >>> frequency = rng.uniform(1, 5, size=80)         # what each series oscillates at
    >>> t = np.linspace(0, 1, 50)
    >>> X = np.sin(2 * np.pi * frequency[:, None] * t) + 0.1 * rng.randn(80, 50)
    >>> reg = TimeSeriesRegressor(filters=(16, 32, 16), max_epochs=40, random_state=0,
    ...                           device="cpu").fit(X[:60], frequency[:60])
    >>> reg.predict(X[60:63]).shape
    (3,)
    >>> reg.score(X[60:], frequency[60:]) > 0.8
    True
    """

    _parameter_constraints: dict = {
        **_series_constraints(CNNRegressorBase._parameter_constraints),
        **_SeriesEstimator._parameter_constraints,
    }

    def __init__(
        self,
        *,
        architecture="fcn",
        filters=None,
        kernel_size=None,
        pooling="max",
        batch_norm=True,
        dropout=0.0,
        hidden_units=(),
        normalize="channel",
        optimizer="adam",
        lr=0.001,
        momentum=0.9,
        weight_decay=0.0,
        batch_size=16,
        max_epochs=200,
        augment=None,
        early_stopping=False,
        validation_fraction=None,
        patience=20,
        lr_schedule="cosine",
        loss="squared_error",
        device="auto",
        precision="auto",
        compile=False,
        callbacks=None,
        random_state=None,
        verbose="auto",
        warm_start=False,
    ):
        self.architecture = architecture
        self.filters = filters
        self.kernel_size = kernel_size
        self.pooling = pooling
        self.batch_norm = batch_norm
        self.dropout = dropout
        self.hidden_units = hidden_units
        self.normalize = normalize
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
        self.device = device
        self.precision = precision
        self.compile = compile
        self.callbacks = callbacks
        self.random_state = random_state
        self.verbose = verbose
        self.warm_start = warm_start


for _cls, _task, _attributes in [
        (TimeSeriesClassifier, "classifier", _docstrings.CLASSIFIER_ATTRIBUTES),
        (TimeSeriesRegressor, "regressor", _docstrings.REGRESSOR_ATTRIBUTES)]:
    _docstrings.fill(
        _cls,
        series_parameters=_TS_PARAMETERS,
        training_parameters=_docstrings.training_parameters(
            optimizer="adam", lr=0.001, max_epochs=200, task=_task, inputs="series"),
        classifier_attributes=_attributes,
        regressor_attributes=_attributes,
        fitted_attributes=_docstrings.SERIES_FITTED_ATTRIBUTES,
    )
