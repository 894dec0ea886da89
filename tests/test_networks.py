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
