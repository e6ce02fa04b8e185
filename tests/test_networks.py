"""The network modules and the helpers that look at them (``networks.py``)."""

import pytest
import torch
from torch import nn

from sklearn_cnn.networks import (
    ConvNet,
    InputAdapter,
    ModelSummary,
    Standardize,
    TransferNet,
    eval_mode,
    network_input_size,
    probe,
    uncompiled,
)


@pytest.mark.parametrize("size", [(1, 9), (8, 8), (7, 13), (64, 64)])
@pytest.mark.parametrize("pooling", ["max", "avg", None])
def test_convnet_adapts_to_the_image_size(size, pooling):
    net = ConvNet(in_channels=3, n_classes=4, input_size=size, filters=(4, 8, 8),
                  pooling=pooling).eval()
    assert net(torch.zeros(2, 3, *size)).shape == (2, 4)


def test_convnet_options_shape_the_layers():
    plain = ConvNet(in_channels=1, n_classes=2, input_size=(8, 8), filters=(4,),
                    batch_norm=False, hidden_units=(5,), dropout=0.5)
    kinds = [type(m).__name__ for m in plain.modules() if not list(m.children())]
    assert "BatchNorm2d" not in kinds
    assert [m.out_features for m in plain.classifier if isinstance(m, nn.Linear)] == [5, 2]
    assert plain.features[0].bias is not None  # a bias where no batch norm follows


def test_standardize_holds_its_statistics_as_buffers():
    layer = Standardize(3)
    layer.set_statistics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    x = torch.ones(1, 3, 2, 2) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1)
    assert torch.equal(layer(x), torch.zeros_like(x))
    assert set(layer.state_dict()) == {"mean", "std"}


def test_input_adapter_repeats_gray_resizes_and_normalises():
    adapter = InputAdapter(size=(4, 4), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    out = adapter(torch.ones(2, 1, 8, 8))
    assert out.shape == (2, 3, 4, 4)
    torch.testing.assert_close(out, torch.ones_like(out))


def test_transfer_net_keeps_frozen_batch_norm_in_eval_mode():
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(),
                             nn.LazyLinear(2))
    backbone[1].requires_grad_(False)
    net = TransferNet(adapter=InputAdapter(size=(6, 6), mean=(0,) * 3, std=(1,) * 3),
                      backbone=backbone, head_name="3")
    net.train()
    assert net.training and backbone[0].training and not backbone[1].training
    assert network_input_size(net, (100, 50)) == (6, 6)


def test_eval_mode_restores_the_mode_after_an_error():
    net = nn.Sequential(nn.Dropout())
    with pytest.raises(RuntimeError), eval_mode(net):
        assert not net.training
        raise RuntimeError
    assert net.training


def test_probe_sees_every_layer_in_eval_mode_without_gradients():
    net = ConvNet(in_channels=1, n_classes=2, input_size=(8, 8), filters=(4, 8))
    seen = []
    probe(net, (8, 8, 1), list(net.features),
          lambda layer, inputs, out: seen.append((layer.training, out.requires_grad)))
    assert len(seen) == len(net.features) and set(seen) == {(False, False)}
    assert net.training  # restored


def test_summary_counts_parameters_and_shapes():
    net = ConvNet(in_channels=1, n_classes=10, input_size=(8, 8), filters=(4,))
    table = ModelSummary.of(net, (8, 8, 1), title="ConvNet")
    expected = sum(p.numel() for p in net.parameters())
    assert table.total_params == table.trainable_params == expected
    assert "(1, 10)" not in table and "(10,)" in table and "(4, 8, 8)" in table
    net.features.requires_grad_(False)
    assert ModelSummary.of(net, (8, 8, 1), title="x").trainable_params < expected


def test_uncompiled_finds_the_module_behind_torch_compile():
    net = ConvNet(in_channels=1, n_classes=2, input_size=(8, 8), filters=(4,))
    assert uncompiled(net) is net
    assert uncompiled(torch.compile(net)) is net
