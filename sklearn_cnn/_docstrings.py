"""The parameter and attribute descriptions the estimators share, written once.

Each estimator's docstring names a block as ``$name``; :func:`fill` puts the block in, with
that estimator's defaults, when the class is defined. The result is an ordinary numpydoc
docstring (what ``help()``, Sphinx and the doctests read).
"""

from __future__ import annotations

from string import Template


def fill(cls: type, **blocks: str) -> type:
    """``cls`` with each ``$name`` in its docstring replaced by ``blocks[name]``."""
    cls.__doc__ = Template(cls.__doc__).safe_substitute(**blocks)
    return cls


def training_parameters(*, optimizer: str, lr: float, max_epochs: int, task: str,
                        inputs: str = "images", batch_size: int = 32, patience: int = 5) -> str:
    """The training parameters, with one estimator's defaults. ``task`` is "classifier"
    (class weights and label smoothing) or "regressor" (the loss); ``inputs`` is "images"
    or "series" (their augmentation; images have test-time mirroring and layouts)."""
    task_specific = {
        "classifier": """\
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss, as in scikit-learn's classifiers; with label
        sets (multi-label y), the weight of each label's positive examples.
    label_smoothing : float, default=0.0
        Label smoothing of the cross-entropy loss, in [0, 1); with label sets, the targets
        0 and 1 become ``label_smoothing / 2`` and ``1 - label_smoothing / 2``.
""",
        "regressor": """\
    loss : {"squared_error", "absolute_error", "huber"}, default="squared_error"
        The loss on the standardised targets, named as in scikit-learn's regressors.
""",
    }[task]
    return f"""\
    optimizer : {{"adam", "adamw", "sgd", "rmsprop"}} or torch.optim.Optimizer class, \
default="{optimizer}"
        The optimizer.
    lr : float, default={lr}
        Learning rate, > 0.
    momentum : float, default=0.9
        Momentum, used by "sgd" and "rmsprop".
    weight_decay : float, default=0.0
        L2 penalty on the weights (the optimizer's ``weight_decay``).
    batch_size : int, default={batch_size}
        {inputs.capitalize()} per training step.
    max_epochs : int, default={max_epochs}
        Passes over the training data (the most, with ``early_stopping``).
{_AUGMENT[inputs]}
    early_stopping : bool, default=False
        Stop when the loss on the held-out validation split (``validation_fraction``,
        0.1 unless given) has not improved for ``patience`` epochs, and restore the best
        epoch's weights.
    validation_fraction : float or None, default=None
        Share of the training data held out (stratified by class for single-label
        classifiers, seeded by ``random_state``) and scored after every epoch:
        ``valid_loss`` and the validation metric in ``history_``, for train/validation
        curves. It changes nothing else; early stopping stays its own choice. None: no
        split (0.1 with ``early_stopping``).
    patience : int, default={patience}
        Epochs without validation improvement before stopping.
    lr_schedule : {{"cosine", "onecycle", "step", "plateau"}} or None, default="cosine"
        Learning-rate schedule: cosine annealing to 0 over ``max_epochs``; one-cycle per
        batch; ×0.1 every ``max_epochs // 3`` epochs; or ×0.5 after 2 epochs without
        improvement of the validation loss (the training loss without early stopping).
{task_specific}\
{_IMAGE_LAYOUT if inputs == "images" else ""}\
    device : str or torch.device, default="auto"
        "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", "cuda:N", "mps".
    precision : {{"auto", "float32", "bfloat16"}}, default="auto"
        "auto" trains and predicts with bfloat16 autocast where the device computes it
        natively (recent GPUs; CPUs with AVX512-BF16, AMX or Arm BF16), float32 elsewhere.
        Weights stay float32. See the user guide's "Precision on the CPU".
    compile : bool, default=False
        Compile the training steps with ``torch.compile`` (prediction runs the module
        itself). The first fit pays the compilation. For the small networks of the lesson it
        does not pay: measured slower than eager on an H200 (``benchmarks/bench_compile.py``,
        docs/benchmarks.md § GPU), where the steps are bound by kernel launches.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, instances or ``(name, callback)`` tuples.
    random_state : int, RandomState instance or None, default=None
        Seeds weights, shuffling, dropout and augmentation; an int makes CPU fits
        bit-identical. The global torch random state is left untouched.
    verbose : "auto" or int, default="auto"
        "auto" shows one progress line per fit (epochs, losses, time left) where a person is
        watching: a notebook, or a terminal, outside a search's workers; nothing in pipes,
        logs, tests and CI. 0 is silent always; 1 prints a line per epoch (and a progress
        bar in a terminal).
    warm_start : bool, default=False
        Continue training the fitted network on the next ``fit``, for ``max_epochs`` more
        epochs, with the training parameters as they are then (``lr``, ``optimizer``,
        ``batch_size``, ``augment``, ...). Parameters that shape the network cannot change:
        such a fit raises an error naming them."""


_AUGMENT = {
    "images": """\
    augment : None, {"flip", "crop", "color", "standard", "mixup", "cutmix"}, callable or \
tuple, default=None
        Random augmentation of training batches only, per image, seeded by
        ``random_state``; a callable or torchvision v2 transform gets float batches of
        shape (N, C, H, W); "mixup" and "cutmix" mix images and their targets in pairs.
        A tuple combines them. See :mod:`sklearn_cnn.augmentation`.""",
    "series": """\
    augment : None, {"slice", "warp", "scaling", "jitter", "standard", "mixup"}, callable \
or tuple, default=None
        Random augmentation of training batches only, per series, seeded by
        ``random_state``: window slicing, time warping, scaling, jitter ("standard" is
        slice, scaling and jitter); a callable gets float batches of shape (N, C, T), NaN
        after the end of series shorter than the longest; "mixup" mixes series and their
        targets in pairs. A tuple combines them. See
        :class:`~sklearn_cnn.augmentation.SeriesAugmentation`.""",
}

_IMAGE_LAYOUT = """\
    tta : bool, default=False
        Test-time augmentation: average predictions over the images and their mirrors.
    data_format : {"channels_last", "channels_first"}, default="channels_last"
        Layout of 4-D input: (N, H, W, C) or (N, C, H, W).
    image_shape : tuple of int or None, default=None
        (height, width[, channels]) of flat 2-D input rows. Without it, rows of a perfect
        square length are square grayscale images and others a one-pixel-high strip.
"""

SERIES_FITTED_ATTRIBUTES = """\
    n_features_in_ : int
        Values per series (channels × time points), when fit saw series of one length (an
        array); not set after series of unequal lengths. ``predict`` takes arrays of this
        length, and series of any length as a list.
    input_shape_ : tuple of int
        (channels, time points) of the training series; the longest, for a list.
    device_ : torch.device
        The device the network predicts on.
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : skorch.History
        Per epoch: ``train_loss``, ``valid_loss`` (with a validation split), the metric
        (``train_acc``/``valid_acc`` for classifiers, ``train_r2``/``valid_r2`` for
        regressors), ``lr`` and ``dur``."""

FITTED_ATTRIBUTES = """\
    n_features_in_ : int
        Values per image (height × width × channels).
    input_shape_ : tuple of int
        (height, width, channels) of the training images.
    pixel_range_ : tuple of float
        (min, max) of the training pixels as the network saw them (uint8 scaled to
        [0, 1]); ``predict`` warns on images scaled very differently.
    device_ : torch.device
        The device the network predicts on.
    net_ : skorch.NeuralNet
        The trained skorch net.
    history_ : skorch.History
        Per epoch: ``train_loss``, ``valid_loss`` (with early stopping), the metric
        (``train_acc``/``valid_acc`` for classifiers, ``train_r2``/``valid_r2`` for
        regressors), ``lr`` and ``dur``."""

CLASSIFIER_ATTRIBUTES = """\
    classes_ : ndarray of shape (n_classes,)
        The class labels (for label sets: the label indices 0..L-1, as MLPClassifier's)."""

REGRESSOR_ATTRIBUTES = """\
    target_mean_, target_scale_ : ndarray of shape (n_outputs,)
        The training targets' mean and standard deviation, which standardise them for the
        network (a constant target gets a scale of 1).
    n_outputs_ : int
        Targets per image.
    outputs_2d_ : bool
        Whether fit saw y of shape (n_samples, n_outputs); ``predict`` returns that shape."""


CONVNET_PARAMETERS = """\
    filters : tuple of int, default=(32, 64, 128)
        Output channels of each convolutional block; one block per entry.
    kernel_size : int, default=3
        Convolution kernel size (odd).
    pooling : {"max", "avg", "stride"}, None or a tuple of them, default="max"
        Downsampling after each block, one value for all or one per block: 2×2 max or
        average pooling, a stride-2 convolution, or None for none. Keras' Conv → Pool →
        Conv → Pool → Conv (no pooling after the last block) is ``("max", "max", None)``.
        (Before version 0.3, a single None meant "stride".)
    batch_norm : bool, default=True
        Batch normalisation after each convolution.
    dropout : float, default=0.25
        Dropout rate before each dense layer, in [0, 1).
    hidden_units : tuple of int, default=()
        Dense ReLU layers between the pooled features and the output layer."""

BACKBONE_PARAMETERS = """\
    backbone : str, default="resnet18"
        Any torchvision classification model by name
        (:func:`~sklearn_cnn.backbones.list_backbones`): resnet18/34/50, mobilenet_v2,
        mobilenet_v3_small/large, efficientnet_b0, convnext_tiny, regnet_y_400mf,
        vit_b_16, ...; or any of timm's, as ``"timm/<model>"`` (e.g.
        ``"timm/tf_efficientnet_lite0"``; needs ``pip install 'sklearn-cnn[timm]'``).
    weights : "DEFAULT", str, WeightsEnum, path or None, default="DEFAULT"
        Pretrained weights: "DEFAULT" (torchvision's, read from the torch hub cache under
        ``$TORCH_HOME``; timm's, from the Hugging Face hub cache), a torchvision enum member
        by name, a local state-dict file (.pth/.pt/.safetensors, read safely), or None for
        random initialisation. See :func:`~sklearn_cnn.backbones.load_backbone`.
    freeze : "backbone", "none" or int, default="backbone"
        "backbone" trains only the new head; "none" fine-tunes everything; an int k
        trains the last k stages of the backbone too (``stage_names_`` lists them; k at
        least their number is "none").
        Frozen batch-norm layers keep their running statistics. With ``weights=None`` the
        backbone is random: freezing it warns, use ``freeze="none"``.
    unfreeze_at : int or None, default=None
        The epoch (counting from 1) from which the whole backbone trains: gradual
        unfreezing after training the head first.
    backbone_lr : float, default=1.0
        Multiplier of ``lr`` for the backbone's parameters (discriminative learning rates).
    head_dropout : float, default=0.2
        Dropout before the new linear layer, in [0, 1).
    input_size : int or None, default=None
        Side of the square images the backbone sees; None takes the weights' size (224 for
        most; timm's ``pretrained_cfg``), or 224 without enum weights. Smaller is faster."""
