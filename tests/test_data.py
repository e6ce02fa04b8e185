"""Image arrays for the network (``_data.py``): statistics, sizes, the batch iterator."""

import numpy as np
import pytest
import torch

from sklearn_cnn._data import (
    BatchIterator,
    ImageDataset,
    channel_statistics,
    check_size,
    count_batches,
    pixel_range,
    prediction_batch_size,
)


def test_channel_statistics_stream_in_chunks():
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, size=(50, 4, 4, 3), dtype=np.uint8)
    mean, std = channel_statistics(images, chunk=7)
    np.testing.assert_allclose(mean, images.reshape(-1, 3).mean(axis=0))
    np.testing.assert_allclose(std, images.reshape(-1, 3).std(axis=0))
    _, constant_std = channel_statistics(np.full((3, 2, 2, 1), 5.0))
    assert constant_std.tolist() == [1.0]


@pytest.mark.parametrize("n, batch_size, expected", [(10, 1, 10), (10, 3, 3), (10, 4, 3),
                                                     (9, 4, 2), (1, 4, 1), (2, 1, 2)])
def test_batches_drop_only_a_trailing_single_image(n, batch_size, expected):
    dataset = ImageDataset(torch.zeros(n, 1, 2, 2), torch.zeros(n, dtype=torch.long))
    batches = list(BatchIterator(dataset, batch_size, drop_single=True))
    assert len(batches) == expected == count_batches(n, batch_size, drop_single=True)
    assert all(len(xb) > 1 for xb, _ in batches) or batch_size == 1 or n == 1


@pytest.mark.parametrize("world_size", [1, 2, 3])
@pytest.mark.parametrize("drop_single", [False, True])
def test_the_batch_count_is_what_the_iterator_yields(world_size, drop_single):
    # One rule for len() (and the learning-rate schedules' step counts) and the batches.
    from sklearn_cnn.distributed import Context

    for n in range(1, 12):
        dataset = ImageDataset(torch.zeros(n, 1, 2, 2), torch.zeros(n, dtype=torch.long))
        for batch_size in range(1, 6):
            for rank in range(world_size):
                shard = None if world_size == 1 else Context(rank, world_size)
                batches = BatchIterator(dataset, batch_size, shuffle=True, seed=0,
                                        drop_single=drop_single, shard=shard)
                assert len(batches) == len(list(batches)) == count_batches(
                    n, batch_size, drop_single=drop_single, world_size=world_size), (
                    n, batch_size, rank)


def test_datasets_know_their_image_size(tmp_path):
    # Prediction batches are sized by it: a lazy collection is (n, H, W, C), a tensor
    # (N, C, H, W), cached features (N, F) have none.
    from PIL import Image

    from sklearn_cnn.files import LazyImages

    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((6, 10, 3), np.uint8)).save(path)
    assert ImageDataset(LazyImages([path, path])).image_size == (6, 10)
    assert ImageDataset(torch.zeros(2, 3, 6, 10)).image_size == (6, 10)
    assert ImageDataset(torch.zeros(2, 512)).image_size is None


def test_sizes_are_parsed_in_one_place():
    assert check_size(5) == (5, 5) and check_size((3, 4)) == (3, 4) and check_size(None) is None
    for bad in [0, (3,), (3, 0), "8", (2.5, 3), True]:
        with pytest.raises(ValueError, match="size must be a positive int or"):
            check_size(bad)


def test_pixel_range_scales_uint8_and_reads_in_chunks():
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3, 1) * 10
    assert pixel_range(images, chunk=1) == (0.0, 170 / 255)
    assert pixel_range(np.array([[[[-2.0]]], [[[5.0]]]]), chunk=1) == (-2.0, 5.0)


def test_prediction_batches_keep_activations_in_cache():
    cpu = torch.device("cpu")
    # 2**16 input pixels a batch in float32, twice as many in bfloat16, at least 16 images.
    assert prediction_batch_size(cpu, pixels=64, batch_size=32) == 1024
    assert prediction_batch_size(cpu, pixels=64, batch_size=32, bfloat16=True) == 2048
    assert prediction_batch_size(cpu, pixels=224 * 224, batch_size=32) == 16
