"""Image array validation, layout conversion, compact storage and the batch iterator."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch
from sklearn.utils.validation import _check_feature_names, check_array

LAYOUT_HELP = (
    "Pass images as (n_samples, height, width) for grayscale, (n_samples, height, width, "
    "channels) for colour (channels_last, like NumPy, PIL and matplotlib), or flat rows "
    "(n_samples, n_pixels) with image_shape=(height, width[, channels])."
)


def infer_image_shape(n_features: int, image_shape=None) -> tuple[int, int, int]:
    """The (height, width, channels) of flat rows with ``n_features`` values.

    With ``image_shape`` given, it is checked against ``n_features``; without it a perfect
    square becomes a square grayscale image (digits' 64 values → 8×8) and anything else a
    one-row grayscale strip (1 × n_features).
    """
    if image_shape is not None:
        try:
            shape = tuple(int(s) for s in image_shape)
        except (TypeError, ValueError):
            shape = ()
        if len(shape) == 2:
            shape = (*shape, 1)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(
                "image_shape must be (height, width) or (height, width, channels) of positive "
                f"integers, got {image_shape!r}."
            )
        if math.prod(shape) != n_features:
            raise ValueError(
                f"image_shape={tuple(image_shape)!r} holds {math.prod(shape)} values, but each "
                f"row of X has {n_features}. Pass an image_shape whose product is {n_features}."
            )
        return shape
    side = math.isqrt(n_features)
    if side * side == n_features:
        return (side, side, 1)
    return (1, n_features, 1)


def check_pixels(X, *, estimator=None) -> np.ndarray:
    """``X`` as a numeric, finite, non-empty array of 2 to 4 dimensions.

    Reuses scikit-learn's ``check_array`` for the numeric, finite and non-empty checks (and
    its messages), then adds the image rule on the number of dimensions.
    """
    X = check_array(X, allow_nd=True, dtype="numeric", ensure_all_finite=True,
                    estimator=estimator, input_name="X")
    if X.ndim > 4:
        raise ValueError(f"X has {X.ndim} dimensions (shape {X.shape}); images have 2 to 4. "
                         + LAYOUT_HELP)
    if X.dtype == np.bool_:
        X = X.astype(np.float32)
    return X


def to_channels_last(X: np.ndarray, *, data_format="channels_last", image_shape=None):
    """A checked array as (n_samples, height, width, channels), a view when possible."""
    if X.ndim == 2:
        return X.reshape(len(X), *infer_image_shape(X.shape[1], image_shape))
    if X.ndim == 3:
        return X[..., np.newaxis]
    if data_format == "channels_first":
        return X.transpose(0, 2, 3, 1)
    return X


def validate_input(estimator, X, *, reset: bool) -> np.ndarray:
    """Checked pixels plus scikit-learn's bookkeeping of the input.

    Column names of DataFrames are checked by scikit-learn's own helper, and
    ``n_features_in_`` is the number of values per image; flat rows of another length are
    refused at predict/transform with scikit-learn's usual message.
    """
    _check_feature_names(estimator, X, reset=reset)
    X = check_pixels(X, estimator=estimator)
    n_features = math.prod(X.shape[1:])
    if reset:
        estimator.n_features_in_ = n_features
    elif X.ndim == 2 and n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input.")
    return X


def to_compact_tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, C) array → (N, C, H, W) tensor in channels-last memory, uint8 kept as uint8.

    The tensor is a view of the channels-last array (no copy when the array is already
    C-contiguous): channels-last is also the memory format that oneDNN and cuDNN run
    convolutions fastest in. uint8 images stay 1 byte a pixel until a batch is taken (a
    quarter of float32); every other dtype becomes float32.
    """
    if images.dtype != np.uint8:
        images = images.astype(np.float32, copy=False)
    images = np.ascontiguousarray(images)
    if not images.flags.writeable:
        # torch.from_numpy shares memory and refuses read-only arrays (memmaps): copy those.
        # Writable input may be shared: batches never modify the stored tensor in place.
        images = images.copy()
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def to_float_batch(batch: torch.Tensor) -> torch.Tensor:
    """uint8 pixels → float in [0, 1] (torchvision's ``ToDtype(scale=True)``); floats as given."""
    if batch.dtype == torch.uint8:
        # One kernel where two would do the same: uint8 / float promotes to the default
        # float dtype (float32 unless changed), computing exactly float(x) / 255.
        batch = batch / 255.0
    return batch.float()


class ImageDataset(torch.utils.data.Dataset):
    """Images (N, C, H, W) and optional encoded labels (N,), as whole tensors."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor | None = None):
        self.X = X
        self.y = y

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], (self.y[i] if self.y is not None else torch.zeros((), dtype=torch.long))

    def to(self, device: torch.device) -> ImageDataset:
        y = None if self.y is None else self.y.to(device)
        return ImageDataset(self.X.to(device), y)


def place_dataset(dataset: ImageDataset, device: torch.device, max_fraction: float = 0.25,
                  max_bytes: float = float("inf")):
    """Move a dataset to a CUDA device at once when it fits in ``max_fraction`` of the free
    memory and in ``max_bytes``.

    It moves as it is stored, so uint8 images take one byte a pixel on the device too.
    A dataset left in host memory is copied batch by batch, each copy overlapping the
    device's work on the batch before (:class:`BatchIterator`).
    """
    if device.type != "cuda":
        return dataset
    nbytes = dataset.X.numel() * dataset.X.element_size()
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes <= min(max_fraction * free, max_bytes):
        return dataset.to(device)
    return dataset


def count_batches(n_samples: int, batch_size: int, *, drop_single: bool = False) -> int:
    """Batches per pass over ``n_samples``, as :class:`BatchIterator` yields them."""
    full, rest = divmod(n_samples, batch_size)
    return full + (rest > 1 or (rest == 1 and not (drop_single and n_samples > 1)))


class BatchIterator:
    """Mini-batches by slicing whole tensors: one index operation per batch.

    skorch's default ``DataLoader`` calls ``__getitem__`` per sample and collates; for
    in-memory images that costs more than the forward pass of a small CNN, so this
    iterator is passed to skorch as ``iterator_train``/``iterator_valid`` instead.

    Parameters
    ----------
    dataset : ImageDataset
    batch_size : int
    shuffle : bool
        A new seeded permutation per pass (epoch).
    device : torch.device
        Where batches are delivered, as float tensors.
    seed : int or None
        Seeds the permutation and ``transform``'s generator.
    transform : callable or None
        ``transform(batch, generator) -> batch`` applied to each float batch (augmentation).
    drop_single : bool
        Skip a trailing batch of one sample (batch norm cannot train on it).
    memory_format : torch.memory_format, default=torch.channels_last
        Memory format of the delivered batches; channels-last speeds convolutions up on CPU
        (oneDNN) and CUDA (cuDNN). See :func:`~sklearn_cnn.devices.memory_format_for`.
    """

    def __init__(
        self,
        dataset: ImageDataset,
        batch_size: int,
        *,
        shuffle: bool = False,
        device: torch.device | str = "cpu",
        seed: int | None = None,
        transform: Callable | None = None,
        drop_single: bool = False,
        memory_format: torch.memory_format = torch.channels_last,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.transform = transform
        self.drop_single = drop_single
        self.memory_format = memory_format
        self._order_rng = torch.Generator()
        self._aug_rng = torch.Generator(device=self.device)
        if seed is not None:
            self._order_rng.manual_seed(seed)
            self._aug_rng.manual_seed(seed + 1)
        else:
            self._order_rng.seed()
            self._aug_rng.seed()

    def __len__(self) -> int:
        return count_batches(len(self.dataset), self.batch_size, drop_single=self.drop_single)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        X, y = self.dataset.X, self.dataset.y
        n = len(X)
        order = None
        if self.shuffle:
            order = torch.randperm(n, generator=self._order_rng).to(X.device)
        indices = []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_single and stop - start == 1 and n > 1:
                break
            indices.append(slice(start, stop) if order is None else order[start:stop])
        if X.device.type == "cpu" and self.device.type == "cuda":
            batches = self._copied_ahead(X, y, indices)
        else:
            batches = ((X[i].to(self.device), None if y is None else y[i].to(self.device))
                       for i in indices)
        for xb, yb in batches:
            xb = to_float_batch(xb).contiguous(memory_format=self.memory_format)
            if self.transform is not None:
                xb = self.transform(xb, self._aug_rng)
            yield xb, yb

    def _copied_ahead(self, X, y, indices):
        """Host batches for a GPU, each copied on a side stream while the GPU works on the
        one before, through pinned memory so that the copy does not block the host.

        The next copy starts when the consumer asks for the next batch, that is after it
        queued its work on this one: the host gathers and copies while the GPU computes.
        """
        compute = torch.cuda.current_stream(self.device)
        copier = torch.cuda.Stream(self.device)

        def start_copy(index):
            xb, yb = X[index].pin_memory(), None if y is None else y[index].pin_memory()
            with torch.cuda.stream(copier):
                xb = xb.to(self.device, non_blocking=True)
                yb = None if yb is None else yb.to(self.device, non_blocking=True)
            return xb, yb

        pending = start_copy(indices[0]) if indices else None
        for k in range(len(indices)):
            compute.wait_stream(copier)
            xb, yb = pending
            # Allocated on the copy stream, used on the compute stream: the allocator
            # must not hand the memory out again before the compute stream is done with it.
            xb.record_stream(compute)
            if yb is not None:
                yb.record_stream(compute)
            yield xb, yb
            if k + 1 < len(indices):
                pending = start_copy(indices[k + 1])
