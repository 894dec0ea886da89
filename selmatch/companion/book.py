"""The book's runner: execute the notebooks into the book with papermill, rerun one page, prune unused results,
build the HTML (the status page it writes is :mod:`.status`).

    python -m selmatch.companion.book execute --profile cpu [--only 02_sliding_window] [--keep-going]
    selmatch rerun 05_main_results --profile cpu [--params FILE] [-p NAME VALUE] [--into DIR] [--device cuda]

Each ``notebooks/NN_name.md`` (jupytext MyST) is converted to a notebook, executed by papermill with
``-p profile PROFILE`` from the repository root, and written to ``book/notebooks/NN_name.ipynb``; the
book itself is then built with execution off. ``book/status.md`` lists, per notebook, the profile, this
build's execution time, and the compute time of the cached results it used.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

from .status import bundle_results, endtoend_page, paper_page, record_page_costs, summary_page, write_status

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = "00_quickstart"
MEASUREMENTS = "07_gpu_cost"     # shows committed measurements: no profile, nothing computed
KEEP = ("our_scores-",)          # results other results are computed from (never pruned)   # always runs on the embedded dataset at its own parameters

# Each notebook is given only ``profile``: it takes its grid (ipcs, betas, ...) for that profile from
# selmatch.settings.NOTEBOOK_GRIDS, the one home of settings, so ``papermill ... -p profile cpu`` runs
# exactly the page's experiment.


def notebook_sources(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.md"))


def _report_computed(cache_log: Path, done: threading.Event, t0: float, progress, every: float = 5.0) -> None:
    """While a notebook runs, pass each result it computes (not those it reads) to ``progress`` as a line:
    an hours-long page shows where it is. Reads the cache log the kernel appends to."""
    seen = 0
    while True:
        stop = done.wait(every)
        lines = cache_log.read_text().splitlines() if progress and cache_log.exists() else []
        for line in lines[seen:]:
            try:
                u = json.loads(line)
            except ValueError:          # a line being written: read it next time
                break
            seen += 1
            if not u["cached"]:
                progress(f"  [{(time.perf_counter() - t0) / 60:.0f} min] computed {u['name']}-{u['key']} "
                         f"({u['seconds'] / 60:.1f} min)")
        if stop:
            return


def execute(src: Path, out: Path, parameters: dict, cwd: Path = ROOT, log: Path | None = None,
            progress=None) -> dict:
    """Run one jupytext notebook with papermill; returns timing and the cached results it touched.
    ``progress`` (e.g. ``print``) receives a line for each result computed, as it lands."""
    import jupytext
    import papermill

    nb = jupytext.read(src)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src_ipynb = Path(tmp) / f"{src.stem}.ipynb"
        jupytext.write(nb, src_ipynb)
        cache_log = Path(tmp) / "cache.log"
        os.environ["SELMATCH_CACHE_LOG"] = str(cache_log)
        book_results = "SELMATCH_RESULTS" not in os.environ
        if book_results:                  # the book's runner writes the committed results (env_context)
            os.environ["SELMATCH_RESULTS"] = str(Path(cwd) / "results")
        t0 = time.perf_counter()
        error = None
        done = threading.Event()
        watcher = threading.Thread(target=_report_computed, args=(cache_log, done, t0, progress), daemon=True)
        watcher.start()
        try:
            papermill.execute_notebook(str(src_ipynb), str(out), parameters=parameters, cwd=str(cwd),
                                       kernel_name="python3", progress_bar=False)
        except Exception as e:  # noqa: BLE001 -- recorded on the status page, re-raised by the caller
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        finally:
            os.environ.pop("SELMATCH_CACHE_LOG", None)
            if book_results:
                os.environ.pop("SELMATCH_RESULTS", None)
            done.set()
            watcher.join()
        seconds = time.perf_counter() - t0
        used = [json.loads(line) for line in cache_log.read_text().splitlines()] if cache_log.exists() else []
    # a result a page reads twice (a window that is also the best window) counts once
    first: dict[str, dict] = {}
    for u in used:                     # the first read is the one that computed it, if any
        first.setdefault(f"{u['name']}-{u['key']}", u)
    used = list(first.values())
    return {"notebook": src.stem, "seconds": seconds, "error": error, "parameters": parameters,
            "results": len(used), "computed": sum(not u["cached"] for u in used),
            "compute_seconds": sum(u["seconds"] for u in used),
            "keys": sorted({f"{u['name']}-{u['key']}" for u in used}),
            "key_seconds": {f"{u['name']}-{u['key']}": u["seconds"] for u in used}}


PARAMS = ROOT / "notebooks" / "params"      # each page's parameters at each profile (generated: `params`)
RERUN_INTO = "rerun-{profile}"              # where `selmatch rerun` writes, relative to the working directory


def profiled_pages(root: Path = ROOT) -> list[str]:
    """The notebooks that take a ``profile`` (all but the quickstart and the GPU measurements)."""
    return [s.stem for s in notebook_sources(root) if s.stem not in (QUICKSTART, MEASUREMENTS)]


def page_parameters(notebook: str, profile: str) -> dict:
    """Everything the page runs with at ``profile``: the profile and the page's grid, written out."""
    from ..settings import get_profile, page_grid

    get_profile(profile)
    return {"profile": profile, **page_grid(notebook, profile)}


def params_text(notebook: str, profile: str) -> str:
    import yaml

    ran = ("the parameters the book's page ran with" if profile == "cpu" else
           "the page's parameters at the paper's scale (never run for this book: a GPU's work)" if profile == "paper"
           else "the page's parameters at the smallest scale (what the tests run)")
    head = (f"# {notebook} at profile {profile}: {ran} (selmatch.settings).\n"
            f"# Rerun the page with them, or with your changes to a copy of this file:\n"
            f"#   selmatch rerun {notebook} --params notebooks/params/{notebook}.{profile}.yaml\n")
    return head + yaml.safe_dump(page_parameters(notebook, profile), sort_keys=False, default_flow_style=None)


def write_params(root: Path = ROOT, profiles: tuple[str, ...] = ("smoke", "cpu", "paper")) -> list[Path]:
    """(Re)write ``notebooks/params/NN_name.PROFILE.yaml`` for every page and profile from the settings."""
    out = root / "notebooks" / "params"
    out.mkdir(exist_ok=True)
    written = []
    for name in profiled_pages(root):
        for profile in profiles:
            path = out / f"{name}.{profile}.yaml"
            path.write_text(params_text(name, profile))
            written.append(path)
    return written


def _notebook_name(notebook: str, root: Path = ROOT) -> str:
    """``05``, ``05_main_results``, ``05_main_results.md`` or its path -> ``05_main_results``."""
    stem = Path(notebook).name.split(".")[0]
    names = [s.stem for s in notebook_sources(root)]
    if not names:
        raise ValueError(f"no notebooks under {root / 'notebooks'}: `selmatch rerun` runs the book's pages from a "
                         "checkout of the repository (git clone, then pip install -e .)")
    hits = [n for n in names if n == stem or n.split("_")[0] == stem]
    if len(hits) != 1:
        raise ValueError(f"notebook={notebook!r} is not one of the book's notebooks; valid: {', '.join(names)} "
                         "(or their two-digit numbers)")
    return hits[0]


def _yaml(text: str, where: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{where} is not valid YAML ({first}); write lists as [50, 100]") from None


def _conforms(value, typ: str) -> bool:
    """Whether ``value`` has the type a parameters cell declares (``int``, ``list[float]``, ...)."""
    if typ.startswith("list[") and typ.endswith("]"):
        return isinstance(value, list) and all(_conforms(v, typ[5:-1]) for v in value)
    kinds = {"int": int, "float": (int, float), "str": str, "dict": dict, "bool": bool}
    return typ in kinds and isinstance(value, kinds[typ]) and (typ == "bool" or not isinstance(value, bool))


# ranges by parameter name (a list's every value): images per class, fractions of a class
_RANGES = {"code_beta": (0.0, None, ">= 0 (a multiple of the IPC)"), "ipc": (1, None, "a whole number >= 1"),
           "beta": (0.0, 1.0, "in [0, 1)"), "alpha": (0.0, 1.0, "in [0, 1]"), "seed": (0, None, "a whole number >= 0"),
           "per_class": (1, None, "a whole number >= 1")}


def _in_range(name: str, value) -> str | None:
    key = next((k for k in _RANGES if name.rstrip("s").endswith(k) or name.startswith(k)), None)
    if key is None or isinstance(value, (str, dict, bool)) or value is None:
        return None
    values = value if isinstance(value, list) else [value]
    low, high, words = _RANGES[key]
    bad = [v for v in values if isinstance(v, (int, float)) and (v < low or (high is not None and (
        v >= high if key == "beta" else v > high)))]
    return f"{name}={value!r}: {bad[0]!r} is not {words}" if bad else None


def check_parameters(name: str, given: dict, cell_source: str, device_here: bool = True) -> None:
    """``given`` against the page's parameter cell: every name known, every value of its declared type (``# type:``)
    and range, the profile real, and the device one this machine has (``device_here``; a notebook only prepared
    here may run on another). One ``ValueError`` naming the parameter, before a kernel starts."""
    import re

    from ..device import resolve_device
    from ..settings import PROFILES, get_profile, page_grid

    grid = page_grid(name, given["profile"]) if given.get("profile") in PROFILES else {}
    known: dict = {}
    exec(cell_source, {}, known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; its parameters: {', '.join(known)}")
    types = dict(re.findall(r"^(\w+)\s*=.*#\s*type:\s*(\S+)", cell_source, re.M))
    for key, value in given.items():
        typ = types.get(key)
        if value is not None and typ is not None and not _conforms(value, typ):
            example = grid.get(key, known[key])
            raise ValueError(f"{name}: {key}={value!r} must be {'an' if typ[0] in 'aeiou' else 'a'} {typ}"
                             + (f", e.g. -p {key} \"{example}\"" if example is not None else ""))
        why = _in_range(key, value)
        if why:
            raise ValueError(f"{name}: {why}")
    if given.get("profile") is not None:
        get_profile(given["profile"])               # names the valid profiles
    if given.get("device") is not None and device_here:
        resolve_device(given["device"])             # names the devices this machine has


def rerun(notebook: str, profile: str | None = None, params: str | None = None, set_: list | None = None,
          device: str | None = None, into: str | None = None, prepare_only: bool = False,
          reuse: bool = False, force: bool = False, root: Path = ROOT) -> Path:
    """Execute one page with papermill into ``into`` (default ``rerun-PROFILE``): its results, expert
    trajectories and distillation checkpoints go to ``into/results`` and ``into/runs``, apart from the
    committed ones, and the executed notebook to ``into/NAME.ipynb``. The parameters are the page's own at
    ``profile`` (:func:`page_parameters`), or those of a ``params`` file, then each ``(name, value)`` of
    ``set_`` (values read as YAML: ``-p ipcs "[50, 100]"``). With ``reuse``, the committed results of the
    profile are copied in first (files already there are kept), so only what they lack is computed.
    Every parameter is checked against the page's parameter cell (name, declared type, range, profile, device)
    before a kernel starts. Returns the executed notebook's path."""
    import jupytext
    import papermill

    name = _notebook_name(notebook, root)
    if params is not None:
        path = Path(params)
        if not path.is_file():
            raise ValueError(f"params={params!r} is not a file (each page's are in notebooks/params/)")
        given = _yaml(path.read_text(), f"the params file {path}") or {}
        if not isinstance(given, dict):
            raise ValueError(f"params={params!r} must hold a mapping of parameter names to values")
        if profile is not None:
            given["profile"] = profile
    else:
        given = page_parameters(name, profile or "cpu") if name not in (QUICKSTART, MEASUREMENTS) else {}
    for key, value in set_ or []:
        given[key] = _yaml(value, f"-p {key} {value!r}")
    if device is not None:
        given["device"] = device
    src = root / "notebooks" / f"{name}.md"
    nb = jupytext.read(src)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    check_parameters(name, given, cell.source, device_here=not prepare_only)   # a prepared page runs elsewhere
    if reuse and not given.get("profile"):
        raise ValueError(f"--reuse copies the committed results of a profile, and these parameters name none; "
                         f"pass --profile (or add profile to {params or 'the parameters'})")
    folder = Path(into or RERUN_INTO.format(profile=given.get("profile", "default"))).resolve()
    if (folder / f"{name}.ipynb").exists() and not force and not prepare_only:
        raise ValueError(f"{folder} already holds an executed {name}.ipynb; pass --force to overwrite it (its results "
                         "are kept and reused), or choose another --into")
    folder.mkdir(parents=True, exist_ok=True)
    if reuse and given.get("profile"):
        import shutil

        committed, mine = root / "results" / given["profile"], folder / "results" / given["profile"]
        mine.mkdir(parents=True, exist_ok=True)
        for f in committed.rglob("*"):           # results, and the downloads in sets/
            target = mine / f.relative_to(committed)
            if f.is_file() and not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, target)
    out = folder / f"{name}.ipynb"
    with tempfile.TemporaryDirectory() as tmp:
        src_ipynb = Path(tmp) / f"{name}.ipynb"
        jupytext.write(nb, src_ipynb)
        env = {"SELMATCH_RESULTS": str(folder / "results"), "SELMATCH_RUNS": str(folder / "runs")}
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)           # the kernel papermill starts inherits them
        try:
            papermill.execute_notebook(str(src_ipynb), str(out), parameters=given, cwd=str(root),
                                       kernel_name="python3", prepare_only=prepare_only, progress_bar=not prepare_only)
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return out


def prune(profile: str, delete: bool, root: Path = ROOT) -> int:
    """Results under ``results/<profile>`` that no notebook read in the last execution of every notebook."""
    status = root / "book" / "status.json"
    rows = json.loads(status.read_text()) if status.exists() else []
    ran = {r["notebook"] for r in rows if r["parameters"].get("profile") == profile and not r["error"] and "keys" in r}
    missing = {s.stem for s in notebook_sources(root)} - {QUICKSTART, MEASUREMENTS} - ran
    if missing:
        print(f"selmatch.companion.book: error: execute {', '.join(sorted(missing))} at profile={profile!r} first "
              "(prune needs every notebook's list of results)", file=sys.stderr)
        return 2
    used = {k for r in rows if r["notebook"] in ran for k in r["keys"]}
    # our own scores are an input to other results' computations (easy/hard test halves), read only when
    # those are computed: they stay
    stale = sorted(f for f in (root / "results" / profile).glob("*.json")
                   if f.stem not in used and not f.stem.startswith(KEEP))
    for f in stale:
        print(f"{'removed' if delete else 'unused'}: {f.relative_to(root)}")
        if delete:
            f.unlink()
            f.with_suffix(".npz").unlink(missing_ok=True)
    print(f"{len(stale)} unused of {len(stale) + len(used)} results")
    return 0


def build(profile: str, root: Path = ROOT) -> int:
    """``make book``: execute every notebook at ``profile``, build the HTML with warnings as errors, and record
    the wall time (and how many results were computed rather than read) in ``book/build_time.json``."""
    import datetime as _dt
    import subprocess

    t0 = time.perf_counter()
    rc = main(["execute", "--profile", profile])
    # the intro's summary reads what every page has just read (so it computes nothing); after a failed page,
    # it says there is none rather than compute
    summary = summary_page(profile) if rc == 0 else \
        f"*No results summary for this build (profile `{profile}`): a page failed; see the status page.*\n"
    (root / "book" / "_generated" / "summary.md").write_text(summary)
    rows = json.loads((root / "book" / "status.json").read_text())
    rc = rc or subprocess.call([str(Path(sys.executable).with_name("jupyter-book")), "build", str(root), "-n", "-W",
                                "--keep-going"], cwd=root)
    seconds = time.perf_counter() - t0
    (root / "book" / "build_time.json").write_text(json.dumps({
        "profile": profile, "seconds": seconds, "computed": sum(r["computed"] for r in rows), "ok": rc == 0,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}) + "\n")
    print(f"book built in {seconds:.0f} s at profile {profile}" + ("" if rc == 0 else " WITH ERRORS"))
    return rc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("execute", help="execute the notebooks into book/notebooks")
    e.add_argument("--profile", default="cpu", help="compute profile passed to every notebook (default cpu)")
    e.add_argument("--only", nargs="*", help="notebook names (e.g. 02_sliding_window)")
    e.add_argument("--keep-going", action="store_true", help="run the rest after a failure (exit 1 at the end)")
    b = sub.add_parser("build", help="execute every notebook, then build the HTML book; records the time taken")
    b.add_argument("--profile", default="cpu")
    pr = sub.add_parser("prune", help="list (or --delete) cached results no notebook read in the last build")
    pr.add_argument("--profile", required=True)
    pr.add_argument("--delete", action="store_true", help="remove them (default: only list)")
    pa = sub.add_parser("params", help="write notebooks/params/NN_name.PROFILE.yaml from selmatch.settings")
    pa.add_argument("--check", action="store_true", help="only report files that differ from the settings (exit 1)")
    args = p.parse_args(argv)
    from ..settings import get_profile

    if args.command == "params":
        if args.check:
            stale = [f"notebooks/params/{n}.{pr_}.yaml" for n in profiled_pages() for pr_ in ("smoke", "cpu", "paper")
                     if not (PARAMS / f"{n}.{pr_}.yaml").exists()
                     or (PARAMS / f"{n}.{pr_}.yaml").read_text() != params_text(n, pr_)]
            print("\n".join(f"stale: {f}" for f in stale) or "params files match the settings")
            return 1 if stale else 0
        print(f"wrote {len(write_params())} files under notebooks/params/")
        return 0
    if args.command == "prune":
        return prune(args.profile, args.delete)
    if args.command == "build":
        return build(args.profile)

    try:
        get_profile(args.profile)
    except ValueError as err:
        print(f"selmatch.companion.book: error: {err}", file=sys.stderr)
        return 2
    rows = []
    for src in notebook_sources():
        if args.only and src.stem not in args.only:
            continue
        params = {} if src.stem in (QUICKSTART, MEASUREMENTS) else {"profile": args.profile}
        print(f"executing {src.name} {params} ...", flush=True)
        row = execute(src, ROOT / "book" / "notebooks" / f"{src.stem}.ipynb", params,
                      progress=lambda line: print(line, flush=True))
        rows.append(row)
        if not row["error"] and params.get("profile"):
            bundle_results(src.stem, params["profile"], row["keys"])
        print(f"  {row['seconds']:.0f} s, {row['results']} results ({row['computed']} computed)"
              + (f", FAILED: {row['error']}" if row["error"] else ""), flush=True)
        if row["error"] and not args.keep_going:
            break
    status_json = ROOT / "book" / "status.json"
    previous = json.loads(status_json.read_text()) if status_json.exists() else []
    merged = {r["notebook"]: r for r in previous if (ROOT / "notebooks" / f"{r['notebook']}.md").exists()}
    merged |= {r["notebook"]: r for r in rows}
    ordered = [merged[k] for k in sorted(merged)]
    status_json.write_text(json.dumps(ordered, indent=1) + "\n")
    write_status(ordered, ROOT / "book" / "status.md")
    record_page_costs(rows, args.profile)
    (ROOT / "book" / "paper.md").write_text(paper_page())
    (ROOT / "book" / "_generated").mkdir(exist_ok=True)
    (ROOT / "book" / "_generated" / "endtoend.md").write_text(endtoend_page())
    from .figures import write as write_figures

    write_figures(ROOT / "book" / "_generated")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
