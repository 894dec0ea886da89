"""Forgetting counts and EL2N on hand-made inputs; the recorder on a small real dataset."""
from __future__ import annotations

import torch

from selmatch import load_dataset
from selmatch.difficulty import el2n, forgetting_counts, record_difficulty
from selmatch.train import TrainConfig


def test_forgetting_on_hand_made_history():
    h = torch.tensor([
        # s0: learned, never forgotten; s1: forgotten twice; s2: never learned; s3: forgotten once at the end
        [1, 0, 0, 1],
        [1, 1, 0, 1],
        [1, 0, 0, 1],
        [1, 1, 0, 1],
        [1, 0, 0, 0],
    ], dtype=torch.bool)
    assert forgetting_counts(h).tolist() == [0.0, 2.0, 5.0, 1.0]


def test_el2n():
    logits = torch.tensor([[10.0, -10.0], [0.0, 0.0]])
    e = el2n(logits, torch.tensor([0, 0]))
    assert e[0] < 1e-6 and abs(e[1] - (0.5 ** 2 * 2) ** 0.5) < 1e-6


def test_record_difficulty_on_mnist():
    ds = load_dataset("mnist5k")
    idx = torch.arange(0, 4000, 4)
    cfg = TrainConfig(model="convnet", width=8, epochs=3, lr=0.05, batch_size=100, augmentation="none")
    rec = record_difficulty(ds.normalize(ds.x_train[idx]), ds.y_train[idx], cfg, seed=0,
                            x_test=ds.normalize(ds.x_test), y_test=ds.y_test, el2n_epoch=2, progress=False)
    assert rec.train_history.shape == (3, 1000) and rec.test_history.shape == (3, 1000)
    assert rec.test_history[-1].double().mean() > 0.5          # the network learns
    assert rec.forgetting_test.shape == (1000,) and rec.el2n_train.shape == (1000,)
    # EL2N ranks misclassified training images as harder than correctly classified ones
    wrong = rec.train_history[-1] == 0
    assert rec.el2n_train[wrong].mean() > rec.el2n_train[~wrong].mean()
    again = record_difficulty(ds.normalize(ds.x_train[idx]), ds.y_train[idx], cfg, seed=0, progress=False)
    assert torch.equal(again.train_history, rec.train_history)  # deterministic for a seed
