"""Page 01, the difficulty scores: our forgetting scores beside the published ones (figures).
"""
from __future__ import annotations

import matplotlib.pyplot as plt

from ..report import panels


# What each score's histogram plots: the book's hardness is higher = harder, so the C-score is shown as 1 − C-score.
SCORE_TITLES = {"published cscore": "published C-score, as 1 − C-score",
                "published forgetting": "published forgetting events", "ours (forgetting)": "our forgetting events"}


def score_histograms(res: dict):
    names = res["names"]
    fig, axes = panels(len(names), 4.2, 2.8)
    for ax, name in zip(axes, names):
        edges, counts = res["edges"][name], res["hist"][name]
        ax.stairs(counts, edges, fill=True, alpha=0.7)
        ax.set(title=SCORE_TITLES.get(name, name), xlabel="hardness (higher = harder)", ylabel="images")
    fig.tight_layout()
    return fig


def image_grid(easy, hard, classes: list[str], per_class: int, title: str):
    """Two rows of thumbnails per class: easiest (top) and hardest (bottom)."""
    n = len(classes)
    fig, axes = plt.subplots(2, n, figsize=(0.9 * n, 1.8 * per_class * 0.9 + 0.8))
    for c in range(n):
        for row, imgs in enumerate((easy, hard)):
            block = imgs[c * per_class:(c + 1) * per_class]
            strip = block.reshape(-1, *block.shape[2:]) if block.ndim == 4 else block
            axes[row, c].imshow(strip.squeeze(), cmap="gray" if strip.shape[-1] == 1 else None)
            axes[row, c].set_xticks([])
            axes[row, c].set_yticks([])
        axes[0, c].set_title(classes[c][:10], fontsize=7)
    axes[0, 0].set_ylabel("easiest", fontsize=8)
    axes[1, 0].set_ylabel("hardest", fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
