"""selmatch.fast.recompute: block recomputation inside the twice-differentiated unroll is exact and keeps
only the block's inputs."""
from __future__ import annotations

import pytest
import torch

from selmatch.fast.recompute import recomputed
from selmatch.networks import build_model
from selmatch.student import ParamLayout, flatten, matching_loss, minibatches, unroll


def _unroll_grads(name: str, recompute: int, augmentation: str = "dsa"):
    torch.manual_seed(0)
    model = build_model(name, 3, 10, 16, width=8, depth=2)
    model.recompute_blocks = recompute
    layout = ParamLayout.of(model)
    start = flatten(model)
    target = start + 0.05 * torch.randn_like(start)
    x = torch.randn(24, 3, 16, 16).requires_grad_(True)
    y = torch.arange(24) % 10
    lr = torch.tensor(0.02, requires_grad=True)
    g = torch.Generator().manual_seed(1)
    batches = minibatches(24, 8, 5, g)
    theta = unroll(model, layout, start.clone().requires_grad_(True), x, y, lr, batches, g, augmentation)
    loss = matching_loss(theta, start, target)
    loss.backward()
    return loss.item(), theta.detach(), x.grad, lr.grad, model


@pytest.mark.parametrize("name", ["convnet", "convnet_bn", "convnet_nonorm"])
@pytest.mark.parametrize("recompute", [1, 2])
def test_recomputed_unroll_equals_plain(name, recompute):
    loss0, theta0, gx0, glr0, m0 = _unroll_grads(name, 0)
    loss1, theta1, gx1, glr1, m1 = _unroll_grads(name, recompute)
    assert loss1 == pytest.approx(loss0, rel=1e-6)
    assert torch.allclose(theta1, theta0, rtol=1e-6, atol=1e-7)
    assert torch.allclose(gx1, gx0, rtol=1e-5, atol=1e-5 * gx0.abs().max().item())
    assert glr1.item() == pytest.approx(glr0.item(), rel=1e-5)
    for b0, b1 in zip(m0.buffers(), m1.buffers()):      # BatchNorm statistics: updated once per forward
        assert torch.equal(b0, b1)


def test_recomputed_second_derivatives_match_finite_differences():
    def fn(h, w):
        return torch.tanh(h @ w).square()

    h = torch.randn(3, 4, dtype=torch.double, requires_grad=True)
    w = torch.randn(4, 2, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda a, b: recomputed(fn, a, b), (h, w))


def test_third_derivative_is_refused():
    h = torch.randn(5, requires_grad=True)
    out = recomputed(lambda a: a.sin(), h).sum()
    g, = torch.autograd.grad(out, h, create_graph=True)
    gg, = torch.autograd.grad(g.sum(), h, create_graph=False)
    assert torch.allclose(gg, -h.detach().sin())
    g, = torch.autograd.grad(recomputed(lambda a: a.sin(), h).sum(), h, create_graph=True)
    with pytest.raises(NotImplementedError, match="third"):
        torch.autograd.grad(g.sum(), h, create_graph=True)


def test_recomputed_block_keeps_only_its_inputs():
    """The forward of a recomputed first block saves no activation of the block's size (N x width x
    side x side); without recomputation it does."""
    def saved_shapes(recompute: int) -> list[tuple[int, ...]]:
        model = build_model("convnet", 3, 10, 16, width=8, depth=2)
        model.recompute_blocks = recompute
        shapes = []
        with torch.autograd.graph.saved_tensors_hooks(lambda t: shapes.append(tuple(t.shape)) or t, lambda t: t):
            model(torch.randn(4, 3, 16, 16, requires_grad=True))
        return shapes

    assert (4, 8, 16, 16) in saved_shapes(0)
    assert (4, 8, 16, 16) not in saved_shapes(1)
