"""selmatch.student: the parameter layout, minibatch draws, the differentiable unroll, the matching loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conftest import explicit_sgd
from selmatch.networks import build_model
from selmatch.student import ParamLayout, flatten, matching_loss, minibatches, step_loss, unroll


def test_unroll_equals_explicit_sgd():
    torch.manual_seed(0)
    model = build_model("convnet", 1, 10, 16, width=4, depth=2)
    x, y = torch.randn(40, 1, 16, 16), torch.randint(0, 10, (40,))
    batches = minibatches(40, 16, 5, torch.Generator().manual_seed(0))
    layout = ParamLayout.of(model)
    theta = flatten(model).requires_grad_(True)
    got = unroll(model, layout, theta, x, y, torch.tensor(0.05), batches)
    assert torch.allclose(got.detach(), explicit_sgd(model, x, y, batches, 0.05), atol=1e-5)


def test_layout_round_trip_and_names():
    model = build_model("convnet_bn", 3, 10, 32, width=8)
    layout = ParamLayout.of(model)
    theta = flatten(model)
    assert layout.numel == len(theta) == sum(p.numel() for p in model.parameters())
    views = layout.unflatten(theta)
    assert list(views) == [n for n, _ in model.named_parameters()]
    for (name, p) in model.named_parameters():
        assert torch.equal(views[name], p.detach())
    assert layout == ParamLayout.from_lists(list(layout.names), [list(s) for s in layout.shapes])
    assert layout != ParamLayout.of(build_model("convnet_bn", 3, 10, 32, width=4))


def test_minibatches_cover_every_image_once_per_pass():
    g = torch.Generator().manual_seed(0)
    batches = minibatches(10, 4, 3, g)                      # 10 images in chunks of 4: 4 + 4 + 2
    assert [len(b) for b in batches] == [2, 4, 4]           # MTT pops chunks from the end
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert all(len(b) == 7 for b in minibatches(7, None, 3, g))   # None: the whole set each step


def test_step_loss_is_the_module_loss():
    torch.manual_seed(1)
    model = build_model("convnet", 3, 10, 16, width=4, depth=2)
    x, y = torch.randn(8, 3, 16, 16), torch.randint(0, 10, (8,))
    idx = torch.tensor([1, 5, 6])
    got = step_loss(model, ParamLayout.of(model), flatten(model), x, y, idx, None)
    assert got.item() == pytest.approx(F.cross_entropy(model(x[idx]), y[idx]).item(), rel=1e-6)


def test_matching_loss_is_one_at_the_start_and_zero_at_the_target():
    start, target = torch.zeros(5), torch.arange(5.0)
    assert matching_loss(start, start, target).item() == pytest.approx(1.0)
    assert matching_loss(target, start, target).item() == 0.0
