"""Constant-memory trajectory matching by per-step rematerialisation.

The default unroll keeps the graph of all ``N`` student steps alive until the matching loss is
back-propagated, so memory grows with ``syn_steps``. Here the forward sweep runs without a graph and keeps
only each step's parameter vector (a few MB) and its augmentation randomness. The reverse sweep then
rebuilds one step's graph at a time and pushes the vector-Jacobian product back through it:

    lambda_N = dL/dtheta_N,   lambda_i = lambda_{i+1} - eta * H_i lambda_{i+1},

accumulating the image and step-size gradients of every step on the way. The result is the exact
gradient of the same loss (no approximation): the tests compare it with the default mode. This is the
idea of TESLA (Cui et al., ICML 2023); the implementation is ours.
"""
from __future__ import annotations

import torch

from ..student import ParamLayout, step_loss


def _replay(state: torch.Tensor) -> torch.Generator:
    gen = torch.Generator()
    gen.set_state(state)
    return gen


def matching_grads(model, layout: ParamLayout, start: torch.Tensor, target: torch.Tensor, x_select: torch.Tensor,
                   x_dis: torch.Tensor, y: torch.Tensor, syn_lr: torch.Tensor, batches: list[torch.Tensor],
                   g: torch.Generator, augmentation: str = "none") -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Matching loss and its gradients w.r.t. ``x_dis`` and ``syn_lr``, in memory independent of the
    number of steps. Consumes ``g`` exactly as the default unroll does."""
    recompute = getattr(model, "recompute_blocks", None)
    if recompute is not None:     # one step's graph at a time already: recomputing blocks would only cost time
        model.recompute_blocks = 0
    try:
        return _matching_grads(model, layout, start, target, x_select, x_dis, y, syn_lr, batches, g,
                               augmentation)
    finally:
        if recompute is not None:
            model.recompute_blocks = recompute


def _matching_grads(model, layout, start, target, x_select, x_dis, y, syn_lr, batches, g, augmentation):
    x_all = torch.cat([x_select, x_dis.detach()])
    eta = syn_lr.detach()
    thetas, states = [start.detach()], []
    theta = start.detach()
    for idx in batches:                                       # forward sweep: no graph kept
        states.append(g.get_state())                          # to replay this step's augmentation
        theta = theta.requires_grad_(True)
        loss = step_loss(model, layout, theta, x_all, y, idx, g, augmentation)
        grad, = torch.autograd.grad(loss, theta)
        theta = (theta - eta * grad).detach()
        thetas.append(theta)
    denom = (start - target).square().sum()
    loss = (theta - target).square().sum() / denom
    lam = 2 * (theta - target) / denom                        # dL/dtheta_N
    g_x = torch.zeros_like(x_dis)
    g_lr = torch.zeros((), dtype=syn_lr.dtype, device=syn_lr.device)
    for i in range(len(batches) - 1, -1, -1):                 # reverse sweep: one step's graph at a time
        theta_i = thetas[i].clone().requires_grad_(True)
        x_d = x_dis.detach().requires_grad_(True)
        eta_i = eta.clone().requires_grad_(True)
        x_i = torch.cat([x_select, x_d])
        step = step_loss(model, layout, theta_i, x_i, y, batches[i], _replay(states[i]), augmentation)
        grad, = torch.autograd.grad(step, theta_i, create_graph=True)
        theta_next = theta_i - eta_i * grad
        d_theta, d_x, d_eta = torch.autograd.grad(theta_next, [theta_i, x_d, eta_i], grad_outputs=lam,
                                                  allow_unused=True)
        lam = d_theta.detach()
        if d_x is not None:
            g_x += d_x
        g_lr += d_eta.detach()
    return loss.detach(), g_x, g_lr
