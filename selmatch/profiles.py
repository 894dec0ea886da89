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
    eval_full_epochs: float | None = None  # evaluation epochs * subset size = this * training-set size
    eval_max_epochs: int | None = None     # ... but at most this many epochs (small subsets)
    eval_min_epochs: int = 1               # ... and at least this many (small training sets)
    test_subset: int | None = None   # evaluate on a class-balanced sample of the test set (None = all)
    preset: str = "smoke"            # distillation preset at this scale ("paper": per dataset and ipc)

    def eval_config(self, n_train: int, n_subset: int, image_size: int = 32, model: str | None = None) -> TrainConfig:
        """The evaluation config for a subset of ``n_subset`` of ``n_train`` images. Epochs keep
        ``epochs * n_subset`` constant across subset sizes (the official rule, 50 full-data epochs).
        ResNet-18 on 64x64 images uses the stride-2 stem (``resnet18_bn_tiny``), as the official code does."""
        cfg = self.eval if model is None else self.eval.with_(model=model)
        if cfg.model == "resnet18_bn" and image_size >= 64:
            cfg = cfg.with_(model="resnet18_bn_tiny")
        if cfg.model.startswith("convnet") and image_size >= 64 and cfg.depth is None:
            cfg = cfg.with_(depth=4)   # ConvNetD4 for 64x64, as the paper
        if self.eval_full_epochs is not None:
            epochs = max(1, round(self.eval_full_epochs * n_train / n_subset))
            cfg = cfg.with_(epochs=max(self.eval_min_epochs, min(epochs, self.eval_max_epochs or epochs)))
        return cfg


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        eval=TrainConfig(model="convnet", width=16, epochs=30, lr=0.03, batch_size=64, augmentation="dsa"),
        scores=TrainConfig(model="convnet", width=8, epochs=2, lr=0.02, batch_size=512, augmentation="none"),
        features=TrainConfig(model="convnet", width=8, epochs=1, lr=0.02, batch_size=512, augmentation="none"),
        runs=2, coverage_real=2000, eval_full_epochs=0.04, eval_max_epochs=20, eval_min_epochs=10,
        test_subset=1000, preset="smoke"),
    "cpu": Profile(
        "cpu",
        # ConvNet width 32 trains at ~1,500 img/s on 2 cores; eval_full_epochs=1 makes every evaluation
        # process 50,000 images (~35 s), whatever the subset size (the paper's rule with 1 instead of 50).
        eval=TrainConfig(model="convnet", width=32, epochs=100, lr=0.01, batch_size=128, augmentation="dsa"),
        scores=TrainConfig(model="convnet", width=32, epochs=15, lr=0.01, batch_size=128, augmentation="simple"),
        features=TrainConfig(model="convnet", width=32, epochs=5, lr=0.01, batch_size=128, augmentation="simple"),
        runs=3, coverage_real=10000, eval_full_epochs=1.0, eval_max_epochs=200, eval_min_epochs=10, preset="cpu"),
    "paper": Profile(
        "paper",
        eval=TrainConfig(model="resnet18_bn", epochs=500, lr=0.1, batch_size=128, augmentation="dsa"),
        scores=TrainConfig(model="resnet18_bn", epochs=200, lr=0.1, batch_size=128, augmentation="simple"),
        features=TrainConfig(model="resnet18_bn", epochs=200, lr=0.1, batch_size=128, augmentation="simple"),
        runs=5, eval_full_epochs=50.0, preset="paper"),
}


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"profile={name!r} is unknown; valid: {', '.join(PROFILES)}")
    return PROFILES[name]
