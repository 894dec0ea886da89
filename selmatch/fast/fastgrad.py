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

Memory. Under ``create_graph=True`` autograd keeps, for each of the four operations of a block, what
its backward and its backward's backward need: the convolution's output, the norm's incoming gradient
and the convolution's incoming gradient are each a full block-sized tensor (three of them, 157 MB a
step for ConvNet-128's first block at batch 100). :func:`conv_block` runs conv -> norm -> ReLU -> pool as
one operation that keeps the convolution's output, the norm's statistics and the ReLU mask, and whose
backward keeps only the gradient reaching the block's output (a quarter of a block): the inner
gradients are recomputed in the backward's backward from it (one elementwise pass and the norm's
backward kernel), and the three stages' second derivatives are chained by hand. That halves what an
unrolled step keeps (247 -> 127 MB at width 128, batch 100). It also asks autograd whether the images'
first-order gradient will be used before computing it (``torch._C._will_engine_execute_node``, as
``torch.utils.checkpoint`` does): in the unroll it is not, and PyTorch's own convolution skips it too.

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
``relu_pool`` against ``F.avg_pool2d(F.relu(.))``, ``conv_block`` against the four PyTorch operations);
third derivatives raise ``NotImplementedError`` (nothing here needs them).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F
from torch.autograd.graph import get_gradient_edge

aten = torch.ops.aten


def _bcast(t: torch.Tensor, x: torch.Tensor, per_sample: bool) -> torch.Tensor:
    """Per-group statistics ((N, C) for instance norm, (C,) for batch norm) shaped to broadcast on x."""
    shape = (x.shape[0], x.shape[1]) if per_sample else (1, x.shape[1])
    return t.reshape(*shape, *([1] * (x.dim() - 2)))


def _norm_forward(x, weight, bias, per_sample: bool, eps: float, running: tuple | None, momentum: float):
    """(y, mean, rstd) by PyTorch's kernel; batch norm updates ``running`` (mean, var) in place when given."""
    if per_sample:
        n, c = x.shape[:2]
        return aten.native_group_norm(x, weight, bias, n, c, x[0, 0].numel(), c, eps)
    rm, rv = running if running is not None else (None, None)
    return aten.native_batch_norm(x, weight, bias, rm, rv, True, momentum, eps)


def _norm_backward(gy, x, weight, mean, rstd, per_sample: bool, eps: float, mask=(True, True, True)):
    """(gx, gγ, gβ) by PyTorch's kernel."""
    if per_sample:
        n, c = x.shape[:2]
        return aten.native_group_norm_backward(gy.contiguous(), x, mean, rstd, weight, n, c, x[0, 0].numel(), c,
                                               list(mask))
    return aten.native_batch_norm_backward(gy.contiguous(), x, weight, None, None, mean, rstd, True, eps, list(mask))


class _Norm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, per_sample: bool, eps: float, running: tuple | None, momentum: float):
        y, mean, rstd = _norm_forward(x, weight, bias, per_sample, eps, running, momentum)
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
        ctx.per_sample = per_sample
        ctx.save_for_backward(gy, x, weight, mean, rstd)
        return _norm_backward(gy, x, weight, mean, rstd, per_sample, eps)

    @staticmethod
    def backward(ctx, ggx, ggw, ggb):
        if torch.is_grad_enabled():
            raise NotImplementedError("fastgrad supports second derivatives, not third")
        gy, x, weight, mean, rstd = ctx.saved_tensors
        return (*_norm_grad_grad(gy, x, weight, mean, rstd, ctx.per_sample, ggx, ggw, ggb), None, None, None, None)


def _norm_grad_grad(gy, x, weight, mean, rstd, per: bool, ggx, ggw, ggb):
    """The closed form above: gradients w.r.t. (gy, x, γ) of <(gx, gγ, gβ), (ggx, ggγ, ggβ)>."""
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
    return g_gy, g_x, g_w


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


def _unpool_mask(gy: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``mask·upsample(gy)/4``: the gradient of ``avg_pool2d(relu(z), 2, 2)`` w.r.t. z, given ``mask = z > 0``."""
    n, c, h, w = mask.shape
    if h % 2 or w % 2:                                  # odd sizes: the last row/column is not pooled
        up = aten.avg_pool2d_backward(gy, mask.new_empty(mask.shape, dtype=gy.dtype), [2, 2], [2, 2], [0, 0],
                                      False, True, None)
        return up.mul_(mask)
    # each value repeated along both axes, then masked in place: the same numbers in about half the time of a
    # broadcast product of the expanded gradient with the boolean mask (4.8 against 9.0 ms at ConvNet-32's first
    # block, batch 128; 15 against 22 ms at ConvNet-128's; 2 cores, freed memory reused as in the distillation)
    return gy.mul(0.25).repeat_interleave(2, dim=3).repeat_interleave(2, dim=2).mul_(mask)


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
        return _unpool_mask(gy, mask)

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


# ----------------------------------------------------------------------------- a whole ConvNet block

def _conv_backward(gy, x, weight, mask):
    """(gx, gw, gb) of ``F.conv2d(x, weight, b, padding=1)`` given the output gradient gy."""
    return aten.convolution_backward(gy, x, weight, [weight.shape[0]], [1, 1], [1, 1], [1, 1], False, [0, 0], 1,
                                     list(mask))


class _Block(torch.autograd.Function):
    """``avg_pool2d(relu(norm(conv2d(x, w, b, padding=1))), 2, 2)`` as one operation. It keeps the
    convolution's output, the norm's statistics and the ReLU mask; its backward keeps only the gradient
    that reaches the block's output (a quarter of a block-sized tensor) and recomputes the rest."""

    @staticmethod
    def forward(ctx, x, w, b, gamma, beta, per_sample: bool, eps: float, running, momentum: float, x_node):
        y = F.conv2d(x, w, b, padding=1)
        z, mean, rstd = _norm_forward(y, gamma, beta, per_sample, eps, running, momentum)
        mask = z > 0
        ctx.per_sample, ctx.eps, ctx.x_node = per_sample, eps, x_node
        ctx.save_for_backward(x, w, b, gamma, y, mean, rstd, mask)
        return F.avg_pool2d(z.relu_(), 2, 2)

    @staticmethod
    def backward(ctx, gp):
        x, w, b, gamma, y, mean, rstd, mask = ctx.saved_tensors
        need_gx = ctx.needs_input_grad[0] and (ctx.x_node is None or _will_run(ctx.x_node))
        grads = _BlockGrad.apply(gp, x, w, b, gamma, y, mean, rstd, mask, ctx.per_sample, ctx.eps, need_gx)
        return (*grads, None, None, None, None, None)


def _will_run(node) -> bool:
    """Whether the backward pass under way will use a gradient sent to ``node`` (always True if this
    PyTorch cannot say). The unroll differentiates each step w.r.t. the parameters only, so the images'
    gradient is not wanted at first order: autograd skips it for its own convolutions, and so do we."""
    will = getattr(torch._C, "_will_engine_execute_node", None)
    return True if will is None else bool(will(node))


class _BlockGrad(torch.autograd.Function):
    """``gp -> (gx, gw, gb, gγ, gβ)`` of :class:`_Block`, by PyTorch's kernels; its own backward
    recomputes the block's inner gradients (gz, gy: two elementwise passes and the norm's backward
    kernel) instead of keeping them, and chains the derivatives of the three stages by hand."""

    @staticmethod
    def forward(ctx, gp, x, w, b, gamma, y, mean, rstd, mask, per_sample: bool, eps: float, need_gx: bool):
        gy, g_gamma, g_beta = _norm_backward(_unpool_mask(gp, mask), y, gamma, mean, rstd, per_sample, eps)
        gx, gw, gb = _conv_backward(gy, x, w, (need_gx, True, True))
        ctx.per_sample, ctx.eps = per_sample, eps
        ctx.save_for_backward(gp, x, w, gamma, y, mean, rstd, mask)
        return gx, gw, gb, g_gamma, g_beta

    @staticmethod
    def backward(ctx, ggx, ggw, ggb, gg_gamma, gg_beta):
        if torch.is_grad_enabled():
            raise NotImplementedError("fastgrad supports second derivatives, not third")
        gp, x, w, gamma, y, mean, rstd, mask = ctx.saved_tensors
        per, need_x = ctx.per_sample, ctx.needs_input_grad[1]
        gz = _unpool_mask(gp, mask)
        gy = _norm_backward(gz, y, gamma, mean, rstd, per, ctx.eps, (True, False, False))[0]
        # convolution stage, (gx, gw, gb) = conv_backward(gy): bilinear in (gy, w) and (gy, x); ggx is None
        # when gx was not computed
        g_gy = g_x = g_w = None
        if ggx is not None:
            g_gy = F.conv2d(ggx, w, padding=1)                                   # gx = conv_T(gy, w)
            g_w = _conv_backward(gy, ggx, w, (False, True, False))[1]
        if ggw is not None:
            t = F.conv2d(x, ggw, ggb, padding=1)                                 # gw = corr(x, gy), gb = Σ gy
            g_gy = t if g_gy is None else g_gy.add_(t)
            if need_x:
                g_x = _conv_backward(gy, x, ggw, (True, False, False))[0]
        elif ggb is not None:
            t = ggb.view(1, -1, 1, 1).expand_as(gy)
            g_gy = t.clone() if g_gy is None else g_gy.add_(t)
        # norm stage, (gy, gγ, gβ) = norm_backward(gz; y, γ)
        g_gz, g_y, g_gamma = _norm_grad_grad(gz, y, gamma, mean, rstd, per, g_gy, gg_gamma, gg_beta)
        # ReLU + pool stage, gz = mask·upsample(gp)/4: linear in gp
        g_gp = F.avg_pool2d(g_gz.mul_(mask), 2, 2)
        # y = conv2d(x, w, b) itself
        dx, dw, db = _conv_backward(g_y, x, w, (need_x, True, True))
        g_x = dx if g_x is None else (g_x if dx is None else g_x.add_(dx))
        g_w = dw if g_w is None else g_w.add_(dw)
        return g_gp, g_x, g_w, db, g_gamma, None, None, None, None, None, None, None


def block(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, norm: nn.Module,
          affine: tuple[torch.Tensor, ...] = (), *, update_stats: bool = True, ask_input_grad: bool = False) -> torch.Tensor:
    """ConvNet's block, ``avg_pool2d(relu(norm(conv2d(x, weight, bias, padding=1))), 2, 2)``: the one
    definition of it, used by every path (training, evaluation, the unroll, recomputation).

    ``norm`` is the block's norm module (:class:`InstanceNorm`, :class:`BatchNorm` or ``nn.Identity``); its
    affine parameters are passed in ``affine`` (``(γ, β)``, or ``()`` without a norm) so that a caller can
    substitute its own leaves. While autograd records, an instance norm or a training-mode batch norm runs as
    one fused operation (:class:`_Block`) that keeps about half the memory of the four separate ones under a
    twice-differentiated unroll, with the same values and derivatives; otherwise the stages run one by one.

    ``update_stats``: a training-mode batch norm updates its running statistics (False for a recomputation).
    ``ask_input_grad``: in the backward, compute x's gradient only if autograd will use it (ConvNet sets it
    for its first block, whose input is the images); otherwise whenever x requires a gradient."""
    per = isinstance(norm, InstanceNorm)
    train_bn = isinstance(norm, BatchNorm) and norm.training
    if torch.is_grad_enabled() and (per or train_bn):
        node = get_gradient_edge(x).node if ask_input_grad and x.requires_grad else None
        running, momentum = (None, 0.0) if per else norm.running_stats(update_stats)
        return _Block.apply(x, weight, bias, *affine, per, norm.eps, running, momentum, node)
    z = F.conv2d(x, weight, bias, padding=1)
    if per:
        z = instance_norm(z, *affine, eps=norm.eps)
    elif train_bn:
        running, momentum = norm.running_stats(update_stats)
        z = batch_norm_train(z, *affine, *(running or (None, None)), momentum=momentum, eps=norm.eps)
    elif isinstance(norm, nn.BatchNorm2d):
        z = F.batch_norm(z, norm.running_mean, norm.running_var, *affine, training=False, eps=norm.eps)
    elif not isinstance(norm, nn.Identity):
        raise TypeError(f"a ConvNet block's norm must be InstanceNorm, BatchNorm or Identity, not {type(norm).__name__}")
    return relu_pool(z)


def affine_of(norm: nn.Module) -> tuple[torch.Tensor, ...]:
    """A norm module's ``(γ, β)``, or ``()`` for ``nn.Identity``."""
    return () if isinstance(norm, nn.Identity) else (norm.weight, norm.bias)


def conv_block(x: torch.Tensor, conv: nn.Conv2d, norm: nn.Module, *, ask_input_grad: bool = False) -> torch.Tensor:
    """:func:`block` with the parameters of the modules ``conv`` (3x3, padding 1) and ``norm``."""
    return block(x, conv.weight, conv.bias, norm, affine_of(norm), ask_input_grad=ask_input_grad)


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
        """Training-mode output with the given affine parameters (``selmatch.fast.recompute`` passes its own
        leaves); the running statistics are updated only when ``update``."""
        running, momentum = self.running_stats(update)
        rm, rv = running if running is not None else (None, None)
        return batch_norm_train(x, weight, bias, rm, rv, momentum, self.eps)

    def running_stats(self, update: bool) -> tuple[tuple | None, float]:
        """((running_mean, running_var) or None, momentum) for one training-mode forward, counting it in
        ``num_batches_tracked`` when ``update`` (the bookkeeping of nn.BatchNorm2d)."""
        momentum = self.momentum
        if update and self.track_running_stats and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if momentum is None:  # cumulative moving average, as nn.BatchNorm2d does
                momentum = 1.0 / float(self.num_batches_tracked)
        stats = update and self.track_running_stats
        return ((self.running_mean, self.running_var) if stats else None), momentum or 0.0
