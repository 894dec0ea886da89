"""Sliding-window selection (SelMatch's initialisation) and random class-balanced subsets.

Per class, images are ordered hardest first (ties broken by dataset index: a stable sort). A window
of ``ipc`` images starts at ``start``:

* ``start_mode="fraction"`` (default, the paper's reading): ``start = round(beta * images in class)``,
  so ``beta`` is the fraction of the hardest images skipped, and ``beta <= 1 - ipc / class size``.
* ``start_mode="ipc"`` (the official code): ``start = int(ipc * beta)``.

Inside the window the first ``ipc - int(ipc * alpha)`` images (the harder part) are D_select (kept as
real images) and the rest D_distill (initialise the distilled images). The book: *Method*, and *Reproduction notes* #1.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

START_MODES = ("fraction", "ipc")


@dataclass(frozen=True)
class Selection:
    """Training-set indices, class by class, and the scores that produced them."""

    select_idx: torch.Tensor    # int64, D_select (real, frozen)
    distill_idx: torch.Tensor   # int64, D_distill (initialisation of the learned images)
    scores: torch.Tensor | None  # hardness of every training image (higher = harder), or None (random)
    params: dict

    @property
    def indices(self) -> torch.Tensor:
        """All selected indices: D_select then D_distill."""
        return torch.cat([self.select_idx, self.distill_idx])


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:          # NaN fails too
        raise ValueError(f"{name}={value} must lie in [0, 1]")


def _as_tensor(name: str, value) -> torch.Tensor:
    """A tensor, numpy array or list as a tensor (what the API takes), or a ValueError naming the argument."""
    if torch.is_tensor(value):
        return value
    try:
        return torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{name} must be a tensor, a numpy array or a list of numbers, got {type(value).__name__} "
                         f"({e})") from None


def _check_labels(labels: torch.Tensor, num_classes: int | None) -> int:
    """The number of classes, checked against the labels (an integer tensor in [0, num_classes))."""
    if labels.dtype.is_floating_point or labels.dtype == torch.bool or labels.ndim != 1 or not len(labels):
        raise ValueError(f"labels must be a non-empty 1-D integer tensor, got {labels.dtype} {tuple(labels.shape)}")
    top = int(labels.max()) + 1
    if int(labels.min()) < 0 or (num_classes is not None and top > num_classes):
        raise ValueError(f"num_classes={num_classes} but the labels lie in [{int(labels.min())}, {top - 1}]")
    return num_classes or top


def _class_sizes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return torch.bincount(labels, minlength=num_classes)


def _check_ipc(ipc: int, sizes: torch.Tensor) -> None:
    if isinstance(ipc, bool) or not isinstance(ipc, int) and not (hasattr(ipc, "__index__")):
        raise ValueError(f"ipc={ipc!r} must be a whole number of images per class")
    ipc = int(ipc)
    empty = (sizes == 0).nonzero().flatten()
    if len(empty):
        raise ValueError(f"num_classes={len(sizes)} but class {int(empty[0])} has no images in labels (they hold "
                         f"{int((sizes > 0).sum())} classes); pass the number of classes the labels have")
    smallest = int(sizes.min())
    if not 1 <= ipc <= smallest:
        raise ValueError(f"ipc={ipc} must lie in [1, {smallest}] (the smallest class has {smallest} images)")


def window_start(ipc: int, beta: float, class_size: int, start_mode: str) -> int:
    if start_mode == "fraction":
        return round(beta * class_size)
    if start_mode == "ipc":
        return int(ipc * beta)
    raise ValueError(f"start_mode={start_mode!r} is unknown; valid: {', '.join(START_MODES)}")


def max_beta(ipc: int, class_size: int, start_mode: str) -> float:
    """The largest beta whose window still fits inside a class of ``class_size`` images."""
    room = class_size - ipc
    return room / class_size if start_mode == "fraction" else room / ipc


def sliding_window(scores: torch.Tensor, labels: torch.Tensor, ipc: int, beta: float, alpha: float,
                   start_mode: str = "fraction", num_classes: int | None = None) -> Selection:
    """SelMatch's selection: per class, a window of ``ipc`` images ``beta`` from the hard end.

    Args:
        scores: hardness of every training image, higher = harder.
        labels: int64 labels of the training images.
        ipc: images per class in the window.
        beta: window start (see ``start_mode``).
        alpha: fraction of the window to distill; ``int(ipc * alpha)`` images per class.
        start_mode: ``"fraction"`` (default) or ``"ipc"`` (official code).
    """
    scores, labels = _as_tensor("scores", scores), _as_tensor("labels", labels)
    if scores.shape != labels.shape:
        raise ValueError(f"scores has shape {tuple(scores.shape)} but labels {tuple(labels.shape)}")
    _check_unit("alpha", alpha)
    if not (0 <= beta < float("inf")):
        raise ValueError(f"beta={beta} must be a finite number >= 0")
    if not torch.isfinite(scores).all():
        bad = int((~torch.isfinite(scores)).sum())
        raise ValueError(f"scores has {bad} NaN or infinite values; every training image needs a finite hardness")
    num_classes = _check_labels(labels, num_classes)
    sizes = _class_sizes(labels, num_classes)
    _check_ipc(ipc, sizes)
    n_distill = int(ipc * alpha)
    n_select = ipc - n_distill
    select, distill = [], []
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()            # ascending dataset index
        order = torch.sort(-scores[members].double(), stable=True).indices  # hardest first, ties by index
        ranked = members[order]
        start = window_start(ipc, beta, len(members), start_mode)
        if start + ipc > len(members):
            raise ValueError(
                f"beta={beta} puts the window of ipc={ipc} at {start}..{start + ipc} past the end of class {c} "
                f"({len(members)} images); the largest valid beta is "
                f"{max_beta(ipc, int(sizes.min()), start_mode):.4g} (start_mode={start_mode!r})")
        select.append(ranked[start:start + n_select])
        distill.append(ranked[start + n_select:start + ipc])
    params = {"method": "sliding_window", "ipc": ipc, "beta": beta, "alpha": alpha, "start_mode": start_mode,
              "n_select_per_class": n_select, "n_distill_per_class": n_distill}
    return Selection(torch.cat(select), torch.cat(distill), scores, params)


def random_subset(labels: torch.Tensor, ipc: int, seed: int, num_classes: int | None = None,
                  alpha: float = 0.0) -> Selection:
    """``ipc`` images per class drawn uniformly without replacement; the last ``int(ipc * alpha)`` of each
    class's draw form D_distill (``alpha = 1``: MTT's random real initialisation)."""
    labels = _as_tensor("labels", labels)
    _check_unit("alpha", alpha)
    num_classes = _check_labels(labels, num_classes)
    _check_ipc(ipc, _class_sizes(labels, num_classes))
    g = torch.Generator().manual_seed(seed)
    n_select = ipc - int(ipc * alpha)
    select, distill = [], []
    for c in range(num_classes):
        members = (labels == c).nonzero().flatten()
        picked = members[torch.randperm(len(members), generator=g)[:ipc]]
        select.append(picked[:n_select].sort().values)
        distill.append(picked[n_select:].sort().values)
    params = {"method": "random", "ipc": ipc, "seed": seed, "alpha": alpha, "n_select_per_class": n_select,
              "n_distill_per_class": ipc - n_select}
    return Selection(torch.cat(select), torch.cat(distill), None, params)
