"""selmatch.fast.constant: constant-memory trajectory matching computes the default mode's gradients."""
from __future__ import annotations

import pytest
import torch

from selmatch.fast.constant import matching_grads
from selmatch.networks import build_model
from selmatch.student import ParamLayout, flatten, matching_loss, minibatches, unroll


@pytest.mark.parametrize("augmentation", ["none", "dsa"])
def test_constant_memory_gradients_equal_default(augmentation):
    torch.manual_seed(0)
    model = build_model("convnet_bn", 1, 10, 16, width=4, depth=2)
    layout = ParamLayout.of(model)
    start = flatten(model)
    target = start + 0.05 * torch.randn_like(start)
    x_sel, x_dis0 = torch.randn(12, 1, 16, 16), torch.randn(20, 1, 16, 16)
    y = torch.randint(0, 10, (32,))
    batches = minibatches(32, 8, 6, torch.Generator().manual_seed(1))

    x_dis = x_dis0.clone().requires_grad_(True)
    lr = torch.tensor(0.02, requires_grad=True)
    g = torch.Generator().manual_seed(2)
    theta = unroll(model, layout, start.clone().requires_grad_(True), torch.cat([x_sel, x_dis]), y, lr,
                   batches, g, augmentation)
    loss = matching_loss(theta, start, target)
    loss.backward()
    g2 = torch.Generator().manual_seed(2)
    loss_c, gx, glr = matching_grads(model, layout, start, target, x_sel, x_dis0, y, torch.tensor(0.02),
                                     batches, g2, augmentation)
    assert loss_c.item() == pytest.approx(loss.item(), rel=1e-5)
    assert torch.allclose(gx, x_dis.grad, rtol=1e-4, atol=1e-4 * x_dis.grad.abs().max().item())
    assert glr.item() == pytest.approx(lr.grad.item(), rel=1e-4)
    assert torch.equal(g.get_state(), g2.get_state())          # both modes consume the generator identically
