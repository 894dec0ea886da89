"""Execute the notebooks into the book with papermill and write the execution status page.

    python -m selmatch.book execute --profile cpu [--only 02_sliding_window] [--keep-going]

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
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = "00_quickstart"   # always runs on the embedded dataset at its own parameters

# Parameters passed to each notebook per profile, on top of ``profile`` (the notebooks' own defaults are
# the smoke ones). They are visible in each executed notebook's "injected-parameters" cell.
PROFILE_PARAMETERS: dict[str, dict[str, dict]] = {
    "cpu": {
        "02_sliding_window": {"ipcs": [50, 250, 500], "betas": [0.0, 0.2, 0.4, 0.6, 0.8]},
        "03_coverage": {"ipcs": [50, 250], "betas": [0.4, 0.6, 0.8], "alpha": 0.5, "eval_at": [0, 20, 40, 60]},
        "04_ablations": {"ipcs": [50, 250], "alphas": [0.0, 0.25, 0.5, 1.0], "betas": [0.4, 0.6, 0.8],
                         "alpha_fixed": 0.5},
        "05_main_results": {"ipcs": [250, 500, 1000, 1500], "betas": [0.4, 0.6, 0.8], "alphas": [0.25]},
        "06_tinyimagenet": {"ipcs": [50, 100], "betas": [0.2, 0.4, 0.6, 0.8], "alpha": 0.5},
    },
}


def notebook_sources(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.md"))


def execute(src: Path, out: Path, parameters: dict, cwd: Path = ROOT, log: Path | None = None) -> dict:
    """Run one jupytext notebook with papermill; returns timing and the cached results it touched."""
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
        try:
            papermill.execute_notebook(str(src_ipynb), str(out), parameters=parameters, cwd=str(cwd),
                                       kernel_name="python3", progress_bar=False)
        except Exception as e:  # noqa: BLE001 -- recorded on the status page, re-raised by the caller
            error = f"{type(e).__name__}: {str(e).strip().splitlines()[-1] if str(e).strip() else ''}"
        finally:
            os.environ.pop("SELMATCH_CACHE_LOG", None)
        seconds = time.perf_counter() - t0
        used = [json.loads(line) for line in cache_log.read_text().splitlines()] if cache_log.exists() else []
    return {"notebook": src.stem, "seconds": seconds, "error": error, "parameters": parameters,
            "results": len(used), "computed": sum(not u["cached"] for u in used),
            "compute_seconds": sum(u["seconds"] for u in used)}


def write_status(rows: list[dict], path: Path) -> None:
    lines = ["# Execution status", "",
             "Each notebook was executed by papermill for this build of the book. *Build time* is this build's "
             "execution; *result compute time* is what the cached results it read took to compute when they were "
             "made (at the profile shown), which is what a rerun from scratch costs.", "",
             "| notebook | profile | build time (s) | results read | computed now | result compute time (min) | status |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        status = "ok" if not r["error"] else f"failed: {r['error'][:80]}"
        lines.append(f"| {r['notebook']} | {r['parameters'].get('profile', '–')} | {r['seconds']:.0f} | {r['results']} | "
                     f"{r['computed']} | {r['compute_seconds'] / 60:.1f} | {status} |")
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("execute", help="execute the notebooks into book/notebooks")
    e.add_argument("--profile", default="cpu", help="compute profile passed to every notebook (default cpu)")
    e.add_argument("--only", nargs="*", help="notebook names (e.g. 02_sliding_window)")
    e.add_argument("--keep-going", action="store_true", help="run the rest after a failure (exit 1 at the end)")
    args = p.parse_args(argv)
    from .profiles import get_profile

    try:
        get_profile(args.profile)
    except ValueError as err:
        print(f"selmatch.book: error: {err}", file=sys.stderr)
        return 2
    rows = []
    for src in notebook_sources():
        if args.only and src.stem not in args.only:
            continue
        params = {} if src.stem == QUICKSTART else \
            {"profile": args.profile, **PROFILE_PARAMETERS.get(args.profile, {}).get(src.stem, {})}
        print(f"executing {src.name} {params} ...", flush=True)
        row = execute(src, ROOT / "book" / "notebooks" / f"{src.stem}.ipynb", params)
        rows.append(row)
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
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
