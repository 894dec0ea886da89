"""Every registered network at 32x32 and 64x64: logits and penultimate features of the right shape."""
from __future__ import annotations

import pytest
import torch

from selmatch.networks import MODELS, build_model


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("size", [32, 64])
def test_shapes(name, size):
    width = 8 if "convnet" in name else 4
    net = build_model(name, 3, 10, size, width=width).eval()
    x = torch.randn(2, 3, size, size)
    assert net(x).shape == (2, 10)
    feats = net.embed(x)
    assert feats.ndim == 2 and feats.shape[0] == 2 and net.classifier.in_features == feats.shape[1]


def test_paper_defaults_and_variants():
    conv = build_model("convnet", 3, 10, 32)
    assert isinstance(conv.body[1], torch.nn.GroupNorm) and conv.body[1].num_groups == 128
    assert conv.classifier.in_features == 128 * 4 * 4
    assert isinstance(build_model("convnet_bn", 3, 10, 32).body[1], torch.nn.BatchNorm2d)
    assert build_model("convnet_d4", 3, 200, 64).classifier.in_features == 128 * 4 * 4
    assert build_model("convnet", 1, 10, 28, width=8, depth=2).classifier.in_features == 8 * 7 * 7
    r = build_model("resnet18_bn", 3, 10, 32)
    assert r.stem[0].stride == (1, 1) and r.classifier.in_features == 512
    assert build_model("resnet18_bn_tiny", 3, 200, 64).stem[0].stride == (2, 2)
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in r.modules())


def test_bad_names_and_overrides():
    with pytest.raises(ValueError, match="convnet, convnet_bn"):
        build_model("vgg11", 3, 10, 32)
    with pytest.raises(ValueError, match="depth=6"):
        build_model("convnet", 3, 10, 32, depth=6)
    with pytest.raises(ValueError, match="ConvNet"):
        build_model("resnet18_bn", 3, 10, 32, depth=2)


def stock_convnet(model, x):
    """The ConvNet of the paper written with PyTorch's own modules and functions, from ``model``'s weights."""
    for i in range(model.depth):
        conv, norm = model.body[4 * i], model.body[4 * i + 1]
        z = torch.nn.functional.conv2d(x, conv.weight, conv.bias, padding=1)
        if isinstance(norm, torch.nn.GroupNorm):
            z = torch.nn.functional.group_norm(z, norm.num_groups, norm.weight, norm.bias, norm.eps)
        elif isinstance(norm, torch.nn.BatchNorm2d):
            z = torch.nn.functional.batch_norm(z, norm.running_mean.clone(), norm.running_var.clone(), norm.weight,
                                               norm.bias, training=norm.training, eps=norm.eps)
        x = torch.nn.functional.avg_pool2d(torch.relu(z), 2, 2)
    return model.classifier(x.flatten(1))


@pytest.mark.parametrize("name", ["convnet", "convnet_bn", "convnet_nonorm"])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_every_convnet_path_is_the_same_block(name, mode):
    """ConvNet's block is defined once (selmatch.fast.fastgrad.block): the fused path that runs under
    autograd, the stage-by-stage path without it and the recomputed path all give the stock-module values."""
    torch.manual_seed(0)
    model = build_model(name, 3, 10, 16, width=8, depth=2)
    model.train(mode == "train")
    x = torch.randn(6, 3, 16, 16)
    want = stock_convnet(model, x)
    with torch.no_grad():
        plain = model(x)
    fused = model(x)
    model.recompute_blocks = 1
    recomputed = model(x)
    for got in (plain, fused, recomputed):
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(want, stock_convnet(build_model(name, 3, 10, 16, width=8, depth=2), x), atol=1e-3)
