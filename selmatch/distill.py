"""SelMatch distillation: trajectory matching (MTT) with a partial update (FACTS §2).

The synthetic set is D_select (real images, frozen) followed by D_distill (learnable), plus a learnable
student step size ``syn_lr``. Each iteration draws an expert and a start epoch ``t < max_start_epoch``,
starts a student at the expert's parameters theta*_t, takes ``syn_steps`` SGD steps on minibatches of
the whole synthetic set (with differentiable DSA), and minimises

    || theta_hat_{t+N} - theta*_{t+M} ||^2  /  || theta*_t - theta*_{t+M} ||^2

with SGD (momentum 0.5) on D_distill and ``syn_lr`` only. The student runs as a stock ``nn.Module``
through ``torch.func.functional_call`` on a parameter dict unflattened from one vector.

``alpha = 1`` with a random initialisation is plain MTT; ``alpha = 0`` leaves nothing to update.
Long runs checkpoint every ``checkpoint_every`` iterations and resume bit-for-bit (every random draw
comes from one ``torch.Generator`` saved with the checkpoint). The returned set is the final
iteration's; optional evaluations along the way are recorded, never used to choose it.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch.func import functional_call
from tqdm import tqdm

from .augment import augment
from .experts import Trajectory, list_experts, load_trajectory
from .networks import build_model


class DistillationDiverged(RuntimeError):
    """The matching loss became NaN or infinite."""


MEMORY_MODES = ("default", "recompute", "constant")


@dataclass(frozen=True)
class DistillConfig:
    """Distillation hyperparameters; defaults are the official CIFAR settings (FACTS §3)."""

    iterations: int = 10_000
    syn_steps: int = 55           # student steps per iteration (N)
    expert_epochs: int = 2        # expert epochs matched (M)
    max_start_epoch: int = 80     # start epoch t is drawn from [0, max_start_epoch)
    lr_img: float = 1000.0        # SGD step on the D_distill pixels
    lr_lr: float = 1e-5           # SGD step on syn_lr
    lr_init: float = 1e-3         # initial syn_lr
    batch_syn: int | None = 125   # student minibatch; None = the whole synthetic set
    momentum: float = 0.5
    augmentation: str = "dsa"     # "dsa" or "none" inside the unrolled student
    checkpoint_every: int = 100
    memory: str = "default"       # "recompute": first block recomputed (selmatch.recompute), ~1/2 the memory per
                                  # step; "constant": per-step rematerialisation (selmatch.remat); same gradients

    def __post_init__(self):
        for name in ("iterations", "syn_steps", "expert_epochs", "max_start_epoch", "checkpoint_every"):
            if getattr(self, name) < 1 and not (name == "iterations" and self.iterations == 0):
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if self.batch_syn is not None and self.batch_syn < 1:
            raise ValueError(f"batch_syn={self.batch_syn} must be >= 1 (or None for the whole set)")
        if self.memory not in MEMORY_MODES:
            raise ValueError(f"memory={self.memory!r} must be one of {', '.join(MEMORY_MODES)}")
        if self.augmentation not in ("dsa", "none"):
            raise ValueError(f"augmentation={self.augmentation!r} must be 'dsa' or 'none'")
        if not (self.lr_img > 0 and self.lr_init > 0 and self.lr_lr >= 0):
            raise ValueError(f"lr_img={self.lr_img}, lr_init={self.lr_init} must be > 0 and lr_lr={self.lr_lr} >= 0")

    def with_(self, **changes) -> "DistillConfig":
        return replace(self, **changes)


@dataclass
class DistillResult:
    images: torch.Tensor          # float32 [N, C, H, W], normalised; D_select first, then D_distill
    labels: torch.Tensor
    is_distilled: torch.Tensor    # bool [N]
    syn_lr: float
    history: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- the unrolled student

def unflatten(theta: torch.Tensor, names: list[str], shapes: list[list[int]]) -> dict[str, torch.Tensor]:
    sizes = [math.prod(s) for s in shapes]
    return {n: t.view(s) for n, t, s in zip(names, torch.split(theta, sizes), shapes)}


def unroll(model, names, shapes, theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, syn_lr: torch.Tensor,
           batches: list[torch.Tensor], g: torch.Generator | None = None, augmentation: str = "none") -> torch.Tensor:
    """``len(batches)`` differentiable SGD steps of the student from flat parameters ``theta``."""
    for idx in batches:
        xb = x[idx] if augmentation == "none" else augment(x[idx], augmentation, g)
        out = functional_call(model, unflatten(theta, names, shapes), (xb,))
        ce = F.cross_entropy(out, y[idx])
        grad = torch.autograd.grad(ce, theta, create_graph=True)[0]
        theta = theta - syn_lr * grad
    return theta


def matching_loss(theta_n: torch.Tensor, start: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """||theta_n - target||^2 / ||start - target||^2."""
    return (theta_n - target).square().sum() / (start - target).square().sum()


def minibatches(n: int, batch: int | None, steps: int, g: torch.Generator) -> list[torch.Tensor]:
    """Indices for ``steps`` minibatches: chunks of fresh random permutations, as MTT draws them."""
    batch = batch or n
    chunks: list[torch.Tensor] = []
    out = []
    for _ in range(steps):
        if not chunks:
            chunks = list(torch.split(torch.randperm(n, generator=g), batch))
        out.append(chunks.pop())
    return out


# ----------------------------------------------------------------------------- the distillation loop

def _checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)


def matching_grads(*args, **kwargs):
    from .remat import matching_grads as mg   # imported lazily: remat imports this module

    return mg(*args, **kwargs)


def distill(x_select: torch.Tensor, y_select: torch.Tensor, x_distill: torch.Tensor, y_distill: torch.Tensor,
            experts: str | os.PathLike | list[Trajectory], model: str, *, num_classes: int, cfg: DistillConfig,
            width: int | None = None, depth: int | None = None, seed: int = 0, out: str | os.PathLike | None = None,
            resume: bool = False, eval_at: tuple[int, ...] = (),
            on_eval: Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], dict] | None = None,
            progress: bool = True) -> DistillResult:
    """Distill ``x_distill`` (normalised floats) next to the frozen ``x_select``; see the module docstring.

    Args:
        experts: a folder of expert files or a list of trajectories.
        model, width, depth: the network the experts were trained with.
        out: folder for ``checkpoint.pt`` (needed for ``resume``).
        eval_at: iterations at which ``on_eval(iteration, images, labels, is_distilled)`` is called; its
            dict is recorded in the history. It never changes what is returned.
    """
    trajs = experts if isinstance(experts, list) else [None] * len(list_experts(Path(experts)))
    paths = None if isinstance(experts, list) else list_experts(Path(experts))

    def expert(k: int) -> Trajectory:
        if trajs[k] is None:
            trajs[k] = load_trajectory(paths[k])
        return trajs[k]

    first = expert(0)
    if cfg.max_start_epoch + cfg.expert_epochs - 1 > first.epochs:
        raise ValueError(f"max_start_epoch={cfg.max_start_epoch} with expert_epochs={cfg.expert_epochs} needs experts "
                         f"of at least {cfg.max_start_epoch + cfg.expert_epochs - 1} epochs; these have {first.epochs}")
    ref = x_distill if len(x_distill) else x_select
    net = build_model(model, ref.shape[1], num_classes, ref.shape[-1], width=width, depth=depth)
    if cfg.memory == "recompute" and hasattr(net, "recompute_blocks"):   # exact (selmatch.recompute)
        net.recompute_blocks = 1
    mine = [(n, list(p.shape)) for n, p in net.named_parameters()]
    if mine != list(zip(first.names, first.shapes)):
        raise ValueError(f"the experts were trained with another network than model={model!r} "
                         f"(width={width}, depth={depth}); use the preset or flags the experts were made with")

    g = torch.Generator().manual_seed(seed)
    x_dis = x_distill.detach().clone().float().requires_grad_(True)
    syn_lr = torch.tensor(float(cfg.lr_init), requires_grad=True)
    opt_img = torch.optim.SGD([x_dis], lr=cfg.lr_img, momentum=cfg.momentum)
    opt_lr = torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=cfg.momentum)
    y_all = torch.cat([y_select, y_distill])
    history = {"loss": [], "syn_lr": [], "seconds": [], "evals": {}}
    it0 = 0
    ckpt = Path(out) / "checkpoint.pt" if out else None
    state = torch.load(ckpt, weights_only=True) if resume and ckpt is not None and ckpt.exists() else None
    if state is not None:
        done = json.loads(state["history"])["evals"]
        missed = [e for e in eval_at if e < int(state["iteration"]) and str(e) not in done]
        if missed:   # a run made without these evaluations: redo it (deterministic) rather than skip them
            warnings.warn(f"checkpoint {ckpt} is at iteration {int(state['iteration'])} but has no evaluation at "
                          f"{missed}; distilling again from iteration 0", stacklevel=2)
            state = None
    if state is not None:
        x_dis.data.copy_(state["x_distill"])
        syn_lr.data.copy_(state["syn_lr"])
        opt_img.load_state_dict(state["opt_img"])
        opt_lr.load_state_dict(state["opt_lr"])
        g.set_state(state["generator"])
        history, it0 = json.loads(state["history"]), int(state["iteration"])
    elif ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)

    def snapshot(iteration: int) -> dict:
        return {"iteration": iteration, "x_distill": x_dis.detach().clone(), "syn_lr": syn_lr.detach().clone(),
                "opt_img": opt_img.state_dict(), "opt_lr": opt_lr.state_dict(), "generator": g.get_state(),
                "history": json.dumps(history)}

    def maybe_eval(iteration: int) -> None:
        if on_eval is not None and iteration in eval_at and str(iteration) not in history["evals"]:
            images = torch.cat([x_select, x_dis.detach()])
            flags = torch.cat([torch.zeros(len(x_select), dtype=torch.bool), torch.ones(len(x_dis), dtype=torch.bool)])
            history["evals"][str(iteration)] = on_eval(iteration, images, y_all, flags)

    n_total = len(x_select) + len(x_dis)
    iterations = cfg.iterations if len(x_dis) else it0   # alpha = 0: nothing to distill, nothing changes
    bar = tqdm(range(it0, iterations), desc="distill", disable=not progress, initial=it0, total=iterations)
    for it in bar:
        maybe_eval(it)
        t0 = time.perf_counter()
        k = int(torch.randint(len(trajs), (1,), generator=g))
        t = int(torch.randint(cfg.max_start_epoch, (1,), generator=g))
        traj = expert(k)
        start, target = traj.params[t].float(), traj.params[t + cfg.expert_epochs].float()
        batches = minibatches(n_total, cfg.batch_syn, cfg.syn_steps, g)
        if cfg.memory == "constant":
            loss, grad_x, grad_lr = matching_grads(net, traj.names, traj.shapes, start, target, x_select, x_dis,
                                                   y_all, syn_lr, batches, g, cfg.augmentation)
        else:
            theta0 = start.clone().requires_grad_(True)
            x_all = torch.cat([x_select, x_dis])
            theta_n = unroll(net, traj.names, traj.shapes, theta0, x_all, y_all, syn_lr, batches, g, cfg.augmentation)
            loss = matching_loss(theta_n, start, target)
        if not torch.isfinite(loss):
            raise DistillationDiverged(
                f"matching loss is {loss.item()} at iteration {it} (syn_lr={syn_lr.item():.3g}); lower lr_img "
                f"(now {cfg.lr_img}) or lr_init/lr_lr for syn_lr (now {cfg.lr_init}/{cfg.lr_lr}). "
                + (f"The last good checkpoint is kept in {ckpt}." if ckpt else ""))
        opt_img.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        if cfg.memory == "constant":
            x_dis.grad, syn_lr.grad = grad_x, grad_lr.reshape(syn_lr.shape)
        else:
            loss.backward()
        opt_img.step()
        opt_lr.step()
        history["loss"].append(loss.item())
        history["syn_lr"].append(syn_lr.item())
        history["seconds"].append(time.perf_counter() - t0)
        bar.set_postfix(loss=f"{loss.item():.4f}", syn_lr=f"{syn_lr.item():.2e}")
        if ckpt is not None and ((it + 1) % cfg.checkpoint_every == 0 or it + 1 == iterations):
            _checkpoint(ckpt, snapshot(it + 1))
    maybe_eval(iterations)
    images = torch.cat([x_select, x_dis.detach()])
    flags = torch.cat([torch.zeros(len(x_select), dtype=torch.bool), torch.ones(len(x_dis), dtype=torch.bool)])
    return DistillResult(images, y_all, flags, syn_lr.item(), history)


def save_synset(result: DistillResult, path: str | os.PathLike, source_idx: torch.Tensor, config: dict) -> None:
    """Write ``images``, ``labels``, ``is_distilled``, ``source_idx``, ``syn_lr`` and the config."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, images=result.images.numpy().astype(np.float32), labels=result.labels.numpy(),
             is_distilled=result.is_distilled.numpy(), source_idx=source_idx.numpy(),
             syn_lr=np.float32(result.syn_lr), config=np.array(json.dumps(config)))
    os.replace(tmp, path)


def config_dict(cfg: DistillConfig) -> dict:
    return asdict(cfg)
