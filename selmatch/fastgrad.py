"""ConvNet's block operations with cheap second derivatives, for the distillation unroll.

Trajectory matching differentiates each student step's gradient once more. Profiling the ConvNet-128
unroll on a 2-core CPU (torch.profiler, see the library page of the book) found two costs that are
not the convolutions:

* GroupNorm / BatchNorm: PyTorch computes their second derivative with a general composite formula of
  some thirty full-size elementwise operations (about a fifth of a step). The same derivative reduces
  to five per-group means and two elementwise passes: :func:`instance_norm`, :func:`batch_norm_train`.
* ReLU followed by 2x2 average pooling: the backward of each is linear in the incoming gradient, so
  its derivative w.r.t. the forward input is zero — but autograd materialises that zero as a
  full-size tensor (and adds it up) for both operations in every step. :func:`relu_pool` fuses the
  two, keeps a boolean mask instead of the ReLU output (a quarter of the memory), and returns no
  gradient where there is none.

Normalisation, in formulas. Per normalised group (one (sample, channel) pair for instance norm, one
channel for batch norm; ``mean`` is over the group's D elements):

    x̂ = (x - μ)·s,  s = (var + eps)^-1/2,  y = γ·x̂ + β
    first derivative, given gy:
        gβ = Σ gy,  gγ = Σ gy·x̂,  gx = γ·s·(gy - mean(gy) - x̂·mean(gy·x̂))

The first derivative uses PyTorch's own kernels (``native_group_norm_backward`` and
``native_batch_norm_backward``). Its derivative, given the incoming gradients (ggx, ggγ, ggβ) of
(gx, gγ, gβ), with a1 = mean(ggx), a2 = mean(ggx·x̂), m1 = mean(gy), m2 = mean(gy·x̂), q = mean(ggx·gy)
and r = q - a1·m1 - a2·m2:

    w.r.t. gy:  γ·s·(ggx - a1 - x̂·a2) + ggγ·x̂ + ggβ
    w.r.t. γ:   Σ over the groups of channel c of D·s·r
    w.r.t. x:   s·(G - mean(G) - x̂·mean(G·x̂)) - γ·s²·r·x̂,  with G = -γ·s·m2·ggx + (ggγ - γ·s·a2)·gy

(the first term moves x̂ at fixed s, as in the first derivative; the second is the change of s). Both
mean(G) and mean(G·x̂) follow from a1, a2, m1, m2, so no further pass is needed. ``tests/test_fastgrad.py``
checks values, first and second derivatives against ``F.group_norm`` / ``F.batch_norm`` (and
``relu_pool`` against ``F.avg_pool2d(F.relu(.))``); third derivatives raise ``NotImplementedError``
(nothing here needs them).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

aten = torch.ops.aten


def _bcast(t: torch.Tensor, x: torch.Tensor, per_sample: bool) -> torch.Tensor:
    """Per-group statistics ((N, C) for instance norm, (C,) for batch norm) shaped to broadcast on x."""
    shape = (x.shape[0], x.shape[1]) if per_sample else (1, x.shape[1])
    return t.reshape(*shape, *([1] * (x.dim() - 2)))


class _Norm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, per_sample: bool, eps: float, running: tuple | None, momentum: float):
        if per_sample:
            n, c = x.shape[:2]
            y, mean, rstd = aten.native_group_norm(x, weight, bias, n, c, x[0, 0].numel(), c, eps)
        else:
            rm, rv = running if running is not None else (None, None)
            y, mean, rstd = aten.native_batch_norm(x, weight, bias, rm, rv, True, momentum, eps)
        ctx.per_sample, ctx.eps = per_sample, eps
        ctx.save_for_backward(x, weight, mean, rstd)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, weight, mean, rstd = ctx.saved_tensors
        gx, gw, gb = _NormGrad.apply(gy, x, weight, mean, rstd, ctx.per_sample, ctx.eps)
        return gx, gw, gb, None, None, None, None


class _NormGrad(torch.autograd.Function):
    """``(gy, x, γ) -> (gx, gγ, gβ)`` by PyTorch's kernels; its own backward is the closed form above."""

    @staticmethod
    def forward(ctx, gy, x, weight, mean, rstd, per_sample: bool, eps: float):
        mask = [True, True, True]
        if per_sample:
            n, c = x.shape[:2]
            out = aten.native_group_norm_backward(gy.contiguous(), x, mean, rstd, weight, n, c, x[0, 0].numel(), c,
                                                  mask)
        else:
            out = aten.native_batch_norm_backward(gy.contiguous(), x, weight, None, None, mean, rstd, True, eps,
                                                  mask)
        ctx.per_sample = per_sample
        ctx.save_for_backward(gy, x, weight, mean, rstd)
        return out

    @staticmethod
    def backward(ctx, ggx, ggw, ggb):
        if torch.is_grad_enabled():
            raise NotImplementedError("fastgrad supports second derivatives, not third")
        gy, x, weight, mean, rstd = ctx.saved_tensors
        per = ctx.per_sample
        dims = tuple(range(2, x.dim())) if per else (0, *range(2, x.dim()))
        d = x[0, 0].numel() * (1 if per else x.shape[0])
        s, mu = _bcast(rstd, x, per), _bcast(mean, x, per)
        gs = _bcast(weight, x, False) * s
        ggw = _bcast(torch.zeros_like(weight) if ggw is None else ggw, x, False)
        ggb = _bcast(torch.zeros_like(weight) if ggb is None else ggb, x, False)
        # The five per-group means, each one read pass (x̂ = s·(x - μ) is never formed).
        m1, sx_gy = gy.mean(dims, keepdim=True), _dot_mean(gy, x, dims, per)
        m2 = s * (sx_gy - mu * m1)
        if ggx is None:
            a1 = a2 = q = torch.zeros_like(m1)
        else:
            a1, q = ggx.mean(dims, keepdim=True), _dot_mean(ggx, gy, dims, per)
            a2 = s * (_dot_mean(ggx, x, dims, per) - mu * a1)
        r = q - a1 * m1 - a2 * m2
        g_w = (d * s * r).sum(0).flatten() if per else (d * s * r).flatten()
        # w.r.t. gy: gs·ggx + cx·x̂ + (ggβ - gs·a1), with cx = ggγ - gs·a2 (= al2 below)
        al2 = ggw - gs * a2
        g_gy = _combine([(ggx, gs), (x, al2 * s)], ggb - gs * a1 - al2 * s * mu)
        # w.r.t. x: s·al1·ggx + s·al2·gy + k·x̂ - s·mean(G), G = al1·ggx + al2·gy
        al1 = -gs * m2
        k = -s * (al1 * a2 + al2 * m2) - gs * s * r
        g_x = _combine([(ggx, s * al1), (gy, s * al2), (x, k * s)], -k * s * mu - s * (al1 * a1 + al2 * m1))
        return g_gy, g_x, g_w, None, None, None, None


def _dot_mean(a: torch.Tensor, b: torch.Tensor, dims: tuple, per_sample: bool) -> torch.Tensor:
    """Per-group mean of a·b, without materialising the product when groups are contiguous rows."""
    if per_sample:
        n, c = a.shape[:2]
        dot = torch.bmm(a.reshape(n * c, 1, -1), b.reshape(n * c, -1, 1))
        return dot.reshape(n, c, *([1] * (a.dim() - 2))) / a[0, 0].numel()
    return (a * b).mean(dims, keepdim=True)


def _combine(terms: list, const: torch.Tensor) -> torch.Tensor:
    """Σ tensor·coefficient + const, with per-group coefficients (None tensors are skipped)."""
    terms = [(t, c) for t, c in terms if t is not None]
    out = torch.mul(terms[0][0], terms[0][1])
    for t, c in terms[1:]:
        out.addcmul_(t, c)
    return out.add_(const)


class _ReluPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, z):
        mask = z > 0
        ctx.save_for_backward(mask)
        return F.avg_pool2d(F.relu(z), 2, 2)

    @staticmethod
    def backward(ctx, gy):
        mask, = ctx.saved_tensors
        return _ReluPoolGrad.apply(gy, mask)


class _ReluPoolGrad(torch.autograd.Function):
    """``gy -> mask·upsample(gy)/4``; linear in gy, so its backward is ``avg_pool2d(mask·ggz)`` and it
    has no gradient w.r.t. the forward input."""

    @staticmethod
    def forward(ctx, gy, mask):
        ctx.save_for_backward(mask)
        n, c, h, w = mask.shape
        if h % 2 or w % 2:                                  # odd sizes: the last row/column is not pooled
            up = aten.avg_pool2d_backward(gy, mask.new_empty(mask.shape, dtype=gy.dtype), [2, 2], [2, 2], [0, 0],
                                          False, True, None)
            return up.mul_(mask)
        # upsampling and masking in one pass (F.interpolate is 3x slower on CPU)
        up = gy.mul(0.25)[:, :, :, None, :, None].expand(n, c, h // 2, 2, w // 2, 2)
        return (up * mask.view(n, c, h // 2, 2, w // 2, 2)).view(n, c, h, w)

    @staticmethod
    def backward(ctx, ggz):
        if torch.is_grad_enabled():
            raise NotImplementedError("fastgrad supports second derivatives, not third")
        mask, = ctx.saved_tensors
        return F.avg_pool2d(ggz * mask, 2, 2), None


def relu_pool(z: torch.Tensor) -> torch.Tensor:
    """``F.avg_pool2d(F.relu(z), 2, 2)`` with a cheap second derivative and a boolean mask saved
    instead of the ReLU output. Like ``F.relu``, its derivative at exactly 0 is taken as 0."""
    return _ReluPool.apply(z)


def instance_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``F.group_norm(x, C, weight, bias, eps)`` (one group per channel) with the cheap second derivative."""
    return _Norm.apply(x, weight, bias, True, eps, None, 0.0)


def batch_norm_train(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, running_mean=None,
                     running_var=None, momentum: float = 0.1, eps: float = 1e-5) -> torch.Tensor:
    """``F.batch_norm(..., training=True)`` (batch statistics; running statistics updated in place when
    given) with the cheap second derivative."""
    running = None if running_mean is None else (running_mean, running_var)
    return _Norm.apply(x, weight, bias, False, eps, running, momentum)


class InstanceNorm(nn.GroupNorm):
    """``nn.GroupNorm(C, C)`` (the official "instancenorm") computed by :func:`instance_norm`; the same
    parameters and state-dict keys."""

    def __init__(self, channels: int, eps: float = 1e-5):
        super().__init__(channels, channels, eps=eps, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return instance_norm(x, self.weight, self.bias, self.eps)


class BatchNorm(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` whose training-mode forward is :func:`batch_norm_train`; evaluation mode and
    the running-statistics bookkeeping are unchanged."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return super().forward(x)
        return self.train_forward(x, self.weight, self.bias)

    def train_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                      update: bool = True) -> torch.Tensor:
        """Training-mode output with the given affine parameters (``selmatch.recompute`` passes its own
        leaves); the running statistics are updated only when ``update``."""
        momentum = self.momentum
        if update and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked)
        stats = update and self.track_running_stats
        rm, rv = (self.running_mean, self.running_var) if stats else (None, None)
        return batch_norm_train(x, weight, bias, rm, rv, momentum or 0.0, self.eps)
