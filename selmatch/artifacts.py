"""The files selmatch writes, read and written in one place.

| artifact | file | written by |
|---|---|---|
| selection | ``.npz``: ``select_idx``, ``distill_idx``, ``scores``, ``params`` | ``selmatch select`` |
| synthetic set | ``synset.npz``: ``images``, ``labels``, ``is_distilled``, ``source_idx``, ``syn_lr``, ``config`` | ``selmatch distill`` |
| synthetic set, 8-bit | the same, ``images`` as ``uint8`` pixels with the ``mean``/``std`` that normalise them | the book's downloads |
| expert trajectory | ``expert_0000.pt``: ``names``, ``shapes``, ``params [epochs+1, P]``, ``test_acc``, ``config`` | ``selmatch experts`` |
| distillation checkpoint | ``checkpoint.pt``: iteration, images, ``syn_lr``, optimisers, generator, history | ``selmatch distill`` |
| score record | ``.npz``: ``scores`` (forgetting), ``labels``, ``forgetting_test``, ``el2n``, histories, ``params`` | ``selmatch scores`` |

Every file carries ``format`` (``"selmatch-<kind>/<version>"``); files written before formats were
versioned are read as version 1. Every write is atomic (:func:`atomic_write`: a temporary file in the same
folder, then a rename), so an interrupted run never leaves half a file under the real name. ``.pt`` files
are read with ``torch.load(weights_only=True)``, which cannot run code; a foreign, damaged or
wrong-kind file is a :class:`ArtifactError` naming the file and what to do, never a traceback.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .formats import DataFormatError
from .select import Selection
from .student import ParamLayout

VERSIONS = {"selection": 1, "synset": 1, "trajectory": 1, "checkpoint": 1, "scores": 1, "snapshot": 1}


class ArtifactError(DataFormatError):
    """A selmatch file that is missing parts, damaged, of another kind or of an unknown format version."""


def config_key(config: dict) -> str:
    """A short, stable hash of a JSON-able config (names cached results and run folders)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:12]


def make_folder(folder: str | os.PathLike) -> Path:
    """``folder`` and its parents, or an ``OSError`` naming the part of the path that is a file, not a folder."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in [folder, *folder.parents] if p.exists() and not p.is_dir()), folder)
        raise OSError(f"cannot make the folder {folder}: {blocker} is a file, not a folder") from None
    return folder


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, flush it to disk, then rename it to ``path``.

    The temporary file is removed if ``write`` fails, and temporary files that an earlier, killed process
    left for the same target are removed first (on a full disk they would block the retry). Failures are
    ``OSError``s naming the file (torch's own "enforce fail" for a full disk included)."""
    path = Path(path)
    make_folder(path.parent)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        try:
            write(tmp)
        except RuntimeError as e:          # torch.save reports a full disk or a lost file this way
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            why = "the disk is full (or the file was removed while it was written)" \
                if "unexpected pos" in first or "enforce fail" in first else first
            raise OSError(f"could not write {path}: {why}") from e
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def differences(stored: dict, wanted: dict, prefix: str = "") -> list[str]:
    """Field-by-field differences between a stored record and the one a run would write, as
    ``"field: stored -> wanted"`` lines (nested dicts are walked; a field missing on one side shows as None)."""
    out = []
    for k in sorted(set(stored) | set(wanted), key=str):
        a, b = stored.get(k), wanted.get(k)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(a, b, f"{prefix}{k}.")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def _tag(kind: str) -> str:
    return f"selmatch-{kind}/{VERSIONS[kind]}"


def check_format(found, kind: str, path) -> None:
    """``found`` is the file's ``format`` (None for files written before formats were versioned)."""
    if found is None:
        return
    found = str(found)
    if not found.startswith(f"selmatch-{kind}/") and found != "1":
        raise ArtifactError(f"{path}: a {found.split('/')[0].removeprefix('selmatch-')} file, not a {kind} file")
    version = found.rsplit("/", 1)[-1]
    if version != str(VERSIONS[kind]):
        raise ArtifactError(f"{path}: {kind} format version {version}; this selmatch reads version "
                            f"{VERSIONS[kind]} (upgrade selmatch or recreate the file)")


def _save_npz(path, kind: str, arrays: dict) -> Path:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:            # a file object: numpy would append ".npz" to the name
            np.savez(f, format=np.array(_tag(kind)), **arrays)
    return atomic_write(path, write)


def _open_npz(path, kind: str, required: tuple[str, ...], how: str) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} file {path} does not exist; {how}")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: not a readable {kind} file ({type(e).__name__}: {e}); {how}") from e
    check_format(arrays.pop("format", None), kind, path)
    missing = [k for k in required if k not in arrays]
    if missing:
        raise ArtifactError(f"{path}: not a {kind} file (missing {', '.join(missing)}; has "
                            f"{', '.join(sorted(arrays)) or 'nothing'}); {how}")
    return arrays


def _json(value, path=None) -> dict:
    """A JSON field of an artifact (``{}`` when absent); unreadable JSON is an error naming the file."""
    if value is None:
        return {}
    try:
        out = json.loads(str(value))
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path or 'an artifact'}: its metadata is not JSON ({e.msg} at position {e.pos}); "
                            "write the file again") from None
    if not isinstance(out, dict):
        raise ArtifactError(f"{path or 'an artifact'}: its metadata is a {type(out).__name__}, not a JSON object; "
                            "write the file again")
    return out


# ----------------------------------------------------------------------------- selections

def save_selection(sel: Selection, path, **extra) -> Path:
    """Write a selection: its indices, the scores that produced it and its parameters (plus ``extra``)."""
    arrays = {"select_idx": sel.select_idx.numpy(), "distill_idx": sel.distill_idx.numpy(),
              "params": np.array(json.dumps({**sel.params, **extra}))}
    if sel.scores is not None:
        arrays["scores"] = sel.scores.numpy()
    return _save_npz(path, "selection", arrays)


def load_selection(path) -> Selection:
    z = _open_npz(path, "selection", ("select_idx", "distill_idx"), "write one with `selmatch select`")
    if "params" not in z:     # every writer of this format records them: without them, the dataset is unknown
        raise ArtifactError(f"{path}: a selection without its parameters (which dataset, window, IPC), so what it "
                            "indexes is unknown; write it again with `selmatch select`")
    for k in ("select_idx", "distill_idx"):
        if z[k].ndim != 1 or z[k].dtype.kind not in "iu":
            raise ArtifactError(f"{path}: {k} must be a 1-D array of integer indices, got {z[k].dtype} {z[k].shape}")
    return Selection(torch.from_numpy(z["select_idx"]).long(), torch.from_numpy(z["distill_idx"]).long(),
                     torch.from_numpy(z["scores"]) if "scores" in z else None, _json(z.get("params"), path))


# ----------------------------------------------------------------------------- synthetic sets

@dataclass(frozen=True)
class SynSet:
    images: torch.Tensor          # float32 [N, C, H, W], normalised; D_select first, then D_distill
    labels: torch.Tensor
    is_distilled: torch.Tensor    # bool [N]
    source_idx: torch.Tensor | None
    syn_lr: float | None
    config: dict


def save_synset(path, images: torch.Tensor, labels: torch.Tensor, is_distilled: torch.Tensor, source_idx: torch.Tensor,
                syn_lr: float, config: dict) -> Path:
    return _save_npz(path, "synset", {
        "images": images.detach().cpu().float().numpy(), "labels": labels.cpu().numpy(),
        "is_distilled": is_distilled.cpu().numpy(), "source_idx": source_idx.cpu().numpy(),
        "syn_lr": np.float32(syn_lr), "config": np.array(json.dumps(config))})


def save_synset_uint8(path, synset: SynSet, mean, std, **extra) -> dict:
    """Write ``synset`` with its images as 8-bit pixels (a download a few MB in size): pixels are de-normalised
    with ``mean``/``std`` (per channel), clipped to [0, 1] and rounded, so a distilled pixel outside the real
    images' range is cut. :func:`load_synset` reads it back as normalised floats. Returns what was written:
    the file's size in bytes and the fraction of pixels clipped."""
    m = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    sd = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    raw = synset.images.detach().cpu().float() * sd + m
    clipped = float(((raw < 0) | (raw > 1)).float().mean())
    pixels = (raw.clamp(0, 1) * 255).round().to(torch.uint8)
    config = {**synset.config, **extra, "uint8_clipped_fraction": clipped}
    out = _save_npz(path, "synset", {
        "images": pixels.numpy(), "mean": np.asarray(mean, np.float32), "std": np.asarray(std, np.float32),
        "labels": synset.labels.cpu().numpy(), "is_distilled": synset.is_distilled.cpu().numpy(),
        "source_idx": (synset.source_idx if synset.source_idx is not None else torch.full_like(synset.labels, -1)).numpy(),
        "syn_lr": np.float32(synset.syn_lr if synset.syn_lr is not None else np.nan),
        "config": np.array(json.dumps(config))})
    return {"bytes": out.stat().st_size, "clipped": clipped}


def load_synset(path) -> SynSet:
    """A synthetic set as normalised float images: from ``selmatch distill`` (float pixels) or a download
    (8-bit pixels with their ``mean``/``std``)."""
    z = _open_npz(path, "synset", ("images", "labels", "is_distilled"), "write one with `selmatch distill`")
    if z["labels"].ndim != 1 or z["labels"].dtype.kind not in "iu":
        raise ArtifactError(f"{path}: labels must be a 1-D array of integers, got {z['labels'].dtype} {z['labels'].shape}")
    if z["images"].dtype == np.uint8:
        if "mean" not in z or "std" not in z:
            raise ArtifactError(f"{path}: 8-bit images without the mean and std that normalise them; download the "
                                "file again")
        c = z["images"].shape[1] if z["images"].ndim == 4 else 0
        if z["mean"].shape != (c,) or z["std"].shape != (c,) or not (z["std"] > 0).all():
            raise ArtifactError(f"{path}: mean/std must be positive per-channel vectors of length {c}, got "
                                f"{z['mean'].shape} / {z['std'].shape}")
        z["images"] = ((z["images"].astype(np.float32) / 255 - z["mean"].reshape(1, -1, 1, 1))
                       / z["std"].reshape(1, -1, 1, 1))
    if z["images"].dtype.kind != "f" or not np.isfinite(z["images"]).all():
        raise ArtifactError(f"{path}: images must be finite floats (found {z['images'].dtype}"
                            f"{'' if z['images'].dtype.kind != 'f' else ', NaN or infinite pixels'})")
    return SynSet(torch.from_numpy(z["images"]).float(), torch.from_numpy(z["labels"]).long(),
                  torch.from_numpy(z["is_distilled"]).bool(),
                  torch.from_numpy(z["source_idx"]).long() if "source_idx" in z else None,
                  float(z["syn_lr"]) if "syn_lr" in z else None, _json(z.get("config"), path))


def read_training_file(path) -> Selection | SynSet:
    """A selection or a synthetic set, whichever ``path`` holds."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            names = set(f.files)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist; pass a file from `selmatch select` or `selmatch distill`")
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{path}: unreadable ({type(e).__name__}: {e}); pass a file from `selmatch select` "
                            "or `selmatch distill`") from e
    if {"images", "labels", "is_distilled"} <= names:
        return load_synset(path)
    if "select_idx" in names:
        return load_selection(path)
    raise ArtifactError(f"{path}: neither a selection (select_idx) nor a synthetic set (images, labels, "
                        f"is_distilled); has {sorted(names)}")


# ----------------------------------------------------------------------------- expert trajectories

@dataclass(frozen=True)
class Trajectory:
    names: list[str]
    shapes: list[list[int]]
    params: torch.Tensor        # float32 [epochs + 1, P]
    test_acc: list[float]       # after each epoch
    config: dict | None = None  # the record of the run that made it (the folder's config.json then)

    @property
    def epochs(self) -> int:
        return len(self.params) - 1

    @property
    def layout(self) -> ParamLayout:
        return ParamLayout.from_lists(self.names, self.shapes)

    def to(self, device) -> "Trajectory":
        """The same trajectory with its parameters on ``device`` (one copy, made once)."""
        return Trajectory(self.names, self.shapes, self.params.to(device), self.test_acc, self.config)


def expert_path(folder, k: int) -> Path:
    return Path(folder) / f"expert_{k:04d}.pt"


EXPERT_FIELDS = ("expert", "seed", "identity")      # what every expert file of a folder shares with its config.json


def foreign_expert(traj: Trajectory, folder_record: dict, path) -> str | None:
    """Why the expert file at ``path`` does not belong with its folder's ``config.json`` (None if it does): every
    file records the configuration that made it, which must be the folder's (but for how many experts)."""
    mine = traj.config
    if mine is None:
        return f"{path} records no configuration, so what made it is unknown"
    diff = differences({k: mine.get(k) for k in EXPERT_FIELDS}, {k: folder_record.get(k) for k in EXPERT_FIELDS})
    diff = [d for d in diff if not d.startswith("expert.num_experts:")]
    return f"{path} was made by another configuration than its folder's config.json ({'; '.join(diff[:3])})" \
        if diff else None


def list_experts(folder) -> list[Path]:
    paths = sorted(Path(folder).glob("expert_[0-9][0-9][0-9][0-9].pt"))
    if not paths:
        raise FileNotFoundError(f"no expert files (expert_0000.pt, ...) in {folder}; "
                                f"train them with `selmatch experts --out {folder}`")
    return paths


def _save_pt(path, kind: str, blob: dict) -> Path:
    return atomic_write(path, lambda tmp: torch.save({"format": _tag(kind), **blob}, tmp))


def _load_pt(path, kind: str, how: str, mmap: bool = False) -> dict:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{kind} file {path} is missing; {how}")
    try:
        blob = torch.load(path, weights_only=True, mmap=mmap, map_location="cpu")
    except (RuntimeError, OSError, EOFError, ValueError, KeyError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ArtifactError(f"{kind} file {path} is damaged or not a selmatch file ({type(e).__name__}: "
                            f"{first[:200]}); {how}") from None
    if not isinstance(blob, dict):
        raise ArtifactError(f"{path}: not a {kind} file (holds a {type(blob).__name__}); {how}")
    check_format(blob.get("format"), kind, path)
    return blob


def save_trajectory(traj: Trajectory, path, config: dict) -> Path:
    return _save_pt(path, "trajectory", {"names": traj.names, "shapes": traj.shapes, "params": traj.params,
                                         "test_acc": traj.test_acc, "config": json.dumps(config)})


def load_trajectory(path, mmap: bool = True) -> Trajectory:
    """Read one expert file; a missing or damaged file is an error naming it."""
    how = f"move it aside and rerun `selmatch experts --resume --out {Path(path).parent}`"
    blob = _load_pt(path, "trajectory", how, mmap=mmap)
    try:
        traj = Trajectory(list(blob["names"]), [list(s) for s in blob["shapes"]], blob["params"], list(blob["test_acc"]),
                          _json(blob.get("config"), path) if blob.get("config") is not None else None)
    except (KeyError, TypeError) as e:
        raise ArtifactError(f"expert file {path} is not an expert file (no {e}); {how}") from None
    if traj.params.ndim != 2 or traj.params.shape[1] != traj.layout.numel:
        raise ArtifactError(f"expert file {path} is inconsistent: params {tuple(traj.params.shape)} vs shapes "
                            f"{traj.shapes}; {how}")
    return traj


# ----------------------------------------------------------------------------- distillation checkpoints

def save_checkpoint(path, state: dict) -> Path:
    return _save_pt(path, "checkpoint", state)


def save_snapshot(path, state: dict) -> Path:
    """The distilled images at one evaluation point of a run (``iteration``, ``run``, ``x_distill``), so that
    another evaluator of the same run folder can evaluate them later without distilling again."""
    return _save_pt(path, "snapshot", state)


def load_snapshot(path) -> dict:
    return _load_pt(path, "snapshot", f"move {path} aside; distilling again without --resume makes it again")


def load_checkpoint(path) -> dict:
    """A checkpoint's state, every tensor on the CPU (the caller moves them to its device)."""
    blob = _load_pt(path, "checkpoint", f"move {path} aside to distill from iteration 0")
    missing = [k for k in ("iteration", "x_distill", "syn_lr", "opt_img", "opt_lr", "generator", "history")
               if k not in blob]
    if missing:
        raise ArtifactError(f"{path}: not a distillation checkpoint (missing {', '.join(missing)}); "
                            f"move it aside to distill from iteration 0")
    return blob


# ----------------------------------------------------------------------------- score records

def save_score_record(path, arrays: dict[str, np.ndarray], params: dict) -> Path:
    return _save_npz(path, "scores", {**arrays, "params": np.array(json.dumps(params))})


def load_score_record(path) -> dict:
    """The arrays of a score record (``scores``, ``forgetting_test``, ...) and ``params``."""
    z = _open_npz(path, "scores", ("scores",), "write one with `selmatch scores`")
    return {**{k: v for k, v in z.items() if k != "params"}, "params": _json(z.get("params"), path)}
