"""The data layer: every loader on fixtures in the real formats, plus the shared offline data."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import write_cifar10_folder, write_npz_pair, write_tiny_tree
from selmatch import DataFormatError, DataNotFoundError, load_dataset
from selmatch import download as dl
from selmatch.cli import main


def test_cifar_pickle_folder(tmp_path):
    written = write_cifar10_folder(tmp_path / "tv")
    ds = load_dataset("cifar10", root=tmp_path / "tv", download=False)
    assert ds.x_train.shape == (100, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (20, 3, 32, 32)
    # train order = data_batch_1..5 concatenated; pixel layout = torchvision's (CHW rows of 1024)
    first = written["x"][0][0].reshape(3, 32, 32)
    assert torch.equal(ds.x_train[0], torch.from_numpy(first))
    assert torch.equal(ds.x_train[20], torch.from_numpy(written["x"][1][0].reshape(3, 32, 32)))
    assert ds.y_train.tolist() == sum(written["y"][:5], [])
    assert ds.classes[1] == "automobile" and ds.source.startswith("torchvision folder")
    assert ds.mean == (0.4914, 0.4822, 0.4465) and ds.std == (0.2023, 0.1994, 0.2010)


def test_tiny_tree_full_and_c10(tmp_path):
    info = write_tiny_tree(tmp_path / "tv", n_classes=200, per_class=2, n_val=60)
    full = load_dataset("tinyimagenet", root=tmp_path / "tv", download=False)
    wnids = sorted(info["wnids"])  # ImageFolder order is the sorted folder names, not wnids.txt order
    assert full.x_train.shape == (400, 3, 64, 64)
    assert full.y_train.tolist() == [i for i in range(200) for _ in range(2)]
    assert full.classes[0] == f"thing {wnids[0]}"  # first name of words.txt
    # val keeps sorted file order: val_0, val_1, val_10, ...; labels from val_annotations.txt
    order = sorted(f"val_{k}.JPEG" for k in range(60))
    expected = [wnids.index(info["val_wnids"][int(n[4:-5])]) for n in order]
    assert full.y_test.tolist() == expected
    assert full.x_test.shape == (60, 3, 64, 64)  # greyscale files became 3-channel

    c10 = load_dataset("tinyimagenet-c10", root=tmp_path / "tv", download=False)
    assert c10.num_classes == 10 and len(c10.y_train) == 20
    assert torch.equal(c10.x_train, full.x_train[:20])
    assert c10.orig_index.tolist() == list(range(20))
    keep = full.y_test < 10
    assert torch.equal(c10.x_test, full.x_test[keep]) and torch.equal(c10.y_test, full.y_test[keep])


def test_tiny_download_path_is_used(tmp_path, monkeypatch):
    """With no local copy and downloads allowed, the downloader runs and its folder is then read."""
    monkeypatch.delenv("SELMATCH_OFFLINE")
    calls = []

    def fake_download(spec, root):
        calls.append((spec.name, root))
        write_tiny_tree(root, n_classes=200, per_class=1, n_val=10)

    monkeypatch.setattr(dl, "download", fake_download)
    ds = load_dataset("tinyimagenet-c10", root=tmp_path / "tv")
    assert calls == [("tinyimagenet-c10", tmp_path / "tv")] and len(ds.y_train) == 10


def test_npz_source_first_and_cache(tmp_path):
    arrays = write_npz_pair(tmp_path / "data", "cifar10")
    write_cifar10_folder(tmp_path / "tv")  # present too, but SELMATCH_DATA comes first
    ds = load_dataset("cifar10", data_dir=tmp_path / "data", root=tmp_path / "tv", download=False)
    assert ds.source.startswith("SELMATCH_DATA")
    assert torch.equal(ds.x_train, torch.from_numpy(arrays["train"][0]).permute(0, 3, 1, 2))
    cached = list((tmp_path / "cache" / "tensors").glob("cifar10-*.pt"))
    assert len(cached) == 1
    again = load_dataset("cifar10", data_dir=tmp_path / "data", root=tmp_path / "tv", download=False)
    assert torch.equal(again.x_train, ds.x_train) and torch.equal(again.y_test, ds.y_test)
    # a changed source file gets a new cache entry, never the stale one
    write_npz_pair(tmp_path / "data", "cifar10", seed=1)
    changed = load_dataset("cifar10", data_dir=tmp_path / "data", download=False)
    assert not torch.equal(changed.x_train, ds.x_train)
    assert len(list((tmp_path / "cache" / "tensors").glob("cifar10-*.pt"))) == 2


def test_normalize(tmp_path):
    write_npz_pair(tmp_path / "data", "cifar10")
    ds = load_dataset("cifar10", data_dir=tmp_path / "data", download=False)
    x = ds.normalize(ds.x_train[:4])
    expected = (ds.x_train[:4, 1].float() / 255 - 0.4822) / 0.1994
    assert x.dtype == torch.float32 and torch.allclose(x[:, 1], expected)


def test_embedded_default():
    ds = load_dataset()
    assert ds.name == "mnist5k" and ds.source.startswith("embedded")
    assert ds.x_train.shape == (4000, 1, 28, 28) and ds.x_test.shape == (1000, 1, 28, 28)
    assert torch.bincount(ds.y_train).tolist() == [400] * 10
    assert torch.bincount(ds.y_test).tolist() == [100] * 10
    assert 0.05 < ds.x_train.float().mean().item() / 255 < 0.25  # real digits: mostly black background
    assert len(set(ds.orig_index.tolist()) & set(range(5000))) == 4000


def test_unknown_dataset_lists_names():
    with pytest.raises(ValueError, match="cifar10, cifar100, tinyimagenet, tinyimagenet-c10, mnist5k"):
        load_dataset("imagenet")


def test_not_found_names_every_place(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        load_dataset("cifar100", data_dir=tmp_path / "nodata", root=tmp_path / "tv", download=False)
    msg = str(e.value)
    assert "'cifar100'" in msg and str(tmp_path / "nodata" / "cifar100_train.npz") in msg
    assert str(tmp_path / "tv" / "cifar-100-python") in msg and "download" in msg


def test_truncated_npz_names_file(tmp_path):
    write_npz_pair(tmp_path / "data", "cifar10", n_train=200)
    path = tmp_path / "data" / "cifar10_train.npz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataFormatError, match="cifar10_train.npz"):
        load_dataset("cifar10", data_dir=tmp_path / "data", download=False)


def test_labels_out_of_range(tmp_path):
    folder = tmp_path / "data"
    write_npz_pair(folder, "cifar10")
    x = np.zeros((5, 32, 32, 3), np.uint8)
    np.savez(folder / "cifar10_train.npz", images=x, labels=np.array([0, 1, 2, 3, 12]),
             classes=np.array([f"c{i}" for i in range(10)]))
    with pytest.raises(DataFormatError, match=r"labels must lie in \[0, 9\]"):
        load_dataset("cifar10", data_dir=folder, download=False)


def test_cli_data_json(tmp_path, capsys):
    write_cifar10_folder(tmp_path / "tv")
    assert main(["data", "cifar10", "--root", str(tmp_path / "tv"), "--no-download"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["n_train"] == 100 and info["image_shape"] == [3, 32, 32]
    assert sum(info["train_per_class"]) == 100 and info["scores"] == {"cscore": None, "forgetting": None}


def test_cli_error_is_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "selmatch", "data", "cifar100", "--root", str(tmp_path),
                        "--no-download"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr and "cifar100" in r.stderr


# ----------------------------------------------------------------------------- the shared offline data

def test_shared_cifar10(shared_data):
    t0 = time.perf_counter()
    ds = load_dataset("cifar10", download=False)
    first = time.perf_counter() - t0
    assert ds.source.startswith("SELMATCH_DATA")
    assert len(ds.y_train) == 50_000 and len(ds.y_test) == 10_000
    assert torch.bincount(ds.y_train).tolist() == [5000] * 10
    cs = np.load(shared_data / "scores" / "cscores_CIFAR10.npz")
    assert np.array_equal(ds.y_train.numpy(), cs["labels"])
    t0 = time.perf_counter()
    again = load_dataset("cifar10", download=False)
    second = time.perf_counter() - t0
    assert torch.equal(again.x_train[:100], ds.x_train[:100])
    print(f"cifar10 first load {first:.2f}s, cached {second:.2f}s")


def test_shared_tinyimagenet_c10(shared_data):
    ds = load_dataset("tinyimagenet-c10", download=False)
    assert ds.x_train.shape == (5000, 3, 64, 64) and ds.x_test.shape == (500, 3, 64, 64)
    assert ds.orig_index.tolist() == list(range(5000)) and ds.classes[0].startswith("goldfish")


def test_an_altered_tensor_cache_entry_is_not_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("SELMATCH_CACHE", str(tmp_path / "cache"))
    ds = load_dataset("mnist5k")
    entry = next((tmp_path / "cache" / "tensors").glob("mnist5k-*.pt"))
    blob = torch.load(entry, weights_only=True)
    blob["train"]["y"][0] = (blob["train"]["y"][0] + 1) % 10          # one label changed on disk
    torch.save(blob, entry)
    with pytest.warns(UserWarning, match="does not match its checksum; decoding again"):
        again = load_dataset("mnist5k")
    assert torch.equal(again.y_train, ds.y_train) and again.fingerprint == ds.fingerprint


class _Payload:
    """Runs ``touch MARKER`` when unpickled by a plain ``pickle.load``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("planted", ["batches.meta", "data_batch_1", "data_batch_5", "test_batch"])
def test_a_payload_planted_in_a_cifar_batch_never_runs(tmp_path, planted, capsys):
    """Each CIFAR file is read with an unpickler that admits only what the format holds: a ``__reduce__`` payload in
    any of them is refused in one line naming the file, through the API and the command line, and runs nothing."""
    import pickle

    write_cifar10_folder(tmp_path / "tv")
    path = tmp_path / "tv" / "cifar-10-batches-py" / planted
    with open(path, "rb") as f:
        content = pickle.load(f, encoding="bytes")          # the test's own file: safe to read plainly
    content[b"extra"] = _Payload(tmp_path / "ran")
    with open(path, "wb") as f:
        pickle.dump(content, f, protocol=2)
    with pytest.raises(DataFormatError, match=rf"{planted}: not a CIFAR batch \(it asks for (posix|os)\.system"):
        load_dataset("cifar10", root=tmp_path / "tv", download=False, use_cache=False)
    assert main(["data", "cifar10", "--root", str(tmp_path / "tv"), "--no-download"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and planted in err and "refused without running it" in err
    assert not (tmp_path / "ran").exists()
