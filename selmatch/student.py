"""The student of trajectory matching: a stock network run on a flat parameter vector.

Everything about it lives here, and every distillation path (the three memory modes), the benchmarks
and the tests use it:

* :class:`ParamLayout` -- the parameter names and shapes of a network, and the map between its
  parameters and one flat vector (an expert trajectory stores rows of such vectors);
* :func:`minibatches` -- which synthetic images each student step sees, drawn as MTT draws them;
* :func:`step_loss` -- one student step's loss, with differentiable augmentation;
* :func:`unroll` -- ``N`` differentiable SGD steps of the student (``create_graph=True``);
* :func:`matching_loss` -- ``||theta_N - theta*_{t+M}||^2 / ||theta*_t - theta*_{t+M}||^2``.

The network runs through ``torch.func.functional_call`` on a parameter dict viewed out of the vector,
which replaces the research code's flatten-and-swap module.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from .augment import augment


@dataclass(frozen=True)
class ParamLayout:
    """The parameters of a network as one flat vector: their names, shapes, and the order of both."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, model: nn.Module) -> "ParamLayout":
        named = list(model.named_parameters())
        return cls(tuple(n for n, _ in named), tuple(tuple(p.shape) for _, p in named))

    @classmethod
    def from_lists(cls, names, shapes) -> "ParamLayout":
        return cls(tuple(names), tuple(tuple(int(d) for d in s) for s in shapes))

    @property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @property
    def numel(self) -> int:
        return sum(self.sizes)

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Views of ``theta`` shaped as the named parameters (no copy; gradients flow to ``theta``)."""
        return {n: t.view(s) for n, t, s in zip(self.names, torch.split(theta, self.sizes), self.shapes)}

    def describe(self) -> str:
        return f"{len(self.names)} tensors, {self.numel:,} parameters"


def flatten(model: nn.Module) -> torch.Tensor:
    """A network's parameters as one float32 vector on the CPU, in :class:`ParamLayout` order."""
    return torch.cat([p.detach().reshape(-1).float().cpu() for p in model.parameters()])


def minibatches(n: int, batch: int | None, steps: int, g: torch.Generator) -> list[torch.Tensor]:
    """Indices for ``steps`` minibatches of ``n`` images: chunks of fresh random permutations, as MTT
    draws them (``batch=None``: the whole set each step). Drawn on the CPU from ``g``."""
    batch = batch or n
    chunks: list[torch.Tensor] = []
    out = []
    for _ in range(steps):
        if not chunks:
            chunks = list(torch.split(torch.randperm(n, generator=g), batch))
        out.append(chunks.pop())
    return out


def step_loss(model: nn.Module, layout: ParamLayout, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
              idx: torch.Tensor, g: torch.Generator | None, augmentation: str = "none") -> torch.Tensor:
    """Cross-entropy of the student with parameters ``theta`` on minibatch ``idx`` (augmented with ``g``)."""
    return batch_loss(model, layout, theta, x[idx], y[idx], g, augmentation)


def batch_loss(model: nn.Module, layout: ParamLayout, theta: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor,
               g: torch.Generator | None, augmentation: str = "none") -> torch.Tensor:
    """Cross-entropy of the student with parameters ``theta`` on the images ``xb`` (augmented with ``g``)."""
    xb = xb if augmentation == "none" else augment(xb, augmentation, g)
    return F.cross_entropy(functional_call(model, layout.unflatten(theta), (xb,)), yb)


def unroll(model: nn.Module, layout: ParamLayout, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor,
           syn_lr: torch.Tensor, batches: list[torch.Tensor], g: torch.Generator | None = None,
           augmentation: str = "none") -> torch.Tensor:
    """``len(batches)`` differentiable SGD steps of the student from flat parameters ``theta``."""
    # every step's images in one gather: its backward scatters into one set-sized zero tensor, not one per step
    # (for ConvNet-32 at IPC 250, 10 steps, the nine saved were about 5 % of an iteration). Only when no image
    # appears twice: the scatter of repeated indices adds in an order that varies from run to run
    every = torch.cat(batches) if batches else None
    if every is not None and every.unique().numel() == every.numel():
        xs = torch.split(x[every], [len(i) for i in batches])
    else:
        xs = [x[i] for i in batches]
    for idx, xb in zip(batches, xs):
        grad = torch.autograd.grad(batch_loss(model, layout, theta, xb, y[idx], g, augmentation), theta,
                                   create_graph=True)[0]
        theta = theta - syn_lr * grad
    return theta


def matching_loss(theta_n: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||theta_n - target||^2 / ||start - target||^2."""
    return (theta_n - target).square().sum() / (start - target).square().sum()
