"""The large-IPC pilot: why MTT ends below its own start at IPC 500 and 1000 on two cores, and what helps.

MTT starts from exactly a random class-balanced subset (α = 1, random initialisation). At the ``cpu`` profile it
ends *below* that start at IPC 500 and falls at every checkpoint. Each arm here changes one lever of the
distillation (or of the experts it matches) and records accuracy at iterations 0, ⅓, ⅔ and the end (one run
each) and at the end with the profile's runs, paired by seed with the start (the same set at iteration 0,
evaluated the same way: per-image DSA, as every MTT row of the book).

The levers, in the order the pilot tries them (most likely first):

* ``late``: match a later segment of the same experts (start epoch in [4, 8) instead of [0, 6)), as DATM
  (Guo et al., ICLR 2024) found later segments help at large IPC;
* ``long_late``: experts trained three times longer (30 epochs), matched late (start epoch in [20, 28));
* ``lr_img``: the image step ten times smaller, and the paper's 10,000 at 20–30 %;
* ``batch``: four times more of the synthetic set per iteration (batch 512 instead of 128);
* ``expert_dsa``: experts trained with DSA, as MTT's own buffers are.

Every arm is a :func:`~selmatch.companion.units.selmatch_run`, so its result is cached under a key that
holds every setting it changed.
"""
from __future__ import annotations

from .units import Context, selmatch_run

# name -> (what it changes in the experts, what it changes in the distillation, one line for the table)
ARMS: dict[str, tuple[dict, dict, str]] = {
    "start": ({}, {"iterations": 0}, "iteration 0: the random subset itself"),
    "profile": ({}, {}, "the cpu profile: 5 experts x 10 epochs, start epoch in [0, 6), lr_img 1000, batch 128"),
    "late": ({}, {"min_start_epoch": 4, "max_start_epoch": 8}, "later segments: start epoch in [4, 8)"),
    "long_late": ({"epochs": 30}, {"min_start_epoch": 20, "max_start_epoch": 28},
                  "experts of 30 epochs, start epoch in [20, 28)"),
    "lr_small": ({}, {"lr_img": 100}, "lr_img 100 (a tenth)"),
    "lr_paper": ({}, {"lr_img": 10000}, "lr_img 10,000 (the paper's at 20-30 %)"),
    "batch": ({}, {"batch_syn": 512}, "batch_syn 512: 4x the images per iteration"),
    "expert_dsa": ({"augmentation": "dsa"}, {}, "experts trained with DSA"),
}


def eval_points(ctx: Context, arm: str) -> tuple[int, ...]:
    """Iterations 0, ⅓, ⅔ and the end of the profile's distillation (none for the start itself)."""
    n = ctx.setting().distill.iterations
    return () if arm == "start" else (0, n // 3, 2 * n // 3, n)


def run_arm(ctx: Context, ipc: int, arm: str) -> dict:
    """One arm of the pilot at ``ipc`` (cached)."""
    expert, distill, _ = ARMS[arm]
    # the profile's own run is the coverage page's (which also measures coverage; its accuracies are the same)
    return selmatch_run(ctx, ipc, 1.0, 0.0, init="random", eval_at=eval_points(ctx, arm), with_coverage=arm == "profile",
                        expert=expert or None, distill=distill or None)["result"]


def main(argv: list[str] | None = None) -> None:
    """``python -m selmatch.companion.large_ipc --profile cpu --ipc 500 --arms start late ...``: compute arms in order."""
    import argparse

    from .units import env_context

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--profile", default="cpu")
    ap.add_argument("--ipc", type=int, nargs="+", default=[500])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    ctx = env_context(profile=args.profile, device=args.device)
    for ipc in args.ipc:
        for arm in args.arms:
            res = run_arm(ctx, ipc, arm)
            evals = {k: v["accuracy"]["mean"] for k, v in res.get("evals", {}).items()}
            print(f"ipc {ipc} {arm}: final {res['final']['mean']:.2f} ± {res['final']['std']:.2f} evals {evals}",
                  flush=True)


if __name__ == "__main__":
    main()
