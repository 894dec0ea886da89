"""Difficulty scores: alignment checks, normalisation (higher = harder), and the published files."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import write_npz_pair
from selmatch import DataFormatError, ScoreMismatchError, load_dataset, load_scores
from selmatch.data import DATASETS
from selmatch.scores import find_score_file


@pytest.fixture
def small_cifar(tmp_path, monkeypatch):
    """A 40-image 'cifar10' whose score files must therefore have 40 entries."""
    write_npz_pair(tmp_path / "data", "cifar10", n_train=40)
    monkeypatch.setitem(DATASETS, "cifar10", DATASETS["cifar10"].__class__(
        **{**DATASETS["cifar10"].__dict__, "n_train_full": 40}))
    (tmp_path / "data" / "scores").mkdir()
    return load_dataset("cifar10", data_dir=tmp_path / "data", download=False), tmp_path / "data"


def test_cscore_becomes_hardness(small_cifar):
    ds, folder = small_cifar
    c = np.linspace(0.05, 0.95, 40)
    np.savez(folder / "scores" / "cscores_CIFAR10.npz", labels=ds.y_train.numpy(), scores=c)
    h = load_scores(ds, "cscore", data_dir=folder)
    assert h.dtype == torch.float64 and torch.allclose(h, torch.from_numpy(1 - c))
    assert h.argmax() == 0  # lowest C-score = hardest


def test_forgetting_kept_and_path_form(small_cifar, tmp_path):
    ds, folder = small_cifar
    f = np.arange(40, dtype=np.float32)[::-1].copy()
    np.save(folder / "scores" / "forgetting_CIFAR10.npy", f)
    assert torch.equal(load_scores(ds, "forgetting", data_dir=folder), torch.from_numpy(f.astype(np.float64)))
    np.save(tmp_path / "mine.npy", f * 2)
    assert torch.equal(load_scores(ds, tmp_path / "mine.npy"), torch.from_numpy(f * 2.0))


def test_wrong_length_is_error(small_cifar):
    ds, folder = small_cifar
    np.save(folder / "scores" / "forgetting_CIFAR10.npy", np.zeros(39, np.float32))
    with pytest.raises(ScoreMismatchError, match="40 training images"):
        load_scores(ds, "forgetting", data_dir=folder)


def test_disagreeing_labels_is_error(small_cifar):
    ds, folder = small_cifar
    labels = ds.y_train.numpy().copy()
    labels[7] = (labels[7] + 1) % 10
    np.savez(folder / "scores" / "cscores_CIFAR10.npz", labels=labels, scores=np.full(40, 0.5))
    with pytest.raises(ScoreMismatchError, match="disagree .* at 1 of 40 .*index 7"):
        load_scores(ds, "cscore", data_dir=folder)


def test_truncated_score_file_names_file(small_cifar):
    ds, folder = small_cifar
    path = folder / "scores" / "cscores_CIFAR10.npz"
    np.savez(path, labels=ds.y_train.numpy(), scores=np.full(40, 0.5))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataFormatError, match="cscores_CIFAR10.npz"):
        load_scores(ds, "cscore", data_dir=folder)


def test_unknown_kind_and_missing(small_cifar):
    ds, folder = small_cifar
    with pytest.raises(ValueError, match="cscore, forgetting"):
        load_scores(ds, "el2n-typo", data_dir=folder)
    with pytest.raises(FileNotFoundError, match="forgetting"):
        load_scores(ds, "forgetting", data_dir=folder, download=False)
    mnist = load_dataset("mnist5k")
    with pytest.raises(FileNotFoundError, match="selmatch scores"):
        load_scores(mnist, "cscore")


def test_published_scores_on_shared_data(shared_data):
    ds = load_dataset("cifar10", download=False)
    h = load_scores(ds, "cscore")
    raw = np.load(shared_data / "scores" / "cscores_CIFAR10.npz")["scores"]
    assert torch.allclose(h, torch.from_numpy(1 - raw))
    f = load_scores(ds, "forgetting")
    assert len(f) == 50_000 and f.min() >= 0
    # the two scores agree on what is hard: rank correlation clearly positive
    rank = lambda v: v.argsort().argsort().double()
    assert torch.corrcoef(torch.stack([rank(h), rank(f)]))[0, 1] > 0.3
    assert find_score_file(ds, "forgetting") == shared_data / "scores" / "forgetting_CIFAR10.npy"


def test_tiny_c10_scores_use_orig_index(shared_data):
    ds = load_dataset("tinyimagenet-c10", download=False)
    f = load_scores(ds, "forgetting")
    full = np.load(shared_data / "scores" / "forgetting_Tiny.npy")
    assert torch.equal(f, torch.from_numpy(full[ds.orig_index.numpy()].astype(np.float64)))


def test_a_shifted_published_file_is_refused(shared_data, tmp_path):
    """The forgetting files have no labels: a copy shifted by one position is caught by its checksum."""
    import shutil

    folder = tmp_path / "data"
    shutil.copytree(shared_data / "scores", folder / "scores")
    for name in ("cifar10_train.npz", "cifar10_test.npz"):
        (folder / name).symlink_to(shared_data / name)
    ds = load_dataset("cifar10", data_dir=folder, download=False)
    assert load_scores(ds, "forgetting", data_dir=folder).shape == (50000,)      # the published file passes
    f = folder / "scores" / "forgetting_CIFAR10.npy"
    f.chmod(0o644)
    np.save(f, np.roll(np.load(f), 1))
    with pytest.raises(ScoreMismatchError, match="not the published forgetting scores for CIFAR10"):
        load_scores(ds, "forgetting", data_dir=folder)
