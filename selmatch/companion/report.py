"""What every page shares: the notes on its profile and cost, the commands that rerun it, tables, the
comparison phrase and the picture of distilled images. A page's own figures, tables and conclusions live in
its module of :mod:`selmatch.companion.pages`.

Nothing here computes a result; it only formats what :mod:`selmatch.companion.units` returned.
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..data import DATASETS
from .paper import fmt  # noqa: F401 -- the notebooks format numbers as report.fmt
from .stats import paired

N_TRAIN = {"cifar10": 50_000, "cifar100": 50_000, "tinyimagenet": 100_000, "tinyimagenet-c10": 5_000,
           "mnist5k": 4_000}


def show(markdown: str):
    from IPython.display import Markdown, display

    display(Markdown(markdown))


def ratio(dataset: str, ipc: int) -> str:
    r = 100 * ipc * DATASETS[dataset].num_classes / N_TRAIN[dataset]
    return f"{r:.0f}%" if r >= 1 else f"{r:.1f}%" if r >= 0.1 else f"{r:.2f}%"


def page_commands(notebook: str, profile: str, dataset: str = "cifar10") -> list[tuple[str, str]]:
    """The commands a page prints to rerun itself, as (what it does, command); a test runs each
    (``tests/test_commands.py``)."""
    params = f"{notebook}.{profile}.yaml"
    cmds = [(f"this page's experiment at `{profile}`, into `rerun-{profile}/` (its parameters: "
             f"{{download}}`{params} <../../notebooks/params/{params}>`)", f"selmatch rerun {notebook} --profile {profile}"),
            ("the same, computing only what the committed results lack (here, nothing)",
             f"selmatch rerun {notebook} --profile {profile} --reuse")]
    if dataset == "cifar10":
        cmds.append(("on the original CIFAR-10 (torchvision downloads it when `SELMATCH_DATA` is unset)",
                     f"env -u SELMATCH_DATA selmatch rerun {notebook} --profile {profile} --into rerun-original"))
    if profile != "paper":
        cmds.append(("at the `paper` profile (ResNet-18-BN, the official experts and budgets, this page's `paper` grid), "
                     "on a GPU (not run here)",
                     f"selmatch rerun {notebook} --profile paper --device cuda"))
    return cmds


def cost_note(notebook: str, results_root: str = "results") -> None:
    """What this page costs from an empty cache at each profile, as measured when its results were made
    (``results/pages-PROFILE.json``, written by ``make book``); an exercise that changes a parameter
    computes a share of it (``--reuse`` keeps what is already computed)."""
    import json
    from pathlib import Path

    parts = []
    for profile in ("smoke", "cpu"):
        path = Path(results_root) / f"pages-{profile}.json"
        if not path.exists():                   # a notebook run outside the book's runner: the committed record
            from .units import COMMITTED

            path = COMMITTED / path.name
        cost = json.loads(path.read_text()).get(notebook) if path.exists() else None
        if cost:
            parts.append(f"at `{profile}` {_minutes(cost['alone_seconds'])} ({cost['results']} results)")
    if parts:
        show(f"**Run time.** The results of this page took {' and '.join(parts)} to compute on 2 CPU cores, as each "
             "recorded when it was made (the sum of their compute times). Not included: the expert trajectories and the "
             "coverage feature network, trained once into `runs/` and shared between pages, and the time to start a "
             "kernel and load the data; a cold start costs more. An exercise below computes at most this (with "
             "`--reuse`, only what is new).")


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min" if seconds < 5400 else \
        f"{seconds / 3600:.1f} h"


def profile_note(ctx, parameters: dict | None = None, notebook: str | None = None) -> None:
    """Which profile, dataset and seed made the page's numbers, the page's parameters (given, or the
    profile's grid in ``selmatch.settings.NOTEBOOK_GRIDS``), and the commands that rerun the page."""
    lines = [f"**Profile `{ctx.profile}`, dataset `{ctx.dataset}`, seed {ctx.seed}.** "
             f"Every number on this page was computed by `selmatch` at this profile on a CPU."]
    if parameters:
        lines.append("Parameters of this page: " + ", ".join(f"`{k} = {v}`" for k, v in parameters.items()) + ".")
    if ctx.dataset == "cifar10":
        lines.append("The CIFAR-10 used here is a JPEG re-encoding of the original (mean absolute error 5.8/255, "
                     "PSNR ≈ 30 dB), restored to the original order.")
    if notebook:
        cmds = "\n".join(f"- {what}: `{cmd}`" for what, cmd in page_commands(notebook, ctx.profile, ctx.dataset))
        lines.append(
            f":::{{dropdown}} Rerun this page, and download what it is made of\n"
            f"From the repository root; anything not cached needs the data ({{doc}}`../data`).\n\n{cmds}\n\n"
            f"**Downloads:** the results behind this page's numbers, each with its configuration, code "
            f"version and provenance ({{download}}`{notebook}-{ctx.profile}.zip "
            f"<../_generated/downloads/{notebook}-{ctx.profile}.zip>`), and the executed notebook (the "
            "download button at the top of the page). Selections are recomputed from their configuration "
            "in seconds (`selmatch select`); distilled sets and expert trajectories are regenerated by the "
            "rerun commands above (they are kept in `runs/`, not committed).\n:::")
    if ctx.profile != "paper":
        lines.append("Numbers at this scale are not comparable in absolute value with the paper's ResNet-18 "
                     "results; compare trends, which the text discusses.")
    show("\n\n".join(lines))


def panels(n: int, width: float = 4.2, height: float = 3.4, cols: int = 2):
    """A figure of ``n`` panels, at most ``cols`` side by side (wider figures are shrunk to the page's column
    until their labels cannot be read), and the list of its ``n`` axes (the unused places hidden)."""
    cols = max(1, min(cols, n))
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n])


def table(rows: list[list], header: list[str]) -> None:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    show("\n".join(out))


def _compare(a: dict, b: dict) -> str:
    """The verdict on the paired difference ``a - b`` (:mod:`selmatch.companion.stats`), with its interval:
    'above (+1.2 [+0.3, +2.1])', 'below (...)' or 'not distinguishable from (...)'."""
    p = paired(a, b)
    word = {"above": "above", "below": "below", "no difference": "not distinguishable from"}[p.verdict]
    return f"{word} ({p})"


# ----------------------------------------------------------------------------- the cpu profile's pilots


# ----------------------------------------------------------------------------- distillation against selection


def distilled_figure(res: dict, title: str, amplify: float | None = None, max_classes: int = 10):
    """A distillation's images, one class per row: D_select (kept real, when there is one), D_distill before
    and after, and the change after − before around grey, amplified ``amplify`` times (default: enough to
    see a small change, up to 10×; none when the images moved far)."""
    import numpy as np

    a = res["arrays"]
    if amplify is None:
        amplify = float(np.clip(round(0.3 / max(float(np.median(a["moved"])), 1e-6)), 1, 10))
    change = (127.5 + amplify * (a["after"].astype(float) - a["before"].astype(float))).clip(0, 255).astype("uint8")
    groups = ([("D_select (real, kept)", a["select"], a["select_labels"])] if len(a["select"]) else []) + [
        ("D_distill before", a["before"], a["labels"]), ("after distillation", a["after"], a["labels"]),
        ("change" if amplify == 1 else f"change × {amplify:g}", change, a["labels"])]
    classes = sorted({int(c) for c in a["labels"]})[:max_classes]
    per = max(int((a["labels"] == c).sum()) for c in classes)
    ncols = per * len(groups)
    fig, axes = plt.subplots(len(classes), ncols, figsize=(0.85 * ncols + 1.2, 0.85 * len(classes) + 0.6),
                             squeeze=False)
    for r, c in enumerate(classes):
        for g, (label, imgs, labels) in enumerate(groups):
            mine = imgs[labels == c]
            for k in range(per):
                ax = axes[r, g * per + k]
                if k < len(mine):
                    ax.imshow(mine[k].squeeze(), cmap="gray" if mine[k].shape[-1] == 1 else None)
                ax.set_xticks([])
                ax.set_yticks([])
                for side in ax.spines.values():
                    side.set_visible(False)
                if r == 0 and k == 0:
                    ax.set_title(label, fontsize=8, loc="left")
        axes[r, 0].set_ylabel(res["classes"][c][:10], fontsize=8, rotation=0, ha="right", va="center")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- the claims page


# ----------------------------------------------------------------------------- the distillation-budget sweep


