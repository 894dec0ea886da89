"""The paper's reported numbers (the book: *The paper*; ResNet-18-BN test accuracy in %, mean ± std over 5 runs),
as data for the book's comparison tables. None = not reported."""
from __future__ import annotations

RATIOS = {"cifar10": {250: "5%", 500: "10%", 1000: "20%", 1500: "30%"},
          "cifar100": {25: "5%", 50: "10%", 100: "20%", 150: "30%"},
          "tinyimagenet": {50: "10%", 100: "20%"}}

_C10 = (250, 500, 1000, 1500)
_C100 = (25, 50, 100, 150)
_TINY = (50, 100)


def _row(values):
    return [None if v is None else tuple(v) for v in values]


TABLE1 = {  # method -> dataset -> {ipc: (mean, std)}
    "Random": {"cifar10": dict(zip(_C10, _row([(73.4, 1.5), (79.3, 0.3), (85.6, 0.4), (88.3, 0.2)]))),
               "cifar100": dict(zip(_C100, _row([(35.8, 0.6), (40.7, 1.0), (53.2, 0.9), (60.3, 1.3)]))),
               "tinyimagenet": dict(zip(_TINY, _row([(30.1, 0.6), (40.1, 0.4)])))},
    "Forgetting (hardest)": {"cifar10": dict(zip(_C10, _row([(30.7, 0.3), (41.5, 0.7), (68.4, 1.6), (83.5, 1.8)]))),
                             "cifar100": dict(zip(_C100, _row([(9.5, 0.3), (13.2, 0.6), (27.0, 1.1), (42.3, 1.0)]))),
                             "tinyimagenet": dict(zip(_TINY, _row([(5.7, 0.1), (12.4, 0.2)])))},
    "Sliding window": {"cifar10": dict(zip(_C10, _row([(79.3, 0.7), (85.2, 0.1), (89.9, 0.5), (90.6, 0.3)]))),
                       "cifar100": dict(zip(_C100, _row([(43.2, 1.8), (50.0, 0.8), (59.2, 0.8), (64.7, 0.5)]))),
                       "tinyimagenet": dict(zip(_TINY, _row([(42.5, 0.3), (49.2, 0.3)])))},
    "MTT": {"cifar10": dict(zip(_C10, _row([(80.7, 0.4), (82.2, 0.4), (86.1, 0.3), (88.6, 0.2)]))),
            "cifar100": dict(zip(_C100, _row([(49.9, 0.7), (51.3, 0.4), (58.7, 0.6), (63.1, 0.3)]))),
            "tinyimagenet": dict(zip(_TINY, _row([(40.3, 0.3), (44.2, 0.5)])))},
    "SelMatch": {"cifar10": dict(zip(_C10, _row([(82.8, 0.2), (85.9, 0.2), (90.4, 0.2), (91.3, 0.2)]))),
                 "cifar100": dict(zip(_C100, _row([(50.9, 0.3), (54.5, 0.6), (62.4, 0.5), (67.4, 0.2)]))),
                 "tinyimagenet": dict(zip(_TINY, _row([(44.7, 0.2), (50.4, 0.2)])))},
}


def paper_value(method: str, dataset: str, ratio: str) -> tuple[float, float] | None:
    """The paper's (mean, std) for ``method`` at subset ``ratio`` (e.g. "10%") of ``dataset``."""
    by_ipc = TABLE1.get(method, {}).get(dataset, {})
    for ipc, r in RATIOS.get(dataset, {}).items():
        if r == ratio:
            return by_ipc.get(ipc)
    return None


def fmt(mean: float | None, std: float | None = None) -> str:
    if mean is None:
        return "–"
    return f"{mean:.1f} ± {std:.1f}" if std is not None else f"{mean:.1f}"


# Small budgets, where distillation is at its best: MTT's own paper (Cazenavette et al., CVPR 2022, Table 1:
# ConvNet, CIFAR-10 with ZCA whitening, mean ± std over runs), MTT and random real images at IPC 1, 10, 50.
# The SelMatch paper starts from this contrast; the crossover page shows it beside ours.
MTT_TABLE1 = {"MTT": {"cifar10": {1: (46.3, 0.8), 10: (65.3, 0.7), 50: (71.6, 0.2)}},
              "Random": {"cifar10": {1: (14.4, 2.0), 10: (26.0, 1.2), 50: (43.4, 1.0)}}}


def small_ipc_value(method: str, dataset: str, ipc: int) -> tuple[float, float] | None:
    """MTT's paper's (mean, std) for ``method`` ("MTT" or "Random") at ``ipc``, where it reports one."""
    return MTT_TABLE1.get(method, {}).get(dataset, {}).get(ipc)
