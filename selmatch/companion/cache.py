"""Load-or-compute for expensive results, keyed by a hash of the config that made them.

    res = cached("window", {"dataset": "cifar10", "ipc": 50, ...}, compute, root="results/cpu")

The first call runs ``compute()`` (which returns a JSON-able dict, plus numpy arrays under the key
``"arrays"`` if any) and stores ``<root>/<name>-<hash>.json`` with the config, the code version, the
wall time and the date; arrays go to a sidecar ``.npz``. Later calls with the same config read the file.
The code version is recorded but not part of the key, so a commit that does not change a config does
not throw results away; ``force=True`` (or ``SELMATCH_RECOMPUTE=1``) recomputes.

A :class:`Job` is one such result still to be had (a name, a config, a compute function); :func:`run` gives
the records of a list of jobs, computing only the missing ones, serially or as Ray tasks.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..artifacts import atomic_write, config_key, differences


def code_version() -> str:
    """The package version plus the git commit of the checkout (``.dirty`` if ``selmatch/`` had uncommitted
    changes), as it was when this process first asked (at its first result, before any work): a long run stamps
    its results with the code it runs, even when the checkout moves on meanwhile."""
    global _LOADED
    if _LOADED is None:
        _LOADED = _version_now()
    return _LOADED


def _version_now() -> str:
    try:
        repo = Path(__file__).resolve().parents[2]      # the checkout holding selmatch/
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True, text=True,
                                timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "selmatch"], cwd=repo,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return f"{__version__}+{commit}{'.dirty' if dirty else ''}" if commit else __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


_LOADED: str | None = None     # asked once per process (no git call at import)


def recompute_requested() -> bool:
    """``SELMATCH_RECOMPUTE=1``: compute every result again instead of reading it."""
    return os.environ.get("SELMATCH_RECOMPUTE", "") in ("1", "true")


def cached(name: str, config: dict, compute: Callable[[], dict], root: str | os.PathLike = "results",
           force: bool = False, provenance: Callable[[], dict] | None = None,
           read_also: str | os.PathLike | None = None) -> dict:
    """Return the stored result for ``(name, config)`` or compute, store and return it.

    ``read_also``: a second folder read (never written) when ``root`` lacks the result, such as the committed
    results under a notebook run outside the book's runner: what is committed is reused, what is new goes
    to ``root``.

    The returned dict has ``result`` (what ``compute`` returned, arrays included), ``config``,
    ``version``, ``seconds``, ``created`` and ``cached`` (True if it was read from disk).
    ``provenance`` (called after ``compute``) adds facts that are recorded but not part of the key, such
    as which copy of the data the result was computed on."""
    root = Path(root)
    key = config_key(config)
    path, arrays_path = root / f"{name}-{key}.json", root / f"{name}-{key}.npz"     # where it is written
    force = force or recompute_requested()
    src = next((d for d in (root, read_also) if d is not None and (Path(d) / path.name).exists()), None)
    if src is not None and not force:
        src = Path(src)
        record, arrays = _read(src / path.name, src / arrays_path.name)
        _verify(record, arrays, config, src / path.name)
        if arrays:
            record["result"]["arrays"] = arrays
        _log(record, True)
        return {**record, "cached": True}
    version = code_version()         # the code as the computation starts
    t0, c0 = time.perf_counter(), time.process_time()
    result = compute()
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    arrays = result.pop("arrays", None) if isinstance(result, dict) else None
    record = {"name": name, "key": key, "config": config, "version": version, "seconds": seconds,
              "cpu_seconds": cpu_seconds,   # all threads; wall time above also counts waiting for other jobs
              "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "result": result}
    if provenance is not None:
        record["provenance"] = provenance()
    record["checksum"] = checksum(json.loads(json.dumps(record, default=float)), arrays or {})
    root.mkdir(parents=True, exist_ok=True)
    if arrays:
        def write_npz(p: Path) -> None:
            with open(p, "wb") as f:   # a file object: numpy would append ".npz" to the temporary name
                np.savez_compressed(f, **arrays)

        atomic_write(arrays_path, write_npz)
    atomic_write(path, lambda p: p.write_text(json.dumps(record, indent=1, default=float) + "\n"))
    if arrays:
        result["arrays"] = arrays
    _log(record, False)
    return {**record, "cached": False}


def checksum(record: dict, arrays: dict) -> str:
    """sha256 over a record's config and result (as stored in JSON) and its arrays."""
    h = hashlib.sha256(json.dumps({"config": record["config"], "result": record["result"]}, sort_keys=True,
                                  default=float).encode())
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class DamagedResult(ValueError):
    """A stored result that cannot be trusted: unreadable, incomplete, without its checksum, or altered."""


def _read(path: Path, arrays_path: Path) -> tuple[dict, dict]:
    """A stored record and its arrays, or :class:`DamagedResult` in one line naming the file."""
    fix = "restore it (git checkout) or move it aside to recompute"
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DamagedResult(f"{path} is not a readable result ({type(e).__name__}: {str(e)[:80]}); {fix}") from None
    if not isinstance(record, dict) or not isinstance(record.get("result"), (dict, list)) \
            or not isinstance(record.get("config"), dict):
        raise DamagedResult(f"{path} is not a result record (no config and result); {fix}")
    if not isinstance(record.get("checksum"), str):
        raise DamagedResult(f"{path} has no checksum, so it cannot be trusted; {fix}")
    arrays = {}
    if arrays_path.exists():
        try:
            with np.load(arrays_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # noqa: BLE001 -- any damage to the archive: zip, npy header, pickled object
            raise DamagedResult(f"{arrays_path} is damaged ({type(e).__name__}: {str(e)[:80]}); {fix}") from None
    return record, arrays


def _verify(record: dict, arrays: dict, config: dict, path: Path) -> None:
    """A stored result is used only if it is the one asked for and unaltered since it was written."""
    diff = differences(record.get("config", {}), json.loads(json.dumps(config, default=str)))
    if diff:
        raise DamagedResult(f"{path} holds a result for another configuration ({'; '.join(diff[:3])}); move it aside")
    if checksum(record, arrays) != record["checksum"]:
        raise DamagedResult(f"{path} (or its .npz) was altered after it was written (checksum mismatch); restore it "
                            "(git checkout) or move it aside to recompute")


def _log(record: dict, hit: bool) -> None:
    """Append one line per result used to ``SELMATCH_CACHE_LOG`` (the book's status page reads it)."""
    log = os.environ.get("SELMATCH_CACHE_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"name": record["name"], "key": record["key"], "seconds": record["seconds"],
                                "cached": hit}) + "\n")


# ----------------------------------------------------------------------------- jobs

@dataclass(frozen=True)
class Job:
    """One cached result to be had: its kind (``name``), the config it depends on (its key is the config's hash),
    the function that computes it, and where it is stored. Calling a job returns its record (computing it
    only when it is not stored); :func:`run` does many at once. ``prepare`` computes what several jobs share
    (the experts they match, the scores they read) before they run side by side as Ray tasks."""

    name: str
    config: dict
    compute: Callable[[], dict] = field(compare=False)
    root: Path
    provenance: Callable[[], dict] | None = field(default=None, compare=False)
    prepare: Callable[[], object] | None = field(default=None, compare=False)
    read_also: Path | None = None        # a folder read, never written (see :func:`cached`)

    @property
    def path(self) -> Path:
        return Path(self.root) / f"{self.name}-{config_key(self.config)}.json"

    def stored(self) -> bool:
        also = self.read_also is not None and (Path(self.read_also) / self.path.name).exists()
        return (self.path.exists() or also) and not recompute_requested()

    def record(self) -> dict:
        """The stored or computed record; a result that records that its input does not fit (a window past
        the end of its class) is returned as it is."""
        return cached(self.name, self.config, self.compute, self.root, provenance=self.provenance,
                      read_also=self.read_also)

    def __call__(self) -> dict:
        """The record, or a ``ValueError`` with the reason its input was refused."""
        rec = self.record()
        if isinstance(rec["result"], dict) and rec["result"].get("fits") is False:
            raise ValueError(rec["result"]["reason"])
        return rec


def run(jobs: list[Job], desc: str = "units") -> list[dict]:
    """The records of ``jobs``, in order, computing only the missing ones: in this process, one after another,
    or, with Ray on (:mod:`selmatch.cluster`), as Ray tasks that each write their own result file (after each
    missing job's ``prepare``, in this process)."""
    from .. import cluster

    todo = list({j.path: j for j in jobs if not j.stored()}.values())
    if cluster.enabled() and len(todo) > 1:
        for j in todo:
            if j.prepare is not None:
                j.prepare()
        cluster.map(_compute, todo, desc=desc)
    return [j.record() for j in jobs]


def _compute(job: Job) -> None:
    job.record()
