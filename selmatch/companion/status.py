"""The book's status page and what it is made of: each page's cost from an empty cache, the profiles' full
definitions, the paper page, and each page's download of the results it read. Written by the runner
(:mod:`.book`) at each build; nothing here computes a result.
"""
from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


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


def endtoend_page(root: Path = ROOT) -> str:
    """The performance page's end-to-end table (the official ``distill.py`` against ``selmatch distill``),
    rendered from the committed ``benchmarks/endtoend.json`` that ``make bench OFFICIAL=...`` writes."""
    from benchmarks.endtoend import markdown                     # the harness owns its format

    path, loop = root / "benchmarks" / "endtoend.json", root / "benchmarks" / "loop_profile.json"
    return markdown(json.loads(path.read_text()) if path.exists() else None,
                    json.loads(loop.read_text()) if loop.exists() else None)


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

    from .units import results_root

    folder = results_root(root / "results") / profile
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(sorted(costs.items())), indent=1) + "\n")


def _records(rows: list[dict], root: Path = ROOT):
    from .units import results_root

    for r in rows:
        profile = r["parameters"].get("profile")
        for key in (r.get("keys") or []) if profile else []:
            path = results_root(root / "results") / profile / f"{key}.json"
            if path.exists():
                yield json.loads(path.read_text())


def machines(rows: list[dict], root: Path = ROOT) -> str:
    """One sentence: the CPUs the results read were computed on, as each result records it (``provenance.cpu``,
    recorded since 2026-12-06; older results say only that they ran on the CPU), with how many results each."""
    from collections import Counter

    seen = {}
    for rec in _records(rows, root):
        seen[rec.get("key", id(rec))] = (rec.get("provenance") or {}).get("cpu")
    counts = Counter(seen.values())
    named = ", ".join(f"{cpu} ({n})" for cpu, n in counts.most_common() if cpu)
    unnamed = counts.get(None, 0)
    if not seen:
        return "no result was read."
    return ((f"{named}" if named else "") + ("; " if named and unnamed else "")
            + (f"{unnamed} results made before the CPU model was recorded, on 2 CPU cores" if unnamed else "")
            + ". No GPU. CPUs differ in speed, so a time here is that machine's, not a promise.")


def code_versions(rows: list[dict], root: Path = ROOT) -> list[str]:
    """Per page, the code versions (package version + commit) of the results it read, as each result records."""
    from .units import results_root

    out = ["## Code versions", "", "Every result records the code that computed it (`version` in its file): the "
           "package version and the commit of `selmatch/` (`.dirty` would mark uncommitted changes; none here).", "",
           "| notebook | results | code versions (oldest commit first) |", "|---|---|---|"]
    for r in rows:
        profile = r["parameters"].get("profile")
        if not profile or not r.get("keys"):
            continue
        made = []
        for key in r["keys"]:
            path = results_root(root / "results") / profile / f"{key}.json"
            if path.exists():
                rec = json.loads(path.read_text())
                made.append((rec.get("created", ""), rec.get("version", "?")))
        versions = list(dict.fromkeys(v for _, v in sorted(made)))
        out.append(f"| {r['notebook']} | {len(made)} | {len(versions)}: " + ", ".join(f"`{v}`" for v in versions) + " |")
    return out + [""]


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
              f"scratch* column), on the machines that made them: {machines(rows)}", ""]
    lines += code_versions(rows)
    for name in sorted({r["parameters"].get("profile") for r in rows} - {None}):
        lines += profile_markdown(name)
    path.write_text("\n".join(lines) + "\n")


def _does(p) -> str:
    return {"above": "distillation helps", "below": "distillation harms",
            "no difference": "no difference detected"}[p.verdict]


def summary_page(profile: str, dataset: str = "cifar10") -> str:
    """The intro's results summary, written from the cached results of this build (nothing is computed): what
    reproduces, what does not, and for each failure what was tested as its cause (refuted, or still a
    hypothesis); SelMatch against each method per ratio with its one-protocol decomposition; the claims' tally."""
    from ..settings import page_grid
    from .pages import ablations, cpu_profile
    from .pages.claims import evaluate_claims, page_data
    from .pages.main_results import over_draws, setting_words
    from .report import ratio
    from .stats import paired
    from .units import env_context

    try:
        data = page_data(profile, dataset)
        ctx = env_context(profile=profile, dataset=dataset)
        parts = data["05_parts"]
        g8 = page_grid("08_cpu_profile", profile)
        pilot = cpu_profile.large_ipc(ctx, g8["large_ipcs"], g8["large_arms"], g8["profile_ipcs"]) if g8.get("large_ipcs") else []
    except Exception as e:  # noqa: BLE001 -- a build without every page's results has no summary
        return (f"*No results summary for this build (profile `{profile}`): {type(e).__name__}: "
                f"{str(e).splitlines()[0][:120] if str(e) else ''}.*\n")
    cross, main = data["09_crossover"], data["05_main_results"]
    first, last = cross[0], cross[-1]
    final = lambda r: r["final"] if "final" in r else r      # noqa: E731
    small, large = paired(final(first["MTT"]), first["Random"]), paired(final(last["MTT"]), last["Random"])
    claims = evaluate_claims(data, dataset)
    held = [c["id"] for c in claims if c["verdict"] == "holds"]
    mtt = {first["ipc"]: small, last["ipc"]: large}
    good = [f"- MTT − its own random start at IPC {i} ({ratio(dataset, i)}): {p} points ({_does(p)}; "
            "{doc}`notebooks/09_crossover`)." for i, p in mtt.items() if p.verdict == "above"]
    bad = [f"- MTT − its own random start at IPC {i} ({ratio(dataset, i)}): {p} points ({_does(p)}); in the papers "
           "(MTT's at small IPC, SelMatch's at 5–30 %) MTT is above random selection." for i, p in mtt.items() if p.verdict != "above"]
    if bad:
        lifted = [r["arm"] for r in pilot if r["arm"] != "start" and paired(r["final"], next(
            s["final"] for s in pilot if s["ipc"] == r["ipc"] and s["arm"] == "start")).verdict == "above"]
        bad.append("  Tested as a cause: *the distillation is too short* ({doc}`notebooks/04_ablations`: "
                   f"{ablations.too_short_verdict(data['04_ablations']['budget_rows'], ctx)})."
                   + (f" The large-IPC pilot ({{doc}}`notebooks/08_cpu_profile`) tried one lever per arm: "
                      f"{_pilot_sentence(pilot)}." if pilot else "")
                   + (" A cause is not found." if not lifted else f" Arms that lift MTT above its start: "
                      f"{', '.join(lifted)}."))
    lines = [f"**What this build found** (profile `{profile}`, {dataset}; paired runs with the same evaluation "
             "seeds, 95 % intervals; every number written from the results at each build).", "",
             "*What reproduces.*", "", *good,
             f"- Of the paper's {len(claims)} claims, {len(held)} hold under the book's family-wise rule"
             + (f" ({', '.join(held)})" if held else "") + " ({doc}`notebooks/10_claims`).", "",
             "*What does not, and what was tested as its cause.*", "", *bad]
    lines += [f"- The paper's headline, SelMatch above random, the window and MTT at 5–30 %, "
              f"{next(c['verdict'] for c in claims if c['id'] == 'h')} here. Per ratio, SelMatch − each method (the "
              "paper's protocol), and SelMatch − window split by one protocol into the augmentation's part and "
              "the distillation's ({doc}`notebooks/05_main_results`):", "",
              "| ratio | SelMatch's setting (val) | − random | − window | − MTT | augmentation | distillation |",
              "|---|---|---|---|---|---|---|"]
    for ipc, by in main.items():
        sel, start, end = parts[ipc]["SelMatch"]
        sm = by["SelMatch"]
        lines.append(f"| {ratio(dataset, ipc)} (IPC {ipc}) | {'the paper’s: ' if 'paper' in sm['setting'] else ''}"
                     f"{setting_words(sm)} | "
                     + " | ".join(str(paired(by["SelMatch"], by[m])) for m in ("Random", "Sliding window", "MTT"))
                     + f" | {paired(start, sel)} | {paired(end, start)} |")
    for ipc, by_draw in data.get("05_draws", {}).items():
        if len(by_draw) > 1:
            lines += ["", f"  Over {len(by_draw)} independent draws at {ratio(dataset, ipc)} (IPC {ipc}; each its own "
                      "random subset, experts, distillation and evaluation seeds, with draw 0's choices): "
                      + ", ".join(f"− {name} {over_draws(by_draw, 'SelMatch', m)}" for m, name in
                                  (("Random", "random"), ("Sliding window", "window"), ("MTT", "MTT")))
                      + "."]
    lines += ["", "  Random and the window are evaluated with DSA (one family per batch), MTT and SelMatch with the "
              "combined policy (crop + flip on real images, per-image DSA on distilled ones), as the paper's code "
              "does. *Augmentation* is the window under SelMatch's policy with nothing distilled, minus the window; "
              "*distillation* is SelMatch minus that.", ""]
    return "\n".join(lines) + "\n"


def _pilot_sentence(rows: list[dict]) -> str:
    """The pilot's arms per IPC against their start: how many end above it, and the best one's difference."""
    from .pages.cpu_profile import pilot_outcome
    from .stats import paired

    out = []
    for ipc, o in pilot_outcome(rows).items():
        if o["best"] is None:
            continue
        out.append(f"at IPC {ipc}, {len(o['up'])} of {len(o['tried'])} arms ({', '.join(r['arm'] for r in o['tried'])}) "
                   "end above their start" + (f" ({', '.join(o['up'])})" if o["up"] else "")
                   + f"; the best, {o['best']['arm']}, ends {paired(o['best']['final'], o['start'])} points from it")
    return "; ".join(out)
