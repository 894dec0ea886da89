"""selmatch.train: one training loop for every fresh network; its fast paths compute the same step."""
from __future__ import annotations

import pytest
import torch

from selmatch.train import TrainConfig, new_model, train


def test_bad_config():
    with pytest.raises(ValueError, match="augmentation='autoaugment'"):
        TrainConfig(augmentation="autoaugment")
    with pytest.raises(ValueError, match="epochs=0 must be >= 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="x has 2 images but y has 1"):
        train(torch.zeros(2, 1, 8, 8), torch.tensor([0]), TrainConfig(model="convnet", width=4, depth=1), seed=0)


def one_step(cfg: TrainConfig, x, y, **kwargs) -> dict[str, torch.Tensor]:
    """The change one full-batch SGD step (lr 1, no momentum, no decay) makes to each weight: minus the
    gradient of that step, read through the whole training loop."""
    cfg = cfg.with_(epochs=1, lr=1.0, momentum=0.0, weight_decay=0.0, batch_size=len(x), augmentation="none")
    init = dict(new_model(cfg, x.shape[1], 4, x.shape[-1], seed=0).named_parameters())
    model = train(x, y, cfg, seed=0, num_classes=4, progress=False, **kwargs)
    return {n: (p.detach() - init[n].detach()).contiguous() for n, p in model.named_parameters()}


def assert_same_step(a: dict, b: dict) -> None:
    """float32 reorders sums differently in the two paths: one step's gradients agree to a few 1e-6 of the
    step's scale (1e-4 leaves a wide margin on any x86 CPU); a wrong computation differs at the scale itself.
    (Gradients that are zero in exact arithmetic, such as a conv bias before a norm, are rounding noise.)"""
    scale = max(d.abs().max().item() for d in a.values())
    assert scale > 1e-3                                                 # the step moved the weights
    for name in a:
        assert torch.allclose(a[name], b[name], rtol=1e-3, atol=1e-4 * scale), name


def test_compiled_training_is_the_same_computation(monkeypatch):
    """SELMATCH_COMPILE=1 trains through torch.compile: the same step as eager mode, to float rounding."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16, generator=g), torch.arange(32) % 4
    cfg = TrainConfig(model="convnet", width=8, depth=2)
    steps = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("SELMATCH_COMPILE", flag)
        steps[flag] = one_step(cfg, x, y)
    assert_same_step(steps["0"], steps["1"])


def test_channels_last_training_is_the_same_computation(monkeypatch):
    """ResNet-18-BN trains in channels-last memory in eager mode (faster on CPU): the same step as the
    default layout, to float rounding."""
    from selmatch.networks import ResNet18BN

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 3, 16, 16, generator=g), torch.arange(16) % 4
    cfg = TrainConfig(model="resnet18_bn", width=4)
    steps = {}
    for flag in (False, True):
        monkeypatch.setattr(ResNet18BN, "channels_last", flag)
        model = train(x, y, cfg.with_(epochs=1, batch_size=16, augmentation="none"), seed=0, num_classes=4,
                      progress=False)
        assert model.stem[0].weight.is_contiguous(memory_format=torch.channels_last) == flag
        steps[flag] = one_step(cfg, x, y)
    assert_same_step(steps[False], steps[True])


def test_device_is_checked_before_training():
    with pytest.raises(ValueError, match="device='cuda:7' is not available"):
        train(torch.zeros(4, 1, 8, 8), torch.arange(4) % 2, TrainConfig(model="convnet", width=4, depth=1), seed=0,
              device="cuda:7")
