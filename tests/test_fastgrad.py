"""selmatch.fast.fastgrad: the same values as PyTorch's norms, and exact first and second derivatives."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selmatch.fast.fastgrad import BatchNorm, InstanceNorm, batch_norm_train, instance_norm


def _inputs(seed=0, shape=(4, 3, 5, 5)):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.double).mul_(3).add_(1).requires_grad_(True)
    w = torch.randn(shape[1], generator=g, dtype=torch.double).requires_grad_(True)
    b = torch.randn(shape[1], generator=g, dtype=torch.double).requires_grad_(True)
    return x, w, b


CASES = {
    "instance": (lambda x, w, b: instance_norm(x, w, b), lambda x, w, b: F.group_norm(x, x.shape[1], w, b, 1e-5)),
    "batch": (lambda x, w, b: batch_norm_train(x, w, b), lambda x, w, b: F.batch_norm(x, None, None, w, b, True, 0.1, 1e-5)),
}


@pytest.mark.parametrize("kind", CASES)
def test_values_and_derivatives_are_exact(kind):
    ours, ref = CASES[kind]
    x, w, b = _inputs()
    assert torch.allclose(ours(x, w, b), ref(x, w, b), atol=1e-12)
    assert torch.autograd.gradcheck(ours, (x, w, b))
    assert torch.autograd.gradgradcheck(ours, (x, w, b))


@pytest.mark.parametrize("kind", CASES)
def test_second_derivative_matches_pytorch_in_an_unroll_like_use(kind):
    """Differentiate a loss on the first-order gradients (as the matching loss does) w.r.t. the input,
    the scale and the incoming gradient; a bug in any term of the closed form shows here."""
    ours, ref = CASES[kind]
    x, w, b = _inputs(1)
    gy = torch.randn_like(x).requires_grad_(True)
    r = torch.randn_like(x)
    grads = []
    for fn in (ours, ref):
        gx, gw, gb = torch.autograd.grad((fn(x, w, b) * gy).sum(), (x, w, b), create_graph=True)
        loss = (gx * r).sum() + gw.square().sum() + (gb * gw).sum()
        grads.append(torch.autograd.grad(loss, (x, w, gy)))
    for a, e in zip(*grads):
        assert torch.allclose(a, e, rtol=1e-9, atol=1e-10)


def test_third_derivative_is_refused():
    x, w, b = _inputs()
    gx, = torch.autograd.grad(instance_norm(x, w, b).sin().sum(), x, create_graph=True)
    with pytest.raises(NotImplementedError, match="third"):      # a differentiable second derivative
        torch.autograd.grad(gx.square().sum(), x, create_graph=True)


def test_modules_match_pytorch_modules_and_keep_their_state_dicts():
    torch.manual_seed(0)
    x = torch.randn(8, 4, 6, 6)
    ours_in, ref_in = InstanceNorm(4), nn.GroupNorm(4, 4)
    assert ours_in.state_dict().keys() == ref_in.state_dict().keys()
    assert torch.allclose(ours_in(x), ref_in(x), atol=1e-6)
    ours_bn, ref_bn = BatchNorm(4), nn.BatchNorm2d(4)
    assert ours_bn.state_dict().keys() == ref_bn.state_dict().keys()
    for _ in range(3):                                   # running statistics follow nn.BatchNorm2d's
        assert torch.allclose(ours_bn(x), ref_bn(x), atol=1e-6)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.allclose(getattr(ours_bn, name).float(), getattr(ref_bn, name).float(), atol=1e-6), name
    ours_bn.eval(), ref_bn.eval()
    assert torch.allclose(ours_bn(x), ref_bn(x), atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 2, 6, 6), (2, 2, 5, 7)])
def test_relu_pool_is_exact_to_second_order(shape):
    from selmatch.fast.fastgrad import relu_pool

    z = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.double).requires_grad_(True)
    ref = lambda t: F.avg_pool2d(F.relu(t), 2, 2)  # noqa: E731
    assert torch.equal(relu_pool(z), ref(z))
    assert torch.autograd.gradcheck(relu_pool, (z,))
    gy = torch.randn_like(ref(z)).requires_grad_(True)
    r = torch.randn_like(z)
    grads = []
    for fn in (relu_pool, ref):
        gz, = torch.autograd.grad((fn(z) * gy).sum(), z, create_graph=True)
        grads.append(torch.autograd.grad((gz * r).sum(), gy))
    assert torch.allclose(grads[0][0], grads[1][0], atol=1e-12)


def _block_inputs(seed=0, x_grad=True, shape=(3, 2, 6, 6), c_out=3):
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g, dtype=torch.double)  # noqa: E731
    x = rnd(*shape).requires_grad_(x_grad)
    w = (rnd(c_out, shape[1], 3, 3) * 0.5).requires_grad_(True)
    return [x, w, *(rnd(c_out).requires_grad_(True) for _ in range(3))]


def _fused(kind):
    from selmatch.fast.fastgrad import _Block

    return lambda x, w, b, gamma, beta: _Block.apply(x, w, b, gamma, beta, kind == "instance", 1e-5, None, 0.0, None)


def _unfused(kind):
    norm = CASES[kind][1]
    return lambda x, w, b, gamma, beta: F.avg_pool2d(F.relu(norm(F.conv2d(x, w, b, padding=1), gamma, beta)), 2, 2)


@pytest.mark.parametrize("x_grad", [True, False])
@pytest.mark.parametrize("kind", CASES)
def test_fused_block_derivatives_are_exact(kind, x_grad):
    """conv -> norm -> ReLU -> pool as one operation (fastgrad._Block): values, first and second derivatives
    by finite differences, with and without a gradient for the block's input."""
    inputs = _block_inputs(x_grad=x_grad)
    assert torch.allclose(_fused(kind)(*inputs), _unfused(kind)(*inputs), atol=1e-12)
    assert torch.autograd.gradcheck(_fused(kind), inputs)
    assert torch.autograd.gradgradcheck(_fused(kind), inputs)


@pytest.mark.parametrize("kind", CASES)
def test_fused_block_matches_pytorch_in_an_unroll_like_use(kind):
    """A loss on every first-order gradient (as the matching loss sees them), differentiated w.r.t. the
    input, all parameters and the incoming gradient: equal to autograd through PyTorch's own operations."""
    inputs = _block_inputs(1, shape=(4, 3, 8, 8), c_out=5)
    gp = torch.randn(4, 5, 4, 4, dtype=torch.double, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
    results = []
    for fn in (_fused(kind), _unfused(kind)):
        first = torch.autograd.grad((fn(*inputs) * gp).sum(), inputs, create_graph=True)
        loss = sum((g * torch.linspace(-1, 1, g.numel(), dtype=g.dtype).view_as(g)).sum() + g.square().sum()
                   for g in first)
        results.append(torch.autograd.grad(loss, [*inputs[:4], gp]))   # β: no second-order path (ReLU mask only)
    for name, a, e in zip(("x", "w", "b", "gamma", "gp"), *results):
        assert torch.allclose(a, e, rtol=1e-9, atol=1e-10), name


def test_fused_block_keeps_less_for_the_unroll():
    """Under create_graph the fused block keeps the conv output, a bool mask and the output gradient —
    not the norm's and the convolution's block-sized incoming gradients."""
    from selmatch.fast.fastgrad import conv_block

    conv, norm = nn.Conv2d(3, 16, 3, padding=1), InstanceNorm(16)
    x = torch.randn(8, 3, 32, 32, requires_grad=True)

    def saved_bytes(fn):
        seen = {}

        def pack(t):
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = fn()
            torch.autograd.grad(out.square().sum(), [x, conv.weight], create_graph=True)
        return sum(seen.values())

    fused = saved_bytes(lambda: conv_block(x, conv, norm))
    unfused = saved_bytes(lambda: F.avg_pool2d(F.relu(norm(conv(x))), 2, 2))
    block = 8 * 16 * 32 * 32 * 4
    assert fused < 2.2 * block < 3.2 * block < unfused          # (both include x and the loss's own output)


def test_fused_batch_norm_block_updates_running_statistics_like_the_module():
    from selmatch.fast.fastgrad import conv_block

    torch.manual_seed(0)
    conv, ours, ref = nn.Conv2d(3, 4, 3, padding=1), BatchNorm(4), nn.BatchNorm2d(4)
    x = torch.randn(6, 3, 8, 8, requires_grad=True)
    for _ in range(3):
        assert torch.allclose(conv_block(x, conv, ours), F.avg_pool2d(F.relu(ref(conv(x))), 2, 2), atol=1e-6)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.allclose(getattr(ours, name).float(), getattr(ref, name).float(), atol=1e-6), name


def test_first_block_skips_the_image_gradient_autograd_will_not_use(monkeypatch):
    """As in the unroll: a step's gradient is taken w.r.t. the parameters only (the images' first-order
    gradient is not computed), and the matching loss then differentiates it w.r.t. the images — exactly."""
    from selmatch.fast import fastgrad

    conv, norm = nn.Conv2d(3, 4, 3, padding=1).double(), InstanceNorm(4).double()
    x0 = torch.randn(3, 3, 8, 8, dtype=torch.double, requires_grad=True)
    masks = []
    real = fastgrad._conv_backward
    monkeypatch.setattr(fastgrad, "_conv_backward", lambda gy, x, w, mask: masks.append(tuple(mask)) or real(gy, x, w, mask))
    params = [conv.weight, conv.bias, norm.weight]
    results = []
    for fn in (lambda x: fastgrad.conv_block(x, conv, norm, ask_input_grad=True),
               lambda x: F.avg_pool2d(F.relu(F.group_norm(conv(x), 4, norm.weight, norm.bias)), 2, 2)):
        x = x0 * 1.5                                                      # a non-leaf, like the augmented images
        first = torch.autograd.grad(fn(x).square().sum(), params, create_graph=True)
        results.append(torch.autograd.grad(sum(g.square().sum() for g in first), [x0, *params]))
    assert masks[0] == (False, True, True)                                # first order: no image gradient
    for a, e in zip(*results):
        assert torch.allclose(a, e, rtol=1e-9, atol=1e-10)
