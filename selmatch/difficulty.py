"""Difficulty scores computed here: forgetting counts and EL2N, all with higher = harder.

* Forgetting (Toneva et al., 2019): how often an image goes from correctly to incorrectly classified
  between consecutive epochs. Images never classified correctly rank hardest: they get the number of
  epochs, which exceeds any possible count.
* EL2N (Paul et al., 2021): ``||softmax(logits) - onehot(y)||_2`` early in training.

:func:`record_difficulty` trains one network on the training set and records, every epoch, the
correctness of each training image (from its training minibatch, as Toneva et al. do) and of a
held-out split (an extra pass), so test images get a difficulty too.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .device import DeviceLike
from .train import TrainConfig, predict, train


def forgetting_counts(history: torch.Tensor) -> torch.Tensor:
    """Forgetting events per sample from a bool correctness history ``[epochs, N]``.

    Returns float64 ``[N]``: the number of correct -> incorrect transitions, or ``epochs`` for
    samples never correct.
    """
    if history.ndim != 2:
        raise ValueError(f"history must be [epochs, N], got shape {tuple(history.shape)}")
    h = history.to(torch.bool)
    events = (h[:-1] & ~h[1:]).sum(0).double()
    never = ~h.any(0)
    return torch.where(never, torch.full_like(events, float(len(h))), events)


def el2n(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Error L2 norm per sample, float64 ``[N]``."""
    onehot = F.one_hot(labels, logits.shape[1]).to(logits.dtype)
    return (F.softmax(logits, 1) - onehot).norm(dim=1).double()


@dataclass(frozen=True)
class DifficultyRecord:
    train_history: torch.Tensor     # bool [epochs, N_train]
    test_history: torch.Tensor      # bool [epochs, N_test] (empty if no held-out split)
    el2n_train: torch.Tensor        # float64 [N_train]
    el2n_epoch: int

    @property
    def forgetting_train(self) -> torch.Tensor:
        return forgetting_counts(self.train_history)

    @property
    def forgetting_test(self) -> torch.Tensor:
        return forgetting_counts(self.test_history)


def record_difficulty(x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, seed: int, *,
                      x_test: torch.Tensor | None = None, y_test: torch.Tensor | None = None,
                      el2n_epoch: int = 1, num_classes: int | None = None, progress: bool = True,
                      device: DeviceLike = "cpu") -> DifficultyRecord:
    """Train ``cfg`` on ``(x, y)`` on ``device`` and record correctness histories and EL2N (after epoch
    ``el2n_epoch``, counting from 1)."""
    if not 1 <= el2n_epoch <= cfg.epochs:
        raise ValueError(f"el2n_epoch={el2n_epoch} must lie in [1, {cfg.epochs}] (the number of epochs)")
    train_hist = torch.zeros(cfg.epochs, len(x), dtype=torch.bool)
    test_hist = torch.zeros(cfg.epochs, 0 if x_test is None else len(x_test), dtype=torch.bool)
    el2n_scores = torch.zeros(len(x), dtype=torch.float64)
    y_cpu = y.cpu()

    pending: list[tuple[torch.Tensor, torch.Tensor]] = []      # read back once per epoch, not per step

    def on_batch(epoch, idx, logits):
        pending.append((idx, logits.argmax(1)))

    def on_epoch(epoch, model):
        if pending:
            idx, pred = torch.cat([i for i, _ in pending]), torch.cat([p for _, p in pending]).cpu()
            train_hist[epoch, idx] = pred == y_cpu[idx]
            pending.clear()
        if x_test is not None:
            test_hist[epoch] = predict(model, x_test).argmax(1) == y_test.cpu()
        if epoch + 1 == el2n_epoch:
            el2n_scores.copy_(el2n(predict(model, x), y_cpu))

    train(x, y, cfg, seed, num_classes=num_classes, on_batch=on_batch, on_epoch=on_epoch, progress=progress,
          desc="difficulty", device=device)
    return DifficultyRecord(train_hist, test_hist, el2n_scores, el2n_epoch)
