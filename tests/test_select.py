"""Sliding-window selection against an independent computation, edge cases and errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from selmatch.select import random_subset, sliding_window


def reference_window(scores, labels, ipc, beta, alpha, start_mode):
    """An independent numpy computation: per class, hardest first (stable), then the window."""
    sel, dis = [], []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        ranked = members[np.argsort(-scores[members], kind="stable")]
        start = int(round(beta * len(members))) if start_mode == "fraction" else int(ipc * beta)
        n_dis = int(ipc * alpha)
        sel += list(ranked[start:start + ipc - n_dis])
        dis += list(ranked[start + ipc - n_dis:start + ipc])
    return np.array(sel), np.array(dis)


def toy(n_per_class=20, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    rng.shuffle(labels)
    scores = rng.integers(0, 5, len(labels)).astype(float)   # many ties: index order must break them
    return torch.from_numpy(scores), torch.from_numpy(labels)


@pytest.mark.parametrize("start_mode", ["fraction", "ipc"])
@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_matches_reference(start_mode, alpha):
    s, y = toy()
    sel = sliding_window(s, y, 6, 0.5, alpha, start_mode)
    ref_sel, ref_dis = reference_window(s.numpy(), y.numpy(), 6, 0.5, alpha, start_mode)
    assert sel.select_idx.tolist() == ref_sel.tolist() and sel.distill_idx.tolist() == ref_dis.tolist()


def test_alpha_extremes_and_beta_zero():
    s, y = toy()
    all_select = sliding_window(s, y, 5, 0.0, 0.0)
    assert len(all_select.distill_idx) == 0 and len(all_select.select_idx) == 15
    all_distill = sliding_window(s, y, 5, 0.0, 1.0)
    assert len(all_distill.select_idx) == 0
    assert sorted(all_distill.distill_idx.tolist()) == sorted(all_select.select_idx.tolist())
    # beta = 0 takes the hardest ipc images of each class
    for c in range(3):
        members = (y == c).nonzero().flatten()
        chosen = all_select.select_idx[y[all_select.select_idx] == c]
        assert s[chosen].min() >= s[members].sort(descending=True).values[4]
    # class-balanced by construction, D_select harder than D_distill
    part = sliding_window(s, y, 10, 0.0, 0.5)
    assert torch.bincount(y[part.indices]).tolist() == [10, 10, 10]
    assert s[part.select_idx].mean() >= s[part.distill_idx].mean()


def test_start_modes_differ():
    s, y = toy(n_per_class=100)
    frac = sliding_window(s, y, 10, 0.5, 0.0, "fraction")  # start 50
    ipc = sliding_window(s, y, 10, 0.5, 0.0, "ipc")        # start 5
    assert set(frac.select_idx.tolist()).isdisjoint(ipc.select_idx.tolist())


def test_overflow_names_largest_beta():
    s, y = toy()
    with pytest.raises(ValueError, match=r"largest valid beta is 0\.75 "):
        sliding_window(s, y, 5, 0.8, 0.0, "fraction")
    with pytest.raises(ValueError, match=r"largest valid beta is 3 "):
        sliding_window(s, y, 5, 3.2, 0.0, "ipc")
    sliding_window(s, y, 5, 0.75, 0.0, "fraction")  # the largest valid one works


def test_bad_arguments():
    s, y = toy()
    with pytest.raises(ValueError, match=r"ipc=21 must lie in \[1, 20\]"):
        sliding_window(s, y, 21, 0.0, 0.0)
    with pytest.raises(ValueError, match=r"alpha=1.5 must lie in \[0, 1\]"):
        sliding_window(s, y, 5, 0.0, 1.5)
    with pytest.raises(ValueError, match="start_mode='middle'"):
        sliding_window(s, y, 5, 0.0, 0.0, "middle")


def test_random_subset():
    _, y = toy()
    a, b = random_subset(y, 7, seed=1), random_subset(y, 7, seed=1)
    assert torch.equal(a.select_idx, b.select_idx) and torch.bincount(y[a.select_idx]).tolist() == [7, 7, 7]
    assert not torch.equal(a.select_idx, random_subset(y, 7, seed=2).select_idx)


def test_published_cscores_both_modes(shared_data):
    from selmatch import load_dataset, load_scores

    ds = load_dataset("cifar10", download=False)
    h = load_scores(ds, "cscore")
    raw = np.load(shared_data / "scores" / "cscores_CIFAR10.npz")["scores"]
    labels = ds.y_train.numpy()
    for mode, beta in (("fraction", 0.5), ("ipc", 0.5)):
        sel = sliding_window(h, ds.y_train, 250, beta, 0.6, mode)
        # the test's own reference works on raw C-scores: ascending C-score = hardest first
        ref_sel, ref_dis = reference_window(-raw, labels, 250, beta, 0.6, mode)
        assert np.array_equal(sel.select_idx.numpy(), ref_sel) and np.array_equal(sel.distill_idx.numpy(), ref_dis)
    frac = sliding_window(h, ds.y_train, 250, 0.5, 0.0, "fraction")
    code = sliding_window(h, ds.y_train, 250, 0.5, 0.0, "ipc")
    assert raw[frac.select_idx.numpy()].mean() > raw[code.select_idx.numpy()].mean() + 0.1  # the book: Reproduction notes #1
