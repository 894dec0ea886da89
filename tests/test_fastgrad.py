"""selmatch.fastgrad: the same values as PyTorch's norms, and exact first and second derivatives."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selmatch.fastgrad import BatchNorm, InstanceNorm, batch_norm_train, instance_norm


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
    from selmatch.fastgrad import relu_pool

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
