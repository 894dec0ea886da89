"""Compute profiles: the same analyses at three scales.

* ``smoke`` -- seconds; what tests and CI run. Tiny networks, a few epochs.
* ``cpu``   -- the book's own results on a 2-core CPU: small ConvNets, tens of epochs.
* ``paper`` -- the official hyperparameters (FACTS §3), meant for a GPU; exercised here only at smoke
  scale. Its evaluation epochs follow the official rule ``epochs * subset ratio = 50``.

A profile holds only training configurations; the selection parameters (ipc, alpha, beta) belong to
the experiment, not to the scale it runs at.
"""
from __future__ import annotations

from dataclasses import dataclass

from .train import TrainConfig


@dataclass(frozen=True)
class Profile:
    name: str
    eval: TrainConfig          # training a fresh network on a selected/distilled set
    scores: TrainConfig        # the network whose training records forgetting/EL2N
    features: TrainConfig      # the network whose penultimate layer defines coverage
    runs: int                  # evaluation runs reported as mean ± std
    coverage_real: int | None = None  # real training images used for coverage (None = all)
    paper_epochs: bool = False  # eval epochs from the official rule instead of eval.epochs

    def eval_config(self, n_train: int, n_subset: int, image_size: int = 32, model: str | None = None) -> TrainConfig:
        """The evaluation config for a subset of ``n_subset`` of ``n_train`` images. ResNet-18 on
        64x64 images uses the stride-2 stem (``resnet18_bn_tiny``), as the official code does."""
        cfg = self.eval if model is None else self.eval.with_(model=model)
        if cfg.model == "resnet18_bn" and image_size >= 64:
            cfg = cfg.with_(model="resnet18_bn_tiny")
        if self.paper_epochs:
            cfg = cfg.with_(epochs=max(1, round(50 * n_train / n_subset)))
        return cfg


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        eval=TrainConfig(model="convnet", width=16, epochs=30, lr=0.03, batch_size=64, augmentation="dsa"),
        scores=TrainConfig(model="convnet", width=16, epochs=3, lr=0.01, batch_size=256, augmentation="simple"),
        features=TrainConfig(model="convnet", width=16, epochs=1, lr=0.01, batch_size=256, augmentation="none"),
        runs=2, coverage_real=2000),
    "cpu": Profile(
        "cpu",
        eval=TrainConfig(model="convnet", width=64, epochs=60, lr=0.01, batch_size=128, augmentation="dsa"),
        scores=TrainConfig(model="convnet", width=32, epochs=20, lr=0.01, batch_size=128, augmentation="simple"),
        features=TrainConfig(model="convnet", width=64, epochs=10, lr=0.01, batch_size=128, augmentation="simple"),
        runs=3, coverage_real=10000),
    "paper": Profile(
        "paper",
        eval=TrainConfig(model="resnet18_bn", epochs=500, lr=0.1, batch_size=128, augmentation="dsa"),
        scores=TrainConfig(model="resnet18_bn", epochs=200, lr=0.1, batch_size=128, augmentation="simple"),
        features=TrainConfig(model="resnet18_bn", epochs=200, lr=0.1, batch_size=128, augmentation="simple"),
        runs=5, paper_epochs=True),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is unknown; valid: {', '.join(PROFILES)}")
    return PROFILES[name]
