"""Execute the notebooks into the book with papermill and write the execution status page; rerun one page.

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

    head = (f"# {notebook} at profile {profile}: the parameters the book's page ran with (selmatch.settings).\n"
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


def rerun(notebook: str, profile: str | None = None, params: str | None = None, set_: list | None = None,
          device: str | None = None, into: str | None = None, prepare_only: bool = False,
          reuse: bool = False, root: Path = ROOT) -> Path:
    """Execute one page with papermill into ``into`` (default ``rerun-PROFILE``): its results, expert
    trajectories and distillation checkpoints go to ``into/results`` and ``into/runs``, apart from the
    committed ones, and the executed notebook to ``into/NAME.ipynb``. The parameters are the page's own at
    ``profile`` (:func:`page_parameters`), or those of a ``params`` file, then each ``(name, value)`` of
    ``set_`` (values read as YAML: ``-p ipcs "[50, 100]"``). With ``reuse``, the committed results of the
    profile are copied in first (files already there are kept), so only what they lack is computed.
    Returns the executed notebook's path."""
    import jupytext
    import papermill
    import yaml

    name = _notebook_name(notebook, root)
    if params is not None:
        path = Path(params)
        if not path.is_file():
            raise ValueError(f"params={params!r} is not a file (each page's are in notebooks/params/)")
        given = yaml.safe_load(path.read_text()) or {}
        if not isinstance(given, dict):
            raise ValueError(f"params={params!r} must hold a mapping of parameter names to values")
        if profile is not None:
            given["profile"] = profile
    else:
        given = page_parameters(name, profile or "cpu") if name not in (QUICKSTART, MEASUREMENTS) else {}
    for key, value in set_ or []:
        given[key] = yaml.safe_load(value)
    if device is not None:
        given["device"] = device
    src = root / "notebooks" / f"{name}.md"
    nb = jupytext.read(src)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    known: dict = {}
    exec(cell.source, {}, known)
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; its parameters: {', '.join(known)}")
    folder = Path(into or RERUN_INTO.format(profile=given.get("profile", "default"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    if reuse and given.get("profile"):
        import shutil

        committed, mine = root / "results" / given["profile"], folder / "results" / given["profile"]
        mine.mkdir(parents=True, exist_ok=True)
        for f in committed.glob("*"):
            if not (mine / f.name).exists():
                shutil.copy2(f, mine / f.name)
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


def profile_markdown(name: str, prof=None, title: str | None = None) -> list[str]:
    """The profile's full definition (training configs, evaluation budget, distillation preset) as a table."""
    from dataclasses import asdict

    from ..settings import NOTEBOOK_GRIDS, get_profile

    prof = prof or get_profile(name)
    lines = [title or f"## Profile `{name}`", "", "| part | setting |", "|---|---|"]
    for part in ("eval", "scores", "features"):
        cfg = {k: v for k, v in asdict(getattr(prof, part)).items() if v is not None}
        lines.append(f"| {part} training | " + ", ".join(f"{k}={v}" for k, v in cfg.items()) + " |")
    budget = (f"epochs × subset size = {prof.eval_full_epochs:g} × training-set size, clipped to "
              f"[{prof.eval_min_epochs}, {prof.eval_max_epochs or '∞'}] epochs") if prof.eval_full_epochs else \
        f"{prof.eval.epochs} epochs at every subset size"
    lines += [f"| evaluation budget | {budget} |", f"| runs per result | {prof.runs} (mean ± std) |",
              f"| real images for coverage | {prof.coverage_real or 'all'} |",
              f"| test images | {prof.test_subset or 'all'}, split into validation / test halves |"]
    for label, pre in (("", prof.distillation), (" (64×64 images)", prof.distillation_64)):
        if pre is None:
            continue
        for part in ("expert", "distill"):
            cfg = {k: v for k, v in asdict(getattr(pre, part)).items() if v is not None}
            lines.append(f"| {part}{label} | " + ", ".join(f"{k}={v}" for k, v in cfg.items()) + " |")
    if prof.distillation is None:
        lines.append("| experts and distillation | the paper's setting for each dataset and IPC |")
    nb = NOTEBOOK_GRIDS.get(name, {})
    if nb:
        lines += ["", "Notebook grids at this profile (`selmatch.settings.NOTEBOOK_GRIDS`):", "",
                  "| notebook | parameters |", "|---|---|"]
        lines += [f"| {k} | " + ", ".join(f"`{a}={b}`" for a, b in v.items()) + " |" for k, v in nb.items()]
    return lines + [""]


def paper_page() -> str:
    """The book's page of what it takes from the paper: the reported results and the official settings,
    written from the package's data (:mod:`.paper`, :data:`selmatch.settings.PAPER_SETTINGS`) at each build."""
    from dataclasses import asdict

    from ..settings import PAPER_SETTINGS
    from .paper import MTT_TABLE1, RATIOS, TABLE1, fmt

    names = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "tinyimagenet": "TinyImageNet"}
    cols = [(ds, ipc, r) for ds, by in RATIOS.items() for ipc, r in by.items()]
    lines = ["# The paper: its numbers and settings", "",
             "What this book takes from the paper {cite}`lee2024selmatch` and from the official code, in one place. "
             "Every number on this page is data in the package (the results in `selmatch/companion/paper.py`, the "
             "settings in `selmatch/settings.py`) and the page is written from it at each build, so the tables the "
             "analysis pages compare with and this page cannot disagree.", "",
             "## The results the paper reports", "",
             "Test accuracy (%) of ResNet-18-BN trained on each subset, mean ± std over 5 runs, at 5–30 % of the "
             "training set. Source: the paper's results as reproduced, with attribution, in the results table of "
             "the CCFS repository (Chen et al., CVPR 2025, arXiv 2503.18872); the paper's own table could not be "
             "read here, so these are *as reported* there.", "",
             "| dataset, subset (IPC) | " + " | ".join(TABLE1) + " |", "|---|" + "---|" * len(TABLE1)]
    for ds, ipc, r in cols:
        lines.append(f"| {names[ds]} {r} ({ipc}) | " + " | ".join(
            fmt(*by_ds[ds][ipc]) if by_ds.get(ds, {}).get(ipc) else "–" for by_ds in TABLE1.values()) + " |")
    lines += ["", "## Small budgets: MTT's own paper", "",
              "MTT's paper {cite}`cazenavette2022mtt` (ConvNet-128, CIFAR-10 with ZCA whitening, mean ± std): the "
              "regime where distillation is at its best, which {doc}`notebooks/09_crossover` measures at our scale.",
              "", "| method | " + " | ".join(f"IPC {i}" for i in sorted(MTT_TABLE1["MTT"]["cifar10"])) + " |",
              "|---|" + "---|" * len(MTT_TABLE1["MTT"]["cifar10"])]
    for method, by_ds in MTT_TABLE1.items():
        lines.append(f"| {method} | " + " | ".join(fmt(*v) for _, v in sorted(by_ds["cifar10"].items())) + " |")
    lines += ["", "## The official settings", "",
              "The ten settings of the official scripts, as `selmatch` runs them at the `paper` profile "
              "(`selmatch distill --preset NAME`). Evaluation trains ResNet-18-BN with SGD (lr 0.1, momentum 0.9, "
              "weight decay 5e-4, cosine schedule, batch 128) for the epochs shown, 5 runs.", "",
              "| preset | α | β | score | lr_img | evaluation epochs | differs from the common setting |",
              "|---|---|---|---|---|---|---|"]
    parts = {name: {**{f"expert {k}": v for k, v in asdict(pre.expert).items()},
                    **{k: v for k, v in asdict(pre.distill).items() if k not in ("lr_img", "checkpoint_every", "memory")}}
             for name, pre in PAPER_SETTINGS.items()}
    first = next(iter(parts.values()))
    common = {k: v for k, v in first.items() if all(p.get(k) == v for p in parts.values()) and v is not None}
    for name, pre in PAPER_SETTINGS.items():
        differs = ", ".join(f"{k} {v}" for k, v in parts[name].items() if k not in common and v is not None) or "–"
        lines.append(f"| `{name}` | {pre.alpha} | {pre.beta} | {pre.score} | {pre.distill.lr_img:g} | "
                     f"{pre.eval_epochs} | {differs} |")
    lines += ["", "Common to all ten: " + ", ".join(f"{k} {v}" for k, v in common.items()) + ". On 64×64 images "
              "(TinyImageNet) every ConvNet gets a fourth block (ConvNetD4BN in the official code), by the one rule of "
              "`selmatch.networks.for_image_size`."]
    lines += ["", "## The method and where paper and code disagree", "",
              "{doc}`method` describes the method as the official code runs it; {doc}`reproduction` lists each place "
              "where the paper and the code disagree, the reading `selmatch` uses by default and the option that "
              "gives the other.", ""]
    return "\n".join(lines)


def first_compute_seconds(rows: list[dict]) -> list[float]:
    """Per notebook, the compute time of the results no earlier notebook read: what executing the book in
    order from an empty cache costs at each notebook (a result shared by several is charged once)."""
    seen: set[str] = set()
    out = []
    for r in rows:
        ks = r.get("key_seconds", {})
        out.append(sum(v for k, v in ks.items() if k not in seen))
        seen |= set(ks)
    return out


DOWNLOADS = ROOT / "book" / "_generated" / "downloads"


def bundle_results(notebook: str, profile: str, keys: list[str], root: Path = ROOT) -> Path | None:
    """A zip of the cached results a page read (each JSON with its configuration, code version and
    provenance, and its arrays), linked from the page as its download."""
    import zipfile

    folder = Path(os.environ.get("SELMATCH_RESULTS", root / "results")) / profile
    files = [f for k in keys for f in (folder / f"{k}.json", folder / f"{k}.npz") if f.exists()]
    if not files:
        return None
    out = root / "book" / "_generated" / "downloads" / f"{notebook}-{profile}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for f in files:
            z.write(f, f"{profile}/{f.name}")
    return out


def page_costs_path(profile: str, root: Path = ROOT) -> Path:
    return root / "results" / f"pages-{profile}.json"


def record_page_costs(rows: list[dict], profile: str, root: Path = ROOT) -> None:
    """Per page, what computing it alone from an empty cache took (the compute time of every result it read,
    as recorded when each was made), kept with the results (``results/pages-PROFILE.json``) so that the pages
    can quote their own cost (:func:`selmatch.companion.report.cost_note`)."""
    path = page_costs_path(profile, root)
    costs = json.loads(path.read_text()) if path.exists() else {}
    for r in rows:
        if r["error"] or r["parameters"].get("profile") != profile:
            continue
        costs[r["notebook"]] = {"alone_seconds": round(r["compute_seconds"], 1), "results": r["results"]}
    path.write_text(json.dumps(dict(sorted(costs.items())), indent=1) + "\n")


def write_status(rows: list[dict], path: Path) -> None:
    lines = ["# Execution status and compute cost", "",
             "Each notebook was executed by papermill for this build of the book. *Build time* is this build's "
             "execution; *result compute time* is what the cached results it read took to compute when they were "
             "made (at the profile shown); *from scratch* charges each result to the first notebook that reads "
             "it, which is what executing the book in order from an empty cache costs at each notebook. These are "
             "wall times: a result computed while another job shared the cores records the wait too (newer "
             "results also record their CPU time, `cpu_seconds`, in `results/<profile>/*.json`). Training the "
             "expert trajectories (kept in `runs/`, a few minutes at `cpu`) is not included.", "",
             "| notebook | profile | build time (s) | results read | computed now | result compute time (min) "
             "| from scratch, in order (min) | status |",
             "|---|---|---|---|---|---|---|---|"]
    first = first_compute_seconds(rows)
    for r, f in zip(rows, first):
        status = "ok" if not r["error"] else f"failed: {r['error'][:80]}"
        lines.append(f"| {r['notebook']} | {r['parameters'].get('profile', '–')} | {r['seconds']:.0f} | {r['results']} | "
                     f"{r['computed']} | {r['compute_seconds'] / 60:.1f} | {f / 60:.1f} | {status} |")
    lines += ["", f"Computing every result from scratch took {sum(first) / 60:.0f} min in all (sum of the *from "
              "scratch* column), on the machine that made them: 2 CPU cores, no GPU.", ""]
    for name in sorted({r["parameters"].get("profile") for r in rows} - {None}):
        lines += profile_markdown(name)
    path.write_text("\n".join(lines) + "\n")


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
    from .figures import write as write_figures

    write_figures(ROOT / "book" / "_generated")
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
