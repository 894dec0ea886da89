"""Exact recomputation of a network block inside a twice-differentiated unroll.

Trajectory matching differentiates *through* each student step's gradient, so every step of the
unroll keeps the tensors of its forward pass and of its backward pass (``create_graph=True``) until the
matching loss is back-propagated. For ConvNet most of them belong to the first block, whose activations
are 4x the size of the second block's (32x32 against 16x16): with the fused blocks of
:func:`selmatch.fast.fastgrad.conv_block` (the default), 79 of the 127 MB a step keeps at width 128, batch 100.

:func:`recomputed` wraps such a block in two autograd functions that keep only the block's *inputs*
(for the first block: the augmented images, 1.2 MB, and the block's parameters) and the gradient that
reaches its output (12.5 MB):

* forward: the block runs without a graph;
* backward (during the unroll): the block is re-run with a graph to get the first-order gradients;
  this backward is itself a function of the same kind, so the unroll can differentiate it;
* the backward of the backward (during the matching loss's backward): the block and its first-order
  gradients are re-run with a graph, and the vector-Jacobian product is taken through them.

Every gradient is computed by autograd from the same operations, so the result equals the plain
unroll's to floating-point rounding (tests check 1e-5). The price is extra block passes (one more
forward in the unroll, one more forward and backward at the end): 35–55 % more time per step for
ConvNet-128 on a 2-core CPU, for about half the memory of the default. Third derivatives are not
supported (nothing here needs them).

torch.utils.checkpoint does not help here: under ``create_graph=True`` the recomputed activations are
saved again by the backward graph's own nodes, and the peak is unchanged (measured).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

BlockFn = Callable[..., torch.Tensor]


def _vjp(fn: BlockFn, inputs: Sequence[torch.Tensor], grad_out: torch.Tensor, create_graph: bool):
    """Gradients of ``<fn(*inputs), grad_out>`` w.r.t. every input (zeros where unused)."""
    with torch.enable_grad():
        out = fn(*inputs)
        grads = torch.autograd.grad(out, inputs, grad_out, create_graph=create_graph, allow_unused=True)
    return tuple(torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads))


def _leaves(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    return [t.detach().requires_grad_(True) for t in tensors]


class _Block(torch.autograd.Function):
    @staticmethod
    def forward(ctx, fn: BlockFn, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.fn = fn
        ctx.save_for_backward(*inputs)
        return fn(*inputs)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        return (None, *_BlockGrad.apply(ctx.fn, grad_out, *ctx.saved_tensors))


class _BlockGrad(torch.autograd.Function):
    """``(grad_out, *inputs) -> vjp``: the block's first-order gradients, differentiable once more."""

    @staticmethod
    def forward(ctx, fn: BlockFn, grad_out: torch.Tensor, *inputs: torch.Tensor):
        ctx.fn = fn
        ctx.save_for_backward(grad_out, *inputs)
        return _vjp(fn, _leaves(inputs), grad_out, create_graph=False)

    @staticmethod
    def backward(ctx, *ggrads: torch.Tensor):
        if torch.is_grad_enabled():
            raise NotImplementedError("recomputed blocks support second derivatives, not third")
        grad_out, *inputs = ctx.saved_tensors
        with torch.enable_grad():
            leaves = _leaves([grad_out, *inputs])
            grads = _vjp(ctx.fn, leaves[1:], leaves[0], create_graph=True)
            pairs = [(g, gg) for g, gg in zip(grads, ggrads) if gg is not None and g.requires_grad]
            out = torch.autograd.grad([g for g, _ in pairs], leaves, [gg for _, gg in pairs], allow_unused=True) \
                if pairs else (None,) * len(leaves)
        return (None, *out)


def recomputed(fn: BlockFn, *inputs: torch.Tensor) -> torch.Tensor:
    """``fn(*inputs)``, keeping only ``inputs`` for the backward passes (see the module docstring).
    ``fn`` must be deterministic and must read nothing that changes before the backward runs (pass
    parameters as inputs, not through a module)."""
    return _Block.apply(fn, *inputs)
