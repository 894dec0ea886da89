"""Figures of the method itself (no results): drawn by code so that they follow the notation of the book.

``python -m selmatch.companion.figures DIR`` writes them as SVG; ``make book`` does so into
``book/_generated/`` before building.
"""
from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, Rectangle  # noqa: E402

HARD, EASY = "#c0392b", "#27ae60"
SELECT, DISTILL = "#34495e", "#e67e22"


def _arrow(ax, a, b, **kw):
    ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, lw=1.2, **kw))


def method_figure(beta: float = 0.3, ipc_frac: float = 0.3, alpha: float = 0.4):
    """The three steps of SelMatch: the window and its split (β, α), trajectory matching with a partial
    update, and evaluation with combined augmentation."""
    fig = plt.figure(figsize=(8, 5.8))
    grid = fig.add_gridspec(2, 2, height_ratios=[1, 1.1], width_ratios=[1.2, 0.8])
    axes = [fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])]
    for ax in axes:
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.axis("off")

    # 1. one class, sorted hardest first; the window; its split
    ax = axes[0]
    ax.set_title("1. Select: a window per class", fontsize=11, loc="left")
    n = 60
    cmap = matplotlib.colors.LinearSegmentedColormap.from_list("hard_easy", [HARD, "#f1c40f", EASY])
    for i in range(n):
        ax.add_patch(Rectangle((0.02 + 0.96 * i / n, 0.55), 0.96 / n, 0.14, color=cmap(i / (n - 1)), lw=0))
    ax.text(0.02, 0.73, "hardest", fontsize=9.5, color=HARD)
    ax.text(0.98, 0.73, "easiest", fontsize=9.5, color=EASY, ha="right")
    ax.text(0.5, 0.86, "one class, sorted by difficulty score", fontsize=10, ha="center")
    x0, w = 0.02 + 0.96 * beta, 0.96 * ipc_frac
    ws = w * (1 - alpha)
    ax.add_patch(Rectangle((x0, 0.52), w, 0.2, fill=False, lw=2))
    ax.annotate("", (0.02, 0.47), (x0, 0.47), arrowprops=dict(arrowstyle="<->", lw=1))
    ax.text((0.02 + x0) / 2, 0.40, "skip β of\nthe class", fontsize=9.5, ha="center", va="top")
    ax.annotate("", (x0, 0.47), (x0 + w, 0.47), arrowprops=dict(arrowstyle="<->", lw=1))
    ax.text(x0 + w / 2, 0.40, "ipc images", fontsize=9.5, ha="center", va="top")
    ax.add_patch(Rectangle((x0, 0.06), ws, 0.14, color=SELECT))
    ax.add_patch(Rectangle((x0 + ws, 0.06), w - ws, 0.14, color=DISTILL))
    ax.text(x0 + ws / 2, 0.13, "D_select", color="white", fontsize=9.5, ha="center", va="center")
    ax.text(x0 + ws + (w - ws) / 2, 0.13, "D_distill", color="white", fontsize=9.5, ha="center", va="center")
    ax.text(x0 + w + 0.02, 0.13, "harder 1−α: kept real\neasier α: distilled", fontsize=9, va="center")
    _arrow(ax, (x0 + w / 2, 0.30), (x0 + w / 2, 0.21), color="black")

    # 2. trajectory matching, partial update
    ax = axes[1]
    ax.set_title("2. Distill: match an expert's trajectory", fontsize=11, loc="left")
    ex = [(0.05, 0.2), (0.25, 0.38), (0.45, 0.5), (0.65, 0.58), (0.85, 0.62)]
    ax.plot(*zip(*ex), "-o", color="black", ms=4)
    ax.text(0.05, 0.12, "expert (trained on all images)", fontsize=9)
    ax.text(ex[1][0] - 0.03, ex[1][1] + 0.05, r"$\theta^*_t$", fontsize=10, ha="right")
    ax.text(ex[3][0] + 0.02, ex[3][1] - 0.1, r"$\theta^*_{t+M}$", fontsize=10)
    st = [ex[1], (0.32, 0.55), (0.42, 0.66), (0.52, 0.74), (0.6, 0.78)]
    ax.plot(*zip(*st), "-o", color=DISTILL, ms=3)
    ax.text(0.17, 0.62, "student: N steps on\nD_select ∪ D_distill", fontsize=9, color=DISTILL, ha="center")
    ax.annotate("", st[-1], ex[3], arrowprops=dict(arrowstyle="<->", ls="--", lw=1, color="grey"))
    ax.text(0.66, 0.72, "loss", fontsize=9.5, color="grey")
    ax.text(0.5, 0.9, "gradients update D_distill and the step size η only", fontsize=9, ha="center",
            color=DISTILL)

    # 3. evaluation
    ax = axes[2]
    ax.set_title("3. Evaluate: train a fresh network", fontsize=11, loc="left")
    ax.add_patch(Rectangle((0.05, 0.58), 0.35, 0.16, color=SELECT))
    ax.add_patch(Rectangle((0.05, 0.36), 0.35, 0.16, color=DISTILL))
    ax.text(0.225, 0.66, "D_select", color="white", fontsize=9.5, ha="center", va="center")
    ax.text(0.225, 0.44, "D_distill", color="white", fontsize=9.5, ha="center", va="center")
    ax.text(0.45, 0.66, "crop + flip", fontsize=9.5, va="center")
    ax.text(0.45, 0.44, "DSA", fontsize=9.5, va="center")
    ax.text(0.05, 0.24, "'combined' augmentation", fontsize=9)
    _arrow(ax, (0.72, 0.55), (0.86, 0.55), color="black")
    ax.text(0.93, 0.55, "test\naccuracy", fontsize=9.5, ha="center", va="center")
    fig.tight_layout()
    return fig


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "method.svg"
    fig = method_figure()
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return [path]


if __name__ == "__main__":
    for p in write(Path(sys.argv[1] if len(sys.argv) > 1 else "book/_generated")):
        print(p)
