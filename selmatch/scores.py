"""Published difficulty scores, aligned with a loaded dataset and normalised so higher = harder.

* ``cscore``: consistency scores (Jiang et al., 2021), ``cscores_<DS>.npz`` with ``labels`` and
  ``scores``; a high C-score means a typical, easy image, so hardness = 1 - C-score.
* ``forgetting``: forgetting counts (Toneva et al., 2019), ``forgetting_<DS>.npy``; already higher = harder.
* a path: an ``.npy`` array or an ``.npz`` with ``scores`` (and optionally ``labels``), taken as
  hardness (higher = harder), e.g. the output of ``selmatch scores``.

Files are looked for in ``SELMATCH_DATA/scores``, then ``<cache root>/scores``; C-scores for CIFAR
are downloaded from the authors' release when missing and downloads are allowed.
Every file is checked against the dataset: its length must equal the published training set's and
its labels, where stored, must equal the dataset's labels. A mismatch is an error, never a silent
misalignment.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from . import download as dl
from .data import ImageDataset, cache_root, offline, resolve_data_dir
from .formats import _READ_ERRORS, DataFormatError

SCORE_KINDS = ("cscore", "forgetting")

# The published score files, by (kind, dataset): their length and the sha256 of their values as float64.
# A file of the published length whose values differ (shifted by one position, another release, damaged
# in transit) is refused: the forgetting files carry no labels that would catch a shift.
PUBLISHED = {
    ("cscore", "CIFAR10"): (50000, "c3952e34990f761431c35ee375f45103777792a75cedf839e1f027fb0c3c02cb"),
    ("cscore", "CIFAR100"): (50000, "112073d96a5f689e84d9283d0bbf25a5123303d7548141827d325f8ccbd66dff"),
    ("forgetting", "CIFAR10"): (50000, "5c18da651fbc1e9e3546f6d4f72c78ad71ba360dd32dfdc0565a6ca71589bd65"),
    ("forgetting", "CIFAR100"): (50000, "89269157da4b6ec483204fbc9b141ba4e64866151580cbda6f49cea194ea1152"),
    ("forgetting", "Tiny"): (100000, "387c5a550d2b3cdd5624bdd8bfb92f00eac752de9b7adfb78de759e6cfdf4be6"),
}


def check_published(kind: str, score_name: str, raw: np.ndarray, path: Path) -> None:
    """Refuse a file of the published length whose values are not the published ones."""
    length, digest = PUBLISHED.get((kind, score_name), (None, None))
    if length != len(raw):
        return
    found = hashlib.sha256(np.ascontiguousarray(raw, np.float64).tobytes()).hexdigest()
    if found != digest:
        raise ScoreMismatchError(f"{path}: its values are not the published {kind} scores for {score_name} "
                                 f"(sha256 {found[:12]}…, expected {digest[:12]}…): shifted, altered or another "
                                 "release; obtain the file again")


class ScoreMismatchError(ValueError):
    """A score file does not belong to the dataset it is used with."""


def _candidates(ds: ImageDataset, kind: str, data: Path | None, croot: Path) -> list[Path]:
    sn = ds.spec.score_name
    if sn is None:
        return []
    names = {"cscore": [f"cscores_{sn}.npz", f"{sn.lower()}-cscores-orig-order.npz"],
             "forgetting": [f"forgetting_{sn}.npy"]}[kind]
    folders = ([data / "scores"] if data else []) + [croot / "scores"]
    return [f / n for f in folders for n in names]


def find_score_file(ds: ImageDataset, kind: str, *, data_dir=None, cache=None) -> Path | None:
    """The first existing score file of ``kind`` for ``ds``, or None."""
    _check_kind(kind)
    return next((p for p in _candidates(ds, kind, resolve_data_dir(data_dir), cache_root(cache))
                 if p.exists()), None)


def _check_kind(kind: str) -> None:
    if kind not in SCORE_KINDS:
        raise ValueError(f"score={kind!r} is unknown; valid: {', '.join(SCORE_KINDS)} or a path to "
                         ".npy/.npz score file")


def read_score_file(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Raw ``(scores, labels or None)`` from an ``.npy`` or ``.npz`` file; errors name the file."""
    path = Path(path)
    try:
        if path.suffix == ".npz":
            with np.load(path) as z:
                if "format" in z.files:       # a score record of selmatch's: a version this selmatch reads
                    from .artifacts import check_format

                    check_format(z["format"], "scores", path)
                if "scores" not in z.files:
                    raise DataFormatError(f"{path}: no 'scores' array (has {z.files})")
                return z["scores"].astype(np.float64), (z["labels"].astype(np.int64) if "labels" in z.files else None)
        return np.load(path).astype(np.float64), None
    except _READ_ERRORS as e:
        if isinstance(e, DataFormatError):
            raise
        raise DataFormatError(f"{path}: unreadable score file ({type(e).__name__}: {e})") from e


def align_scores(ds: ImageDataset, scores: np.ndarray, labels: np.ndarray | None, path: Path) -> np.ndarray:
    """Pick the entries of a score array that belong to ``ds``'s training images.

    A file may cover the full published training set (``n_train_full`` entries, indexed through
    ``ds.orig_index``) or exactly ``ds``'s training images in order (e.g. from ``selmatch scores``)."""
    full, n = ds.spec.n_train_full, len(ds.y_train)
    if scores.ndim != 1 or len(scores) not in (full, n):
        sizes = " or ".join(str(v) for v in sorted({full or n, n}))
        raise ScoreMismatchError(f"{path}: {scores.shape} scores, but {ds.name} has {sizes} training "
                                 "images (published order / as loaded)")
    if not np.isfinite(scores).all():
        raise ScoreMismatchError(f"{path}: contains NaN or infinite scores")
    idx = np.arange(n) if len(scores) == n else ds.orig_index.numpy()
    if labels is not None:
        if labels.shape != scores.shape:
            raise ScoreMismatchError(f"{path}: {len(labels)} labels but {len(scores)} scores")
        bad = np.flatnonzero(labels[idx] != ds.y_train.numpy())
        if len(bad):
            raise ScoreMismatchError(
                f"{path}: labels disagree with {ds.name} ({ds.source}) at {len(bad)} of {len(idx)} "
                f"training images (first at index {bad[0]}: file says {labels[idx][bad[0]]}, "
                f"dataset says {int(ds.y_train[bad[0]])}); the score file is for another order or dataset")
    return scores[idx]


def load_scores(ds: ImageDataset, score: str | os.PathLike, *, data_dir=None, cache=None,
                download: bool = True) -> torch.Tensor:
    """Hardness of every training image of ``ds`` (float64 ``[n_train]``, higher = harder).

    Args:
        score: ``"cscore"``, ``"forgetting"``, or a path to a hardness file (higher = harder).
    """
    if str(score) not in SCORE_KINDS:
        path = Path(score)
        if not path.exists():
            _check_kind(str(score))  # not a kind either: say what is valid
        raw, labels = read_score_file(path)
        return torch.from_numpy(align_scores(ds, raw, labels, path))
    kind = str(score)
    path = find_score_file(ds, kind, data_dir=data_dir, cache=cache)
    if path is None and kind == "cscore" and ds.spec.score_name in dl.CSCORE_URLS and download and not offline():
        path = dl.download_cscores(ds.spec.score_name, cache_root(cache) / "scores")
    if path is None:
        where = [str(p) for p in _candidates(ds, kind, resolve_data_dir(data_dir), cache_root(cache))]
        raise FileNotFoundError(
            f"no published {kind} scores for dataset {ds.name!r}. Searched: {where or '(none exist for it)'}. "
            "Compute scores with `selmatch scores` and pass the file instead.")
    raw, labels = read_score_file(path)
    check_published(kind, ds.spec.score_name, raw, path)
    aligned = align_scores(ds, raw, labels, path)
    hardness = 1.0 - aligned if kind == "cscore" else aligned
    return torch.from_numpy(hardness)
