"""Evaluation: a short training run on a small real subset beats chance by a clear margin."""
from __future__ import annotations

import pytest
import torch

from selmatch import load_dataset
from selmatch.evaluate import evaluate, evaluate_selection, halves, selection_set
from selmatch.select import random_subset, sliding_window
from selmatch.train import TrainConfig

CFG = TrainConfig(model="convnet", width=16, epochs=15, lr=0.03, batch_size=64, augmentation="simple")


def test_beats_chance_and_reports_groups():
    ds = load_dataset("mnist5k")
    sel = random_subset(ds.y_train, 30, seed=0)
    res = evaluate_selection(ds, sel, CFG, runs=2, seed=0, test_hardness=torch.rand(1000), progress=False)
    assert res.mean > 60 and len(res.runs) == 2 and res.std >= 0   # chance is 10 %
    assert set(res.groups) == {"easy", "hard"}
    again = evaluate_selection(ds, sel, CFG, runs=1, seed=0, test_hardness=torch.rand(1000), progress=False)
    assert again.runs[0] == res.runs[0]                              # deterministic for a seed


def test_combined_with_distilled_mask():
    ds = load_dataset("mnist5k")
    scores = torch.rand(len(ds.y_train), generator=torch.Generator().manual_seed(0)).double()
    sel = sliding_window(scores, ds.y_train, 20, 0.1, 0.5)
    x, y, distilled = selection_set(ds, sel)
    assert distilled.sum() == 100 and x.shape == (200, 1, 28, 28)
    res = evaluate(x, y, ds.normalize(ds.x_test), ds.y_test, CFG.with_(augmentation="combined", epochs=4),
                   num_classes=10, distilled=distilled, progress=False)
    assert res.mean > 30


def test_halves_split():
    h = halves(torch.tensor([3.0, 1.0, 2.0, 0.0]))
    assert h["easy"].tolist() == [False, True, False, True] and h["hard"].tolist() == [True, False, True, False]


def test_bad_config():
    with pytest.raises(ValueError, match="augmentation='autoaugment'"):
        TrainConfig(augmentation="autoaugment")
    with pytest.raises(ValueError, match="runs=0"):
        evaluate(torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]), torch.zeros(1, 1, 28, 28), torch.tensor([0]), CFG, runs=0)


def test_main_table_labels_full_dataset_numbers_as_orientation(monkeypatch):
    """The 10-class TinyImageNet table shows the paper's 200-class numbers under a header that says so;
    CIFAR-10 keeps the plain paper column."""
    from types import SimpleNamespace

    from selmatch import report

    shown = []
    monkeypatch.setattr(report, "show", shown.append)
    r = {"mean": 30.0, "std": 1.0, "runs": [29, 30, 31], "beta": 0.6, "alpha": 0.25}
    by = {m: r for m in report.METHODS}
    report.main_table({50: by}, SimpleNamespace(dataset="tinyimagenet-c10", profile="cpu"))
    report.main_table({250: by}, SimpleNamespace(dataset="cifar10", profile="cpu"))
    tiny, c10 = shown
    assert "all 200 classes" in tiny and "44.7 ± 0.2" in tiny          # the paper's SelMatch, Tiny 10 %
    assert "all 200 classes" not in c10 and "82.8 ± 0.2" in c10       # the paper's SelMatch, CIFAR-10 5 %


def test_compiled_training_is_the_same_computation(monkeypatch):
    """SELMATCH_COMPILE=1 trains through torch.compile: after a few steps the weights agree with eager
    mode to float rounding (fused kernels round differently, so not bit for bit)."""
    from selmatch.train import new_model, train

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 16, 16, generator=g), torch.arange(64) % 4
    cfg = TrainConfig(model="convnet", width=8, depth=2, epochs=2, lr=0.01, batch_size=32, augmentation="none")
    models = {}
    for flag in ("0", "1"):
        monkeypatch.setenv("SELMATCH_COMPILE", flag)
        models[flag] = train(x, y, cfg, seed=0, num_classes=4, progress=False)
    for (name, a), b in zip(models["0"].named_parameters(), models["1"].parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
    init = new_model(cfg, 3, 4, 16, seed=0)                      # training moved the weights: not vacuous
    assert not torch.allclose(init.classifier.weight, models["1"].classifier.weight, atol=1e-4)


def test_channels_last_training_is_the_same_computation(monkeypatch):
    """ResNet-18-BN trains in channels-last memory in eager mode (faster on CPU); the weights agree with the
    default layout to float rounding."""
    from selmatch.networks import ResNet18BN
    from selmatch.train import train

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(32, 3, 16, 16, generator=g), torch.arange(32) % 4
    cfg = TrainConfig(model="resnet18_bn", width=4, epochs=2, lr=0.01, batch_size=16, augmentation="none")
    models = {}
    for flag in (False, True):
        monkeypatch.setattr(ResNet18BN, "channels_last", flag)
        models[flag] = train(x, y, cfg, seed=0, num_classes=4, progress=False)
    assert models[True].stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not models[False].stem[0].weight.is_contiguous(memory_format=torch.channels_last)
    for (name, a), b in zip(models[False].named_parameters(), models[True].parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), name
