"""The 1-D networks: padding that changes nothing, masked batch normalisation, the shortest
series each takes, and their shapes."""

import pytest
import torch

from sklearn_cnn.networks1d import (
    ARCHITECTURES,
    FCN,
    ConvNet1d,
    InceptionNet1d,
    MaskedBatchNorm1d,
    ResNet1d,
    SeriesInput,
    padding_free,
)

NETWORKS = [
    lambda: ConvNet1d(in_channels=2, n_outputs=3, filters=(4, 8), pooling=("max", "avg")),
    lambda: ConvNet1d(in_channels=2, n_outputs=3, filters=(4, 8), pooling="stride"),
    lambda: FCN(in_channels=2, n_outputs=3, filters=(4, 8, 4)),
    lambda: ResNet1d(in_channels=2, n_outputs=3, filters=(4, 8)),
    lambda: InceptionNet1d(in_channels=2, n_outputs=3, filters=(2, 2, 2, 2)),
]


@pytest.mark.parametrize("make", NETWORKS)
def test_a_series_gets_the_same_outputs_alone_and_padded(make):
    torch.manual_seed(0)
    net = make().eval()
    short = torch.randn(1, 2, 21) - 3.0  # negative: padding must not win a max pooling
    padded = torch.full((2, 2, 40), float("nan"))
    padded[0, :, :21] = short[0]
    padded[1] = torch.randn(2, 40)
    with torch.no_grad():
        torch.testing.assert_close(net(padded)[0], net(short)[0], rtol=1e-5, atol=1e-5)


def test_masked_batch_norm_counts_real_time_points_only():
    norm = MaskedBatchNorm1d(1, momentum=None)
    values = torch.tensor([[[1.0, 3.0, 99.0]], [[2.0, 2.0, 2.0]]])
    mask = torch.tensor([[[True, True, False]], [[True, True, True]]])
    norm.train()
    out = norm(values, mask)
    real = out[mask.expand_as(out)]
    torch.testing.assert_close(real.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)
    torch.testing.assert_close(norm.running_mean, torch.tensor([2.0]))
    # the unbiased variance of 1, 3, 2, 2, 2, as torch's own running statistics keep it
    torch.testing.assert_close(norm.running_var, torch.tensor([0.5]))


def test_padding_free_batches_compute_what_the_masked_norm_computes():
    torch.manual_seed(0)
    net = FCN(in_channels=1, n_outputs=2, filters=(4, 4)).train()
    x = torch.randn(4, 1, 30)
    masked = net(x)
    with padding_free(net):
        plain = net(x)
    torch.testing.assert_close(masked, plain, rtol=1e-4, atol=1e-5)


def test_series_normalisation_and_flat_channels():
    values, mask = SeriesInput(2)(torch.tensor([[[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]]))
    torch.testing.assert_close(values[0, 1], torch.zeros(3))  # flat: zeros, not NaN
    channel = SeriesInput(1, normalize="channel")
    channel.set_statistics([10.0], [2.0])
    torch.testing.assert_close(channel(torch.full((1, 1, 2), 14.0))[0], torch.full((1, 1, 2), 2.0))


@pytest.mark.parametrize("name, kwargs, shortest", [
    ("fcn", {}, 4),                                                  # kernel 8
    ("resnet", {"kernel_sizes": (3, 3)}, 2),
    ("inception", {"kernel_sizes": (39, 19, 9)}, 5),                 # the shortest branch
    ("convnet", {"kernel_size": 3, "pooling": "max"}, 8),            # three halvings
    ("convnet", {"kernel_size": 9, "pooling": (None, None, "max")}, 5),
])
def test_the_shortest_series_each_network_takes(name, kwargs, shortest):
    net = ARCHITECTURES[name](in_channels=1, n_outputs=2, **kwargs).eval()
    assert net.min_length == shortest
    with torch.no_grad():
        assert net(torch.randn(2, 1, shortest)).shape == (2, 2)
