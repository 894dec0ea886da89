"""Evaluation: a short training run on a small real subset beats chance by a clear margin."""
from __future__ import annotations

import pytest
import torch

from selmatch import load_dataset
from selmatch.evaluate import evaluate, halves, selection_set
from selmatch.select import random_subset, sliding_window
from selmatch.train import TrainConfig

CFG = TrainConfig(model="convnet", width=16, epochs=15, lr=0.03, batch_size=64, augmentation="simple")


def test_beats_chance_and_reports_groups():
    ds = load_dataset("mnist5k")
    x, y, distilled = selection_set(ds, random_subset(ds.y_train, 30, seed=0))
    groups = halves(torch.rand(1000))
    args = dict(num_classes=10, distilled=distilled, groups=groups, seed=0, progress=False)
    res = evaluate(x, y, ds.normalize(ds.x_test), ds.y_test, CFG, runs=2, **args)
    assert res.mean > 60 and len(res.runs) == 2 and res.std >= 0   # chance is 10 %
    assert set(res.groups) == {"easy", "hard"}
    again = evaluate(x, y, ds.normalize(ds.x_test), ds.y_test, CFG, runs=1, **args)
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


def test_bad_runs():
    with pytest.raises(ValueError, match="runs=0"):
        evaluate(torch.zeros(2, 1, 28, 28), torch.tensor([0, 1]), torch.zeros(1, 1, 28, 28), torch.tensor([0]), CFG, runs=0)


@pytest.mark.parametrize("compiled", ["0", "1"])
def test_evaluating_a_set_again_gives_the_same_accuracies(monkeypatch, compiled):
    """The same set, seeds and configuration give the same accuracies whatever the process evaluated before
    (another set, of another size): with SELMATCH_COMPILE=1 the first run once used kernels that depended on
    what had been compiled before it, and one set gave two different first runs on two pages."""
    monkeypatch.setenv("SELMATCH_COMPILE", compiled)
    ds = load_dataset("mnist5k")
    cfg = CFG.with_(epochs=3, augmentation="dsa")
    test = dict(x_test=ds.normalize(ds.x_test[:500]), y_test=ds.y_test[:500], num_classes=10, progress=False)
    a = selection_set(ds, random_subset(ds.y_train, 13, seed=0))[:2]
    b = selection_set(ds, random_subset(ds.y_train, 7, seed=1))[:2]
    first = evaluate(*a, cfg=cfg, runs=2, **test).runs
    evaluate(*b, cfg=cfg.with_(batch_size=32), runs=1, **test)
    assert evaluate(*a, cfg=cfg, runs=2, **test).runs == first
