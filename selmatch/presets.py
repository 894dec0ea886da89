"""Presets: the paper's ten settings (FACTS §3) as data, plus ``cpu`` and ``smoke``.

A preset fixes the network, the expert training, the distillation hyperparameters and the selection
(ipc, alpha, beta, score). Each paper preset lists only what differs from :data:`PAPER_BASE` (or the
Tiny base); command-line flags override a preset.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .distill import DistillConfig
from .experts import ExpertConfig


@dataclass(frozen=True)
class Preset:
    name: str
    dataset: str | None                      # None: any dataset (smoke, cpu)
    ipc: int
    alpha: float
    beta: float
    score: str = "cscore"
    start_mode: str = "fraction"
    eval_epochs: int | None = None           # the official evaluation epochs (paper presets)
    expert: ExpertConfig = field(default_factory=ExpertConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)

    @property
    def model(self) -> str:
        return self.expert.model


PAPER_BASE = Preset("paper-base", "cifar10", ipc=250, alpha=0.6, beta=0.5)
TINY_BASE = replace(PAPER_BASE, dataset="tinyimagenet", score="forgetting",
                    expert=ExpertConfig(model="convnet_d4_bn"), distill=DistillConfig(syn_steps=20))


def _paper(name, base, ipc, alpha, beta, lr_img, eval_epochs):
    return replace(base, name=name, ipc=ipc, alpha=alpha, beta=beta, eval_epochs=eval_epochs,
                   distill=replace(base.distill, lr_img=lr_img))


PRESETS: dict[str, Preset] = {p.name: p for p in [
    _paper("cifar10-ipc250", PAPER_BASE, 250, 0.6, 0.5, 1000, 1000),
    _paper("cifar10-ipc500", PAPER_BASE, 500, 0.2, 0.3, 1000, 500),
    _paper("cifar10-ipc1000", PAPER_BASE, 1000, 0.1, 0.2, 10000, 250),
    _paper("cifar10-ipc1500", PAPER_BASE, 1500, 0.1, 0.2, 10000, 167),
    _paper("cifar100-ipc25", replace(PAPER_BASE, dataset="cifar100"), 25, 0.8, 0.8, 1000, 1000),
    _paper("cifar100-ipc50", replace(PAPER_BASE, dataset="cifar100"), 50, 0.6, 0.7, 1000, 500),
    _paper("cifar100-ipc100", replace(PAPER_BASE, dataset="cifar100"), 100, 0.3, 0.6, 1000, 250),
    _paper("cifar100-ipc150", replace(PAPER_BASE, dataset="cifar100"), 150, 0.2, 0.4, 1000, 167),
    _paper("tiny-ipc50", TINY_BASE, 50, 0.6, 0.8, 1000, 500),
    _paper("tiny-ipc100", TINY_BASE, 100, 0.5, 0.7, 1000, 250),
    # Seconds: tests and CI. Experts on 100 images per class, a handful of iterations.
    Preset("smoke", None, ipc=10, alpha=0.5, beta=0.5,
           expert=ExpertConfig(model="convnet_bn", width=16, num_experts=2, epochs=3, max_per_class=50,
                               batch_size=128),
           distill=DistillConfig(iterations=5, syn_steps=5, expert_epochs=1, max_start_epoch=2, lr_img=100,
                                 lr_init=0.01, batch_syn=50, checkpoint_every=2)),
    # The book's own scale on 2 CPU cores: experts on 1,000 images per class, short distillation.
    Preset("cpu", None, ipc=50, alpha=0.5, beta=0.2,
           expert=ExpertConfig(model="convnet_bn", width=32, num_experts=5, epochs=10, max_per_class=1000,
                               batch_size=256),
           distill=DistillConfig(iterations=60, syn_steps=10, expert_epochs=2, max_start_epoch=6, lr_img=1000,
                                 lr_init=0.01, batch_syn=128, checkpoint_every=10)),
    # The same scale for 64x64 images (TinyImageNet, ConvNetD4): a step costs ~4x a CIFAR step, so half
    # the batch and two thirds of the iterations keep a distillation at about twice the CIFAR cost.
    Preset("cpu-tiny", "tinyimagenet", ipc=50, alpha=0.5, beta=0.2,
           expert=ExpertConfig(model="convnet_bn", width=32, depth=4, num_experts=5, epochs=10, max_per_class=1000,
                               batch_size=256),
           distill=DistillConfig(iterations=40, syn_steps=10, expert_epochs=2, max_start_epoch=6, lr_img=1000,
                                 lr_init=0.01, batch_syn=64, checkpoint_every=10)),
]}


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"preset={name!r} is unknown; valid: {', '.join(PRESETS)}")
    return PRESETS[name]
