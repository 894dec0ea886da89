"""Shared fixtures: small datasets written in the real on-disk formats users have."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ["SELMATCH_DATA"]) if os.environ.get("SELMATCH_DATA") else None
if SHARED is not None:   # remembered before the autouse fixture hides it from each test
    os.environ["SELMATCH_DATA_SHARED"] = str(SHARED)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Every test gets its own cache and no download; SELMATCH_DATA is opt-in via ``shared_data``."""
    monkeypatch.setenv("SELMATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SELMATCH_OFFLINE", "1")
    monkeypatch.delenv("SELMATCH_DATA", raising=False)


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One decoded-tensor cache for all tests on the shared data, so CIFAR-10 is decoded once."""
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture
def shared_data(monkeypatch, shared_cache):
    if SHARED is None or not (SHARED / "cifar10_train.npz").exists():
        pytest.skip("SELMATCH_DATA is not set or lacks cifar10_train.npz (the shared offline data)")
    monkeypatch.setenv("SELMATCH_DATA", str(SHARED))
    monkeypatch.setenv("SELMATCH_CACHE", str(shared_cache))
    return SHARED


def write_cifar10_folder(root: Path, per_batch: int = 20, seed: int = 0) -> dict:
    """A miniature cifar-10-batches-py in torchvision's pickle format; returns the arrays written."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": names, b"num_cases_per_batch": per_batch}, f)
    xs, ys = [], []
    for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
        x = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": x, b"labels": y, b"batch_label": name.encode()}, f)
        xs.append(x)
        ys.append(y)
    return {"x": xs, "y": ys}


def write_tiny_tree(root: Path, n_classes: int = 12, per_class: int = 3, n_val: int = 30, seed: int = 0) -> dict:
    """A miniature tiny-imagenet-200 tree with JPEGs, wnids.txt, words.txt and val annotations."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{1000 + 7 * i:08d}" for i in range(n_classes)]
    shuffled = list(rng.permutation(wnids))  # wnids.txt is not sorted in the official archive
    (folder / "val" / "images").mkdir(parents=True)
    folder.joinpath("wnids.txt").write_text("\n".join(shuffled) + "\n")
    folder.joinpath("words.txt").write_text("".join(f"{w}\tthing {w}, other name\n" for w in wnids))
    for w in wnids:
        d = folder / "train" / w / "images"
        d.mkdir(parents=True)
        (folder / "train" / w / f"{w}_boxes.txt").write_text("")
        for k in range(per_class):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(d / f"{w}_{k}.JPEG")
    lines, val_wnids = [], []
    for k in range(n_val):
        w = wnids[int(rng.integers(0, n_classes))]
        mode = "L" if k % 5 == 0 else "RGB"  # some official images are greyscale
        arr = rng.integers(0, 256, (64, 64) if mode == "L" else (64, 64, 3), dtype=np.uint8)
        Image.fromarray(arr, mode).save(folder / "val" / "images" / f"val_{k}.JPEG")
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
        val_wnids.append(w)
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return {"wnids": wnids, "val_wnids": val_wnids, "per_class": per_class}


def write_npz_pair(folder: Path, prefix: str, n_train: int = 40, n_test: int = 20, classes: int = 10,
                   size: int = 32, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        y = np.arange(n) % classes
        np.savez(folder / f"{prefix}_{split}.npz", images=x, labels=y,
                 classes=np.array([f"c{i}" for i in range(classes)]))
        out[split] = (x, y)
    return out


# ----------------------------------------------------------------------------- distillation fixtures

def explicit_sgd(model, x, y, batches, lr):
    """The reference for the unrolled student: a plain SGD loop on a stock module; its final parameters."""
    import copy

    import torch
    import torch.nn.functional as F

    from selmatch.student import flatten

    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for idx in batches:
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return flatten(model)


@pytest.fixture(scope="module")
def mnist():
    from selmatch import load_dataset

    return load_dataset("mnist5k")


TINY_EXPERT = {"model": "convnet_bn", "width": 4, "num_experts": 2, "epochs": 3, "batch_size": 64}


@pytest.fixture(scope="module")
def experts(mnist, tmp_path_factory):
    """Two 3-epoch ConvNetBN-4 experts on 20 MNIST digits per class (one folder per test module)."""
    from selmatch.experts import ExpertConfig, train_experts
    from selmatch.select import random_subset

    idx = random_subset(mnist.y_train, 20, seed=0).select_idx
    out = tmp_path_factory.mktemp("experts")
    train_experts(mnist.normalize(mnist.x_train[idx]), mnist.y_train[idx], mnist.normalize(mnist.x_test[:200]),
                  mnist.y_test[:200], ExpertConfig(**TINY_EXPERT), out, num_classes=10, progress=False)
    return out

