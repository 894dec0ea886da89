"""SelMatch distillation: trajectory matching (MTT) with a partial update (the book: *Method*).

The synthetic set is D_select (real images, frozen) followed by D_distill (learnable), plus a learnable
student step size ``syn_lr``. Each iteration draws an expert and a start epoch ``t < max_start_epoch``,
starts a student (:mod:`selmatch.student`) at the expert's parameters theta*_t, takes ``syn_steps`` SGD
steps on minibatches of the whole synthetic set (with differentiable DSA), and minimises

    || theta_hat_{t+N} - theta*_{t+M} ||^2  /  || theta*_t - theta*_{t+M} ||^2

with SGD (momentum 0.5) on D_distill and ``syn_lr`` only.

Everything runs on the ``device`` given (the images, ``syn_lr``, the optimisers, the student and each expert
trajectory, moved there once). The losses are read back to the host every few iterations, not after
each one, and checked for divergence (with the images and ``syn_lr``) before every checkpoint, so a
checkpoint never holds a diverged state.

``alpha = 1`` with a random initialisation is plain MTT; ``alpha = 0`` leaves nothing to update.
Long runs checkpoint every ``checkpoint_every`` iterations and resume bit-for-bit (every random draw
comes from one ``torch.Generator`` saved with the checkpoint). The returned set is the final
iteration's; the images at chosen iterations (``keep_at``) come back beside it for the caller to evaluate.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from .artifacts import (ArtifactError, Trajectory, differences, foreign_expert, list_experts, load_checkpoint,
                        load_snapshot, load_trajectory, save_checkpoint, save_snapshot)
from .device import DeviceLike, resolve_device
from .fast.constant import matching_grads
from .fast.malloc import reuse_freed_memory
from .networks import build_model
from .student import ParamLayout, matching_loss, minibatches, unroll


class DistillationDiverged(RuntimeError):
    """The matching loss became NaN or infinite."""


MEMORY_MODES = ("default", "recompute", "constant")
FLOAT32_MAX = float(torch.finfo(torch.float32).max)


@dataclass(frozen=True)
class DistillConfig:
    """Distillation hyperparameters; defaults are the official CIFAR settings (the book: *The paper*, official settings)."""

    iterations: int = 10_000
    syn_steps: int = 55           # student steps per iteration (N)
    expert_epochs: int = 2        # expert epochs matched (M)
    max_start_epoch: int = 80     # start epoch t is drawn from [min_start_epoch, max_start_epoch)
    min_start_epoch: int = 0      # > 0 matches only later segments of the experts (as DATM does at large IPC)
    lr_img: float = 1000.0        # SGD step on the D_distill pixels
    lr_lr: float = 1e-5           # SGD step on syn_lr
    lr_init: float = 1e-3         # initial syn_lr
    batch_syn: int | None = 125   # student minibatch; None = the whole synthetic set
    momentum: float = 0.5
    augmentation: str = "dsa"     # "dsa" or "none" inside the unrolled student
    checkpoint_every: int = 100
    memory: str = "default"       # "recompute": first block recomputed (selmatch.fast.recompute), ~1/2 the memory per
                                  # step; "constant": per-step rematerialisation (selmatch.fast.constant); same gradients

    def __post_init__(self):
        for name in ("iterations", "syn_steps", "expert_epochs", "max_start_epoch", "checkpoint_every"):
            if getattr(self, name) < 1 and not (name == "iterations" and self.iterations == 0):
                raise ValueError(f"{name}={getattr(self, name)} must be >= 1")
        if not 0 <= self.min_start_epoch < self.max_start_epoch:
            raise ValueError(f"min_start_epoch={self.min_start_epoch} must be in [0, max_start_epoch="
                             f"{self.max_start_epoch})")
        if self.batch_syn is not None and self.batch_syn < 1:
            raise ValueError(f"batch_syn={self.batch_syn} must be >= 1 (or None for the whole set)")
        if self.memory not in MEMORY_MODES:
            raise ValueError(f"memory={self.memory!r} must be one of {', '.join(MEMORY_MODES)}")
        if self.augmentation not in ("dsa", "none"):
            raise ValueError(f"augmentation={self.augmentation!r} must be 'dsa' or 'none'")
        for name, low in (("lr_img", 0.0), ("lr_init", 0.0), ("lr_lr", None), ("momentum", None)):
            v = getattr(self, name)
            if not math.isfinite(v) or (v <= low if low is not None else v < 0):
                raise ValueError(f"{name}={v} must be a finite number {'> 0' if low is not None else '>= 0'}")
            if abs(v) > FLOAT32_MAX:     # the optimisers step in float32, where it would overflow to infinity
                raise ValueError(f"{name}={v} must be at most {FLOAT32_MAX:.3g} (the largest float32)")

    def with_(self, **changes) -> "DistillConfig":
        return replace(self, **changes)

    def numbers(self) -> dict:
        """The fields that change the distilled images (not the memory mode, which computes the same gradients);
        ``min_start_epoch`` only where it is set, so that results made before it existed keep their keys."""
        return {k: v for k, v in asdict(self).items()
                if k != "memory" and not (k == "min_start_epoch" and v == 0)}


@dataclass
class DistillResult:
    images: torch.Tensor          # float32 [N, C, H, W], normalised; D_select first, then D_distill
    labels: torch.Tensor
    is_distilled: torch.Tensor    # bool [N]
    syn_lr: float
    history: dict = field(default_factory=dict)      # loss, syn_lr and seconds per iteration
    snapshots: dict[int, torch.Tensor] = field(default_factory=dict)   # iteration -> D_distill then (``keep_at``)


# ----------------------------------------------------------------------------- the pieces of the loop

class ExpertPool:
    """The expert trajectories, each read from disk and moved to the device once, when first drawn."""

    def __init__(self, experts: str | os.PathLike | list[Trajectory], device: torch.device):
        self.paths = None if isinstance(experts, list) else list_experts(Path(experts))
        self.trajs: list[Trajectory | None] = [t.to(device) for t in experts] if self.paths is None \
            else [None] * len(self.paths)
        self.device = device
        record = None if self.paths is None else Path(experts) / "config.json"
        self.record = json.loads(record.read_text()) if record is not None and record.exists() else None

    def __len__(self) -> int:
        return len(self.trajs)

    def __getitem__(self, k: int) -> Trajectory:
        if self.trajs[k] is None:
            traj = load_trajectory(self.paths[k], mmap=self.device.type == "cpu")
            why = foreign_expert(traj, self.record, self.paths[k]) if self.record is not None else None
            if why:
                raise ValueError(f"{why}; move it out of the experts folder")
            self.trajs[k] = traj.to(self.device)
        return self.trajs[k]


@dataclass
class _State:
    """Everything an iteration changes, and so everything a checkpoint holds."""

    x_dis: torch.Tensor
    syn_lr: torch.Tensor
    opt_img: torch.optim.Optimizer
    opt_lr: torch.optim.Optimizer
    g: torch.Generator
    history: dict
    iteration: int = 0

    @classmethod
    def fresh(cls, x_distill: torch.Tensor, cfg: DistillConfig, seed: int, device: torch.device) -> "_State":
        x_dis = x_distill.detach().to(device, torch.float32, copy=True).requires_grad_(True)
        syn_lr = torch.tensor(float(cfg.lr_init), device=device, requires_grad=True)
        return cls(x_dis, syn_lr, torch.optim.SGD([x_dis], lr=cfg.lr_img, momentum=cfg.momentum),
                   torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=cfg.momentum),
                   torch.Generator().manual_seed(seed), {"loss": [], "syn_lr": [], "seconds": []})

    def snapshot(self, run: dict) -> dict:
        return {"run": json.dumps(run), "iteration": self.iteration, "x_distill": self.x_dis.detach().cpu(), "syn_lr": self.syn_lr.detach().cpu(),
                "opt_img": _cpu(self.opt_img.state_dict()), "opt_lr": _cpu(self.opt_lr.state_dict()),
                "generator": self.g.get_state(), "history": json.dumps(self.history)}

    def restore(self, state: dict) -> None:
        """Load a checkpoint written on any device onto this state's device."""
        if tuple(state["x_distill"].shape) != tuple(self.x_dis.shape):
            raise ValueError(f"the checkpoint holds {tuple(state['x_distill'].shape)} distilled images but this "
                             f"run distills {tuple(self.x_dis.shape)}: it belongs to another run; use another "
                             "output folder or run without resume")
        with torch.no_grad():
            self.x_dis.copy_(state["x_distill"])
            self.syn_lr.copy_(state["syn_lr"])
        self.opt_img.load_state_dict(state["opt_img"])    # optimiser state follows its parameters' device
        self.opt_lr.load_state_dict(state["opt_lr"])
        self.g.set_state(state["generator"])
        history = json.loads(state["history"])
        history.pop("evals", None)      # checkpoints of before evaluations left the loop
        self.history, self.iteration = history, int(state["iteration"])


def _cpu(obj):
    if torch.is_tensor(obj):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def _student(model: str, ref: torch.Tensor, num_classes: int, width, depth, cfg: DistillConfig, experts: ExpertPool,
             device: torch.device) -> tuple[torch.nn.Module, ParamLayout]:
    """The student network (on ``device``) and its parameter layout, checked against the experts'."""
    first = experts[0]
    if cfg.max_start_epoch + cfg.expert_epochs - 1 > first.epochs:
        raise ValueError(f"max_start_epoch={cfg.max_start_epoch} with expert_epochs={cfg.expert_epochs} needs experts "
                         f"of at least {cfg.max_start_epoch + cfg.expert_epochs - 1} epochs; these have {first.epochs}")
    net = build_model(model, ref.shape[1], num_classes, ref.shape[-1], width=width, depth=depth).to(device)
    if cfg.memory == "recompute" and hasattr(net, "recompute_blocks"):   # exact (selmatch.fast.recompute)
        net.recompute_blocks = 1
    layout = ParamLayout.of(net)
    if layout != first.layout:
        raise ValueError(f"the experts were trained with another network than model={model!r} "
                         f"(width={width}, depth={depth}): theirs has {first.layout.describe()}, this one "
                         f"{layout.describe()}; use the preset or flags the experts were made with")
    return net, layout


def check_experts(experts: str | os.PathLike | list[Trajectory], model: str, *, num_classes: int,
                  image_shape: tuple[int, ...], cfg: DistillConfig, width: int | None = None,
                  depth: int | None = None) -> None:
    """Raise ``ValueError`` naming what differs when ``experts`` cannot be matched by this network with ``cfg``
    (too short for the start epochs, or trained with another network): what :func:`distill` checks first, for a
    caller to check before it removes anything."""
    _student(model, torch.zeros(1, *image_shape), num_classes, width, depth, cfg, ExpertPool(experts, torch.device("cpu")),
             torch.device("cpu"))


def _run_record(cfg: DistillConfig, seed: int, model: str, width, depth, n_select: int, n_distill: int,
                identity: dict | None) -> dict:
    """What a checkpoint must match to be continued: everything but the length of the run and the
    settings that do not change the numbers (memory mode, checkpoint interval)."""
    same = {k: v for k, v in cfg.numbers().items() if k not in ("iterations", "checkpoint_every")}
    return {"distill": same, "seed": seed, "network": {"model": model, "width": width, "depth": depth},
            "n_select": n_select, "n_distill": n_distill, "identity": identity or {}}


def _resume_state(ckpt: Path | None, run: dict, iterations: int) -> dict | None:
    """The checkpoint to continue from, or None (none there). A checkpoint of another run, or one past
    ``iterations``, is refused, naming what differs."""
    if ckpt is None or not ckpt.exists():
        return None
    state = load_checkpoint(ckpt)
    stored = json.loads(state["run"]) if "run" in state else None
    if stored is None:
        raise ValueError(f"{ckpt} was written by an older selmatch and records no configuration; move it aside "
                         "(or pass --force) to distill from iteration 0")
    diff = differences(stored, run)
    if diff:
        raise ValueError(f"{ckpt} belongs to another run ({'; '.join(diff)}); use another output folder, "
                         "or --force to replace it")
    if int(state["iteration"]) > iterations:
        raise ValueError(f"{ckpt} is at iteration {int(state['iteration'])}, past iterations={iterations}; "
                         "ask for at least that many, or --force to start again")
    if not torch.isfinite(state["x_distill"]).all() or not torch.isfinite(state["syn_lr"]).all():
        raise ArtifactError(f"{ckpt} holds non-finite images or syn_lr; move it aside to distill from iteration 0")
    return state


class MissingSnapshots(ValueError):
    """A resumed run was asked to keep images at iterations it passed without keeping them."""


def snapshot_path(folder: Path, iteration: int) -> Path:
    return Path(folder) / "evals" / f"images-{iteration}.pt"


def _kept(folder: Path, iteration: int, run: dict) -> torch.Tensor | None:
    """The distilled images of this run at ``iteration``, as an earlier call kept them, or None."""
    path = snapshot_path(folder, iteration)
    if not path.exists():
        return None
    try:
        blob = load_snapshot(path)
    except ArtifactError:       # damaged: as if it were not there
        return None
    if blob.get("run") != json.dumps(run) or int(blob.get("iteration", -1)) != iteration \
            or not torch.is_tensor(blob.get("x_distill")):
        return None
    return blob["x_distill"]


def _unrolled(net, layout: ParamLayout, start, target, x_select, x_dis, y, syn_lr, batches, g, augmentation):
    """The default and recompute modes: the whole unroll on autograd's tape (recompute: the network built with
    its first block recomputed, :mod:`selmatch.fast.recompute`), then one backward pass."""
    theta_n = unroll(net, layout, start.clone().requires_grad_(True), torch.cat([x_select, x_dis]), y, syn_lr, batches,
                     g, augmentation)
    loss = matching_loss(theta_n, start, target)
    grad_x, grad_lr = torch.autograd.grad(loss, [x_dis, syn_lr])
    return loss, grad_x, grad_lr


# One iteration's matching loss and its gradients w.r.t. D_distill and syn_lr, per memory mode (the same numbers
# in each; what differs is the memory the unroll keeps). The benchmarks time these same functions.
MEMORY: dict[str, Callable] = {"default": _unrolled, "recompute": _unrolled, "constant": matching_grads}


def matching_gradients(memory: str, net, layout: ParamLayout, start: torch.Tensor, target: torch.Tensor,
                       x_select: torch.Tensor, x_dis: torch.Tensor, y: torch.Tensor, syn_lr: torch.Tensor,
                       batches: list[torch.Tensor], g: torch.Generator,
                       augmentation: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, d loss / d x_dis, d loss / d syn_lr) of one matching step in ``memory`` mode (see :data:`MEMORY`)."""
    if memory not in MEMORY:
        raise ValueError(f"memory={memory!r} must be one of {', '.join(MEMORY)}")
    return MEMORY[memory](net, layout, start, target, x_select, x_dis, y, syn_lr, batches, g, augmentation)


def _iteration(net, layout: ParamLayout, experts: ExpertPool, st: _State, x_select: torch.Tensor, y_all: torch.Tensor,
               cfg: DistillConfig) -> torch.Tensor:
    """One iteration: draw an expert segment and minibatches, match, update D_distill and syn_lr.
    Returns the matching loss as a device tensor (read back later, without a sync per iteration)."""
    g = st.g
    traj = experts[int(torch.randint(len(experts), (1,), generator=g))]
    t = cfg.min_start_epoch + int(torch.randint(cfg.max_start_epoch - cfg.min_start_epoch, (1,), generator=g))
    start, target = traj.params[t], traj.params[t + cfg.expert_epochs]
    batches = [b.to(x_select.device) for b in minibatches(len(x_select) + len(st.x_dis), cfg.batch_syn, cfg.syn_steps, g)]
    st.opt_img.zero_grad(set_to_none=True)
    st.opt_lr.zero_grad(set_to_none=True)
    loss, st.x_dis.grad, grad_lr = matching_gradients(cfg.memory, net, layout, start, target, x_select, st.x_dis,
                                                       y_all, st.syn_lr, batches, g, cfg.augmentation)
    st.syn_lr.grad = grad_lr.reshape(st.syn_lr.shape)
    st.opt_img.step()
    st.opt_lr.step()
    st.iteration += 1
    return loss.detach()


def _diverged(st: _State, losses: list[torch.Tensor], cfg: DistillConfig, ckpt: Path | None) -> DistillationDiverged:
    values = torch.stack(losses).cpu()
    bad = (~torch.isfinite(values)).nonzero().flatten()
    if len(bad):
        what = f"the matching loss is {values[bad[0]].item()} at iteration {st.iteration - len(losses) + int(bad[0])}"
    else:
        what = f"the update of iteration {st.iteration - 1} made the images or syn_lr non-finite"
    kept = f" The last checkpoint, {ckpt}, predates it and is kept." if ckpt is not None and ckpt.exists() else ""
    return DistillationDiverged(f"distillation diverged: {what}; lower lr_img (now {cfg.lr_img}) or lr_init/lr_lr "
                                f"for syn_lr (now {cfg.lr_init}/{cfg.lr_lr}).{kept}")


def _record(st: _State, losses: list[torch.Tensor], lrs: list[torch.Tensor], seconds: list[float], cfg, ckpt,
            limit: float) -> None:
    """Read the pending losses back (one host sync for the lot), check them and the images, log them."""
    if not losses:
        return
    values = torch.stack(losses)
    checks = torch.stack([torch.isfinite(values).all(), torch.isfinite(st.x_dis.detach()).all(),
                          torch.isfinite(st.syn_lr.detach()), st.x_dis.detach().abs().amax() <= limit]).cpu()
    if not bool(checks[:3].all()):
        raise _diverged(st, losses, cfg, ckpt)
    if not bool(checks[3]):
        kept = f" The last checkpoint, {ckpt}, predates it and is kept." if ckpt is not None and ckpt.exists() else ""
        raise DistillationDiverged(
            f"distillation diverged: by iteration {st.iteration - 1} the distilled pixels reach "
            f"{st.x_dis.detach().abs().amax().item():.3g}, more than 100x the real images' range (|x| <= "
            f"{limit / 100:.3g}); lower lr_img (now {cfg.lr_img}).{kept}")
    st.history["loss"] += values.cpu().tolist()
    st.history["syn_lr"] += torch.stack(lrs).cpu().tolist()
    st.history["seconds"] += seconds
    losses.clear(), lrs.clear(), seconds.clear()


# ----------------------------------------------------------------------------- the distillation loop

def distill(x_select: torch.Tensor, y_select: torch.Tensor, x_distill: torch.Tensor, y_distill: torch.Tensor,
            experts: str | os.PathLike | list[Trajectory], model: str, *, num_classes: int, cfg: DistillConfig,
            width: int | None = None, depth: int | None = None, seed: int = 0, out: str | os.PathLike | None = None,
            resume: bool = False, keep_at: tuple[int, ...] = (), progress: bool = True, device: DeviceLike = "cpu",
            identity: dict | None = None) -> DistillResult:
    """Distill ``x_distill`` (normalised floats) next to the frozen ``x_select`` on ``device``; see the module
    docstring.

    Args:
        experts: a folder of expert files or a list of trajectories.
        model, width, depth: the network the experts were trained with.
        out: folder for ``checkpoint.pt`` (needed for ``resume``); written every ``cfg.checkpoint_every``
            iterations, after the iterations since the last one were checked for divergence.
        keep_at: iterations whose distilled images are returned in ``DistillResult.snapshots`` (CPU tensors),
            and kept in ``out/evals/`` so that a resumed run returns them too. The caller evaluates them;
            they never change what the run does. A resumed run that passed one of them without keeping it
            raises :class:`MissingSnapshots` (distill again without ``resume``: the run is deterministic).
        device: where the student, the images, ``syn_lr``, the optimisers and the trajectories live.
        identity: what else the run depends on (the pipeline passes the dataset, its fingerprint and the
            selection); stored in the checkpoint with the hyperparameters, and compared field by field
            before a checkpoint is continued.

    Raises :class:`DistillationDiverged` when the loss, the images or ``syn_lr`` become non-finite, or the
    pixels leave 100x the real images' range; it is raised before the checkpoint after it is written.
    """
    device = resolve_device(device)
    if not len(x_select) + len(x_distill):
        raise ValueError("the synthetic set is empty (no D_select and no D_distill images)")
    bad = [e for e in keep_at if not 0 <= e <= cfg.iterations]
    if bad:
        raise ValueError(f"keep_at={list(keep_at)}: {bad} outside [0, iterations={cfg.iterations}]")
    pool = ExpertPool(experts, device)
    net, layout = _student(model, x_distill if len(x_distill) else x_select, num_classes, width, depth, cfg, pool,
                           device)
    st = _State.fresh(x_distill, cfg, seed, device)
    ckpt = Path(out) / "checkpoint.pt" if out else None
    run = _run_record(cfg, seed, model, width, depth, len(x_select), len(x_distill), identity)
    saved = _resume_state(ckpt, run, cfg.iterations) if resume else None
    if saved is not None:
        st.restore(saved)
    snapshots = _restore_snapshots(ckpt, keep_at, st.iteration, run)
    x_sel, y_all = x_select.to(device, torch.float32), torch.cat([y_select, y_distill]).to(device)
    limit = 100 * float(torch.cat([x_select.flatten(), x_distill.flatten()]).abs().max())
    iterations = cfg.iterations if len(x_distill) else st.iteration   # alpha = 0: nothing to distill
    log_every = min(cfg.checkpoint_every, 10)
    losses, lrs, seconds = [], [], []
    bar = tqdm(total=iterations, initial=st.iteration, desc="distill", disable=not progress)
    with reuse_freed_memory():     # the unroll's temporaries reuse freed memory: ~1.4x faster on a CPU
        while True:
            if st.iteration in keep_at and st.iteration not in snapshots:
                snapshots[st.iteration] = _keep(ckpt, st, run)
            if st.iteration >= iterations:
                break
            t0 = time.perf_counter()
            losses.append(_iteration(net, layout, pool, st, x_sel, y_all, cfg))
            lrs.append(st.syn_lr.detach().clone())
            seconds.append(time.perf_counter() - t0)
            bar.update(1)
            due = st.iteration % cfg.checkpoint_every == 0 or st.iteration == iterations
            if due or st.iteration % log_every == 0:
                _record(st, losses, lrs, seconds, cfg, ckpt, limit)
                bar.set_postfix(loss=f"{st.history['loss'][-1]:.4f}", syn_lr=f"{st.history['syn_lr'][-1]:.2e}")
            if due and ckpt is not None:
                save_checkpoint(ckpt, st.snapshot(run))
    bar.close()
    flags = torch.cat([torch.zeros(len(x_select), dtype=torch.bool), torch.ones(len(x_distill), dtype=torch.bool)])
    return DistillResult(torch.cat([x_select.float(), st.x_dis.detach().cpu()]), y_all.cpu(), flags,
                         float(st.syn_lr.detach().cpu()), st.history, dict(sorted(snapshots.items())))


def _restore_snapshots(ckpt: Path | None, keep_at: tuple[int, ...], iteration: int, run: dict) -> dict:
    """The images kept at the points of ``keep_at`` that a resumed run has already passed."""
    passed = [k for k in keep_at if k < iteration]
    found = {k: _kept(ckpt.parent, k, run) for k in passed} if ckpt is not None else {}
    missing = [k for k in passed if found.get(k) is None]
    if missing:
        raise MissingSnapshots(f"{ckpt} is at iteration {iteration}, past keep_at {missing}, but the images of those "
                               "iterations were not kept; distill again without resume (the same run) or into "
                               "another folder")
    return found


def _keep(ckpt: Path | None, st: _State, run: dict) -> torch.Tensor:
    """The distilled images now (a CPU copy), also written beside the checkpoint for a resumed run."""
    x = st.x_dis.detach().cpu().clone()
    if ckpt is not None:
        save_snapshot(snapshot_path(ckpt.parent, st.iteration), {"run": json.dumps(run), "iteration": st.iteration,
                                                                 "x_distill": x})
    return x
