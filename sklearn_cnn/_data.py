"""Image arrays for the network: layouts, sizes, pixel statistics, compact storage, the
dataset and its batch iterator, and how many images a prediction batch holds.

A lazy collection of image files (:class:`~sklearn_cnn.files.LazyImages`) stands wherever
an image tensor can; it is recognised as anything that is not a tensor, so that this module
needs nothing from the file side.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

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


def check_size(size) -> tuple[int, int] | None:
    """``size`` as (height, width), or None: an int is a square. ValueError for anything else.

    Examples
    --------
    >>> from sklearn_cnn._data import check_size
    >>> check_size(8), check_size((6, 4)), check_size(None)
    ((8, 8), (6, 4), None)
    """
    if size is None:
        return None
    values = [size, size] if isinstance(size, (int, np.integer)) else (
        list(size) if isinstance(size, (tuple, list)) else [])
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(
            v, bool) and v > 0 for v in values):
        raise ValueError(f"size must be a positive int or (height, width), got {size!r}.")
    return int(values[0]), int(values[1])


def resize_batch(images: torch.Tensor, size, *, interpolation: str = "bilinear",
                 antialias: bool = True) -> torch.Tensor:
    """Resize a batch (N, C, H, W) to ``size`` (height, width): torchvision's resize, the one
    resize behind ImageLoader, ImageResizer and their ONNX graphs.

    uint8 images are resized in float32 and rounded back to uint8, which is what an ONNX
    graph (and torch's ``interpolate``) computes; torchvision's integer kernel for uint8
    rounds differently, 1 off on some pixels, which would make the exported graph disagree
    with ``predict``. Other dtypes come back as float32.
    """
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    uint8 = images.dtype == torch.uint8
    resized = TF.resize(images.float(), list(size), interpolation=InterpolationMode(
        interpolation), antialias=antialias)
    return resized.round_().clamp_(0, 255).to(torch.uint8) if uint8 else resized


def to_channels_last(X: np.ndarray, *, data_format="channels_last", image_shape=None):
    """A checked array as (n_samples, height, width, channels), a view when possible."""
    if X.ndim == 2:
        return X.reshape(len(X), *infer_image_shape(X.shape[1], image_shape))
    if X.ndim == 3:
        return X[..., np.newaxis]
    if data_format == "channels_first":
        return X.transpose(0, 2, 3, 1)
    return X


def channel_statistics(images: np.ndarray, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of (N, H, W, C) images, in float64.

    Streams over chunks of ``chunk`` images, so a large uint8 dataset is never copied to
    float64 as a whole. A constant channel gets a standard deviation of 1 (no scaling).
    """
    n_channels = images.shape[-1]
    total = np.zeros(n_channels)
    total_sq = np.zeros(n_channels)
    count = math.prod(images.shape[:3])
    if images.dtype == np.uint8:
        # Exact and fast: a histogram of the 256 values per channel.
        values = np.arange(256, dtype=np.float64)
        for c in range(n_channels):
            histogram = np.zeros(256)
            for start in range(0, len(images), chunk):
                histogram += np.bincount(images[start:start + chunk, ..., c].ravel(),
                                         minlength=256)
            total[c], total_sq[c] = histogram @ values, histogram @ values**2
    else:
        for start in range(0, len(images), chunk):
            part = np.asarray(images[start:start + chunk], dtype=np.float64)
            total += part.sum(axis=(0, 1, 2))
            total_sq += np.square(part).sum(axis=(0, 1, 2))
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    std = np.where(std > 1e-12 * np.maximum(1.0, np.abs(mean)), std, 1.0)
    return mean, std


def pixel_range(images: np.ndarray, chunk: int = 4096) -> tuple[float, float]:
    """(min, max) of the pixels as the network sees them (uint8 scaled to [0, 1]), read in
    chunks so that a large array is never copied whole."""
    low, high = math.inf, -math.inf
    for start in range(0, len(images), chunk):
        part = images[start:start + chunk]
        low, high = min(low, float(part.min())), max(high, float(part.max()))
    if images.dtype == np.uint8:
        low, high = low / 255, high / 255
    return low, high


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
    """Images (N, C, H, W) as a whole tensor, or image files (a lazy collection, decoded per
    batch), and optional encoded targets (N,) or (N, k)."""

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

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(height, width) of the images; None for feature rows (N, F)."""
        if self.streams:
            return self.X.image_size
        return tuple(self.X.shape[-2:]) if self.X.dim() == 4 else None

    @property
    def streams(self) -> bool:
        """Whether the images are files, decoded batch by batch."""
        return not isinstance(self.X, torch.Tensor)


def place_dataset(dataset: ImageDataset, device: torch.device, max_fraction: float = 0.25,
                  max_bytes: float = float("inf")):
    """Move a dataset to a CUDA device at once when it fits in ``max_fraction`` of the free
    memory and in ``max_bytes``.

    It moves as it is stored, so uint8 images take one byte a pixel on the device too.
    A dataset left in host memory is copied batch by batch, each copy overlapping the
    device's work on the batch before (:class:`BatchIterator`).
    """
    if device.type != "cuda" or dataset.streams:
        return dataset
    nbytes = dataset.X.numel() * dataset.X.element_size()
    free, _ = torch.cuda.mem_get_info(device)
    if nbytes <= min(max_fraction * free, max_bytes):
        return dataset.to(device)
    return dataset


# Prediction copies images up to this size to a GPU at once, larger sets batch by batch.
PREDICT_AT_ONCE_BYTES = 64 * 2**20
# Pixels per prediction batch on a GPU (2048 images of 32×32): fewer launches per image,
# while a first layer of 32 float32 channels takes 256 MB.
_PREDICT_PIXELS = 2**21
# Input pixels per prediction batch on the CPU in float32 (twice as many in bfloat16).
_CPU_PREDICT_PIXELS = 2**16


def prediction_batch_size(device: torch.device, *, pixels: int, batch_size: int,
                          bfloat16: bool = False) -> int:
    """Images per prediction batch, for images of ``pixels`` pixels at the network's input.

    On a GPU, 4 training batches (``batch_size``) or more, up to ``_PREDICT_PIXELS`` pixels a
    batch: small networks there are bound by kernel launches, which a batch costs whatever
    its size. On the CPU, as many images as keep a batch's activations in the cache: the
    default ConvNet ran fastest at 2**17 input pixels a batch in bfloat16 (128 images of
    32×32, 2048 of 8×8; 2× faster than 256 and 128 images) and at 2**16 in float32; at least
    16 images, which suits ResNets at 224×224 (measured on 2 cores with a 2 MB L2).
    """
    if device.type == "cuda":
        return max(4 * batch_size, _PREDICT_PIXELS // pixels)
    budget = _CPU_PREDICT_PIXELS * (2 if bfloat16 else 1)
    return max(16, budget // pixels)


def count_batches(n_samples: int, batch_size: int, *, drop_single: bool = False,
                  world_size: int = 1) -> int:
    """Batches per pass over ``n_samples``, as :class:`BatchIterator` yields them: with
    ``drop_single``, no trailing single image after full batches; in a data-parallel fit of
    ``world_size`` processes, no batch with fewer images than processes."""
    if batch_size < world_size:
        return 0
    full, rest = divmod(n_samples, batch_size)
    single_dropped = rest == 1 and drop_single and full > 0
    return full + (rest >= world_size and rest > 0 and not single_dropped)


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
        Skip a trailing batch of one sample after full batches (batch norm cannot train on
        it); with ``batch_size=1`` every batch is kept.
    memory_format : torch.memory_format, default=torch.channels_last
        Memory format of the delivered batches; channels-last speeds convolutions up on CPU
        (oneDNN) and CUDA (cuDNN). See :func:`~sklearn_cnn.devices.memory_format_for`.
    mix : callable or None
        ``mix(batch, labels, generator) -> (batch, soft_labels)``: batch-level label mixing
        (:class:`~sklearn_cnn.augmentation.LabelMixing`), after ``transform``.
    shard : sklearn_cnn.distributed.Context or None
        In a data-parallel fit, this process's place: the batches keep their size and order
        across processes, and each process takes its share of every batch (only its share of
        image files is decoded). Batches with fewer images than processes are left out.
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
        mix: Callable | None = None,
        shard=None,
    ):
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.device = torch.device(device)
        self.transform = transform
        self.drop_single = drop_single
        self.memory_format = memory_format
        self.mix = mix
        self.shard = shard
        if shuffle or transform is not None or mix is not None:  # prediction needs none
            self._order_rng = torch.Generator()
            self._mix_rng = torch.Generator()
            self._aug_rng = torch.Generator(device=self.device)
            for offset, generator in enumerate([self._order_rng, self._aug_rng, self._mix_rng]):
                if seed is None:
                    generator.seed()
                elif shard is not None and offset > 0:  # each share augmented on its own
                    generator.manual_seed(seed + offset + 7919 * shard.rank)
                else:  # the order: the same in every process
                    generator.manual_seed(seed + offset)

    def __len__(self) -> int:
        return count_batches(len(self.dataset.X), self.batch_size, drop_single=self.drop_single,
                             world_size=1 if self.shard is None else self.shard.world_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor | None]]:
        X, y = self.dataset.X, self.dataset.y
        files = not isinstance(X, torch.Tensor)
        order = None
        if self.shuffle:
            order = torch.randperm(len(X), generator=self._order_rng)
            if not files:
                order = order.to(X.device)
        indices = self._index_batches(order)
        if files:
            # Decoded by DataLoader workers a few batches ahead, as (N, H, W, C) uint8.
            batches = ((xb.permute(0, 3, 1, 2).to(self.device),
                        None if y is None else y[i].to(self.device))
                       for xb, i in zip(X.batches(indices), indices))
        elif X.device.type == "cpu" and self.device.type == "cuda":
            batches = self._copied_ahead(X, y, indices)
        else:
            batches = ((X[i].to(self.device), None if y is None else y[i].to(self.device))
                       for i in indices)
        for xb, yb in batches:
            xb = to_float_batch(xb)
            if xb.dim() == 4:  # images; cached features are (N, F)
                xb = xb.contiguous(memory_format=self.memory_format)
            if self.transform is not None:
                xb = self.transform(xb, self._aug_rng)
            if self.mix is not None:
                xb, yb = self.mix(xb, yb, self._mix_rng)
            yield xb, yb

    def _index_batches(self, order: torch.Tensor | None) -> list:
        """Each batch's images: a slice, or indices into ``order``; in a data-parallel fit,
        this process's share of each."""
        n = len(self.dataset.X)
        indices = []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            if self.drop_single and stop - start == 1 and start > 0 and self.batch_size > 1:
                break  # a trailing single image after full batches
            if self.shard is None:
                indices.append(slice(start, stop) if order is None else order[start:stop])
                continue
            if stop - start < self.shard.world_size:
                break  # too few images for every process to take one
            if order is not None:
                batch = order[start:stop]
            elif isinstance(self.dataset.X, torch.Tensor):
                batch = torch.arange(start, stop, device=self.dataset.X.device)
            else:
                batch = torch.arange(start, stop)
            indices.append(self.shard.shard(batch))
        return indices

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


def split_dataset(dataset: ImageDataset, *, fraction: float | None, stratify: bool, seed: int,
                  why: str) -> tuple[ImageDataset, ImageDataset | None]:
    """The seeded validation split that is scored every epoch (and that early stopping
    monitors): ``fraction`` of the samples, stratified by class where ``stratify`` (the
    targets are class indices), or no split when ``fraction`` is None. ``why`` names the
    parameter that asked for it, for the error when the split is impossible."""
    if fraction is None:
        return dataset, None
    from sklearn.model_selection import train_test_split

    n = len(dataset)
    labels = dataset.y.cpu().numpy() if stratify else None
    try:
        train_idx, valid_idx = train_test_split(np.arange(n), test_size=fraction,
                                                stratify=labels, random_state=seed)
    except ValueError as exc:
        how = ", stratified by class," if stratify else ""
        fix = "early_stopping=False" if why == "early_stopping" else "validation_fraction=None"
        raise ValueError(
            f"{why} holds out validation_fraction={fraction} of the {n} training samples"
            f"{how} and cannot: {exc} Use more data, a larger validation_fraction, or "
            f"{fix}.") from None
    train_idx, valid_idx = torch.from_numpy(train_idx), torch.from_numpy(valid_idx)
    return (ImageDataset(dataset.X[train_idx], dataset.y[train_idx]),
            ImageDataset(dataset.X[valid_idx], dataset.y[valid_idx]))
