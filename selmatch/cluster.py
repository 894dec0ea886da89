"""Independent work on Ray: each expert, each evaluation run and each cached unit of a page as a task.

Off by default: with ``SELMATCH_RAY`` unset, :func:`map` is a plain loop in this process and nothing else
changes. ``SELMATCH_RAY=auto`` starts a local Ray (all of this machine's CPUs and GPUs; ``SELMATCH_RAY_CPUS``
caps the CPUs); any other value is the address of a running Ray cluster to join (``ray start --head`` prints
it). The command line's ``--ray`` flag means ``auto`` when the variable is unset. Ray is an optional extra:
``pip install 'selmatch[ray]'``.

What makes a task's numbers the same wherever it runs:

* every unit of work carries its own seed (expert ``k`` trains with ``seed + k``, evaluation run ``r`` with
  ``seed + r``), so the order and place in which tasks run do not matter;
* a task uses as many threads as the CPUs Ray gave it (one by default), so a task and a serial run with the
  same thread count compute the same floating-point operations;
* every output is written atomically by the task itself (an expert's file, a cached result), so a task that
  dies half-way leaves nothing half-written, and Ray runs it again (``retries`` times).

What machines must share: the ``results`` and ``runs`` folders (a shared filesystem such as NFS, mounted at the
same path) and an installed ``selmatch`` with its data (``SELMATCH_DATA`` or the cache). On one machine with
several GPUs there is nothing to set up: each task that asks for a GPU sees only its own
(``CUDA_VISIBLE_DEVICES``), so ``device="cuda"`` is that GPU.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Iterable

from tqdm import tqdm

ENV = "SELMATCH_RAY"
OFF = ("", "0", "off", "false", "no")


def address() -> str | None:
    """``SELMATCH_RAY``: ``None`` (off), ``"auto"`` (a local Ray) or a cluster address."""
    value = os.environ.get(ENV, "").strip()
    return None if value.lower() in OFF else value


def enabled() -> bool:
    return address() is not None


class RayUnavailable(ValueError):
    """Ray was asked for (``SELMATCH_RAY`` or ``--ray``) but is not installed, or its cluster cannot be reached."""


def ray_module():
    """Ray, connected (started locally for ``auto``); a one-line :class:`RayUnavailable` when it is asked for but
    not installed or not reachable (the command line calls this before it writes anything)."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(f"{ENV}={address()!r} asks for Ray, which is not installed here: "
                             "pip install 'selmatch[ray]' (or unset SELMATCH_RAY to run in this process)") from None
    if not ray.is_initialized():
        where = address()
        options = dict(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        cpus = os.environ.get("SELMATCH_RAY_CPUS")
        if cpus is not None and not (cpus.isdigit() and int(cpus) >= 1):
            raise RayUnavailable(f"SELMATCH_RAY_CPUS={cpus!r} must be a whole number >= 1")
        try:
            if where == "auto":
                import atexit

                ray.init(num_cpus=int(cpus) if cpus else None, **options)
                atexit.register(ray.shutdown)          # stop the local Ray with this process, quietly
            else:
                ray.init(address=where, **options)
        except Exception as e:  # noqa: BLE001 -- whatever Ray raises for a bad address or a dead cluster
            raise RayUnavailable(f"{ENV}={where!r}: Ray could not be {'started' if where == 'auto' else 'reached'} "
                                 f"({type(e).__name__}: {str(e).strip().splitlines()[0][:120] if str(e).strip() else ''}); "
                                 "use auto, the address `ray start --head` printed, or unset it") from None
    return ray


def _resources(ray, device: str, cpus: int) -> dict:
    """One GPU per task where the task is to run on CUDA and the cluster has GPUs; CPUs otherwise."""
    if str(device).startswith("cuda") and ray.cluster_resources().get("GPU", 0) >= 1:
        return {"num_gpus": 1, "num_cpus": cpus}
    return {"num_cpus": cpus}


def _run(fn: Callable, item: Any, threads: int, **shared) -> Any:
    """A task's body: as many torch threads as the CPUs the task holds, then ``fn(item, **shared)``."""
    import torch

    torch.set_num_threads(threads)
    return fn(item, **shared)


def map(fn: Callable, items: Iterable, *, shared: dict | None = None, device: str = "cpu", cpus: int = 1,
        retries: int = 2, desc: str = "tasks", progress: bool = True) -> list:
    """``[fn(item, **shared) for item in items]``, as Ray tasks when Ray is on (in order, whatever order they
    finish in). ``shared`` holds large inputs every task reads (tensors): they are stored once in Ray's object
    store. A task that fails (its worker dies, say) is run again up to ``retries`` times; a task that still
    fails raises its error here, after the others have finished."""
    items = list(items)
    shared = shared or {}
    if not enabled() or not items:
        return [fn(item, **shared) for item in items]
    ray = ray_module()
    task = ray.remote(max_retries=retries, retry_exceptions=False, **_resources(ray, device, cpus))(_run)
    stored = {k: ray.put(v) for k, v in shared.items()}      # Ray passes each task the stored values
    refs = [task.remote(fn, item, cpus, **stored) for item in items]
    pending, failed = list(refs), 0
    with tqdm(total=len(refs), desc=f"{desc} (ray)", disable=not progress) as bar:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=5.0)
            for ref in ready:
                try:
                    ray.get(ref)
                except Exception:  # noqa: BLE001 -- counted here, raised below by ray.get(refs)
                    failed += 1
            bar.update(len(ready))
            bar.set_postfix(running=len(pending), failed=failed)
    try:
        return ray.get(refs)
    except ray.exceptions.RayTaskError as err:      # the task's own error, as if it had run here
        raise err.as_instanceof_cause() from None
