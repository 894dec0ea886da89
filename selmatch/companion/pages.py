"""What each analysis page computes, as one function per page: the page's notebook calls it with its
parameters, and the claims page calls it again (reading the same cached results) to test the paper's
claims. Nothing is computed twice: every value comes from a cached unit of :mod:`.units`.
"""
from __future__ import annotations

from .report import best_by_val
from .units import (Context, best_beta, prefetch, random_coverage, random_eval, selmatch_run,
                    window_coverage, window_eval)


def _windows(ctx: Context, ipcs: list[int], betas: list[float], score: str = "cscore") -> list[tuple]:
    """The unit calls behind random selection and every window of ``betas`` (β as a class fraction)."""
    return [(random_eval, (ctx, ipc)) for ipc in ipcs] + \
        [(window_eval, (ctx, ipc, beta, score, "fraction")) for ipc in ipcs for beta in betas]


def sliding_window(ctx: Context, ipcs: list[int], betas: list[float], code_betas: list[float] | None,
                   score: str = "cscore", log=print) -> tuple[list[dict], dict]:
    """Notebook 02: every window (both readings of β) and the random subset, per IPC."""
    prefetch(_windows(ctx, ipcs, betas, score) + [(window_eval, (ctx, ipc, beta, score, "ipc"))
                                                  for ipc in ipcs for beta in code_betas or []], "windows", ctx)
    rows, rand = [], {}
    for ipc in ipcs:
        rand[ipc] = random_eval(ctx, ipc)["result"]
        for mode in ("fraction", "ipc"):
            for beta in (betas if mode == "fraction" or code_betas is None else code_betas):
                try:
                    r = window_eval(ctx, ipc, beta, score, mode)["result"]
                except ValueError as err:          # the window would run past the end of the class
                    log(f"skip ipc={ipc} beta={beta} ({mode}): {str(err)[:60]}...")
                    continue
                rows.append({"ipc": ipc, "start_mode": mode, "beta": beta, **r})
    return rows, rand


def coverage(ctx: Context, ipcs: list[int], alpha: float, betas: list[float], eval_at: list[int]) -> tuple[list[dict], dict]:
    """Notebook 03: coverage of random, window, MTT and SelMatch sets per IPC, and the coverage of MTT and
    SelMatch along the distillation at the largest IPC."""
    prefetch(_windows(ctx, ipcs, betas), "windows", ctx)
    prefetch([(selmatch_run, (ctx, ipc, 1.0, 0.0), {"init": "random", "eval_at": tuple(eval_at) if ipc == ipcs[-1] else (),
                                                      "with_coverage": True}) for ipc in ipcs] +
             [(selmatch_run, (ctx, ipc, alpha, best_beta(ctx, ipc, betas)["beta"]),
               {"eval_at": tuple(eval_at) if ipc == ipcs[-1] else (), "with_coverage": True}) for ipc in ipcs],
             "distillations", ctx, ipcs)
    rows = []
    for ipc in ipcs:
        beta = best_beta(ctx, ipc, betas)["beta"]
        at = tuple(eval_at) if ipc == ipcs[-1] else ()   # the largest budget also records its trajectory
        mtt = selmatch_run(ctx, ipc, 1.0, 0.0, init="random", eval_at=at, with_coverage=True)["result"]
        sm = selmatch_run(ctx, ipc, alpha, beta, eval_at=at, with_coverage=True)["result"]
        rows.append({"ipc": ipc, "beta": beta, "random": random_coverage(ctx, ipc)["result"],
                     "window": window_coverage(ctx, ipc, beta)["result"], "MTT": mtt["coverage"],
                     "SelMatch": sm["coverage"], "acc": {"MTT": mtt["final"], "SelMatch": sm["final"]}})
    ipc = ipcs[-1]
    beta = best_beta(ctx, ipc, betas)["beta"]
    trace = {name: selmatch_run(ctx, ipc, a, b, init=init, eval_at=tuple(eval_at), with_coverage=True)["result"]
             for name, a, b, init in (("MTT", 1.0, 0.0, "random"), ("SelMatch", alpha, beta, "window"))}
    return rows, trace


def ablations(ctx: Context, ipcs: list[int], alphas: list[float], betas: list[float], alpha_fixed: float,
              distill_budgets: list[list[int]] | None = None) -> dict:
    """Notebook 04: α per IPC; augmentation and initialisation at the largest IPC and ``alpha_fixed``; and,
    at the smallest IPC, MTT and SelMatch (``alpha_fixed``) at each ``[iterations, syn_steps]`` budget."""
    prefetch(_windows(ctx, ipcs, betas), "windows", ctx)
    beta = {ipc: best_beta(ctx, ipc, betas)["beta"] for ipc in ipcs}
    prefetch([(selmatch_run, (ctx, ipc, a, beta[ipc])) for ipc in ipcs for a in alphas] +
             [(selmatch_run, (ctx, ipcs[-1], alpha_fixed, beta[ipcs[-1]]), {"augmentation": a}) for a in ("dsa", "simple")] +
             [(selmatch_run, (ctx, ipcs[-1], alpha_fixed, beta[ipcs[-1]]), {"init": "random"})] +
             [(selmatch_run, (ctx, ipcs[0], a, b), {"init": how, "distill": {"iterations": it, "syn_steps": st}})
              for it, st in distill_budgets or [] for a, b, how in ((1.0, 0.0, "random"), (alpha_fixed, beta[ipcs[0]], "window"))],
             "distillations", ctx, ipcs)
    alpha_rows = [{"ipc": ipc, "alpha": a, **selmatch_run(ctx, ipc, a, beta[ipc])["result"]["final"]}
                  for ipc in ipcs for a in alphas]
    ipc = ipcs[-1]
    aug = {a: selmatch_run(ctx, ipc, alpha_fixed, beta[ipc], augmentation=a)["result"]["final"]
           for a in ("combined", "dsa", "simple")}
    init = {i: selmatch_run(ctx, ipc, alpha_fixed, beta[ipc], init=i)["result"]["final"] for i in ("window", "random")}
    budget_rows = []
    for iterations, syn_steps in distill_budgets or []:
        change = {"iterations": iterations, "syn_steps": syn_steps}
        for method, a, b, how in (("MTT", 1.0, 0.0, "random"), ("SelMatch", alpha_fixed, beta[ipcs[0]], "window")):
            res = selmatch_run(ctx, ipcs[0], a, b, init=how, distill=change)["result"]
            budget_rows.append({"method": method, "ipc": ipcs[0], **change, "syn_lr": res["syn_lr"],
                                "moved_median": res.get("moved_median"), **res["final"]})
    return {"beta": beta, "alpha_rows": alpha_rows, "ipc": ipc, "aug": aug, "init": init, "budget_rows": budget_rows}


def main_results(ctx: Context, ipcs: list[int], betas: list[float], alphas: list[float] | float,
                 score: str = "cscore") -> dict:
    """Notebooks 05 and 06: random, the best window, MTT and SelMatch (best α on validation) per IPC."""
    alphas = alphas if isinstance(alphas, list) else [alphas]
    prefetch(_windows(ctx, ipcs, betas, score) + [(selmatch_run, (ctx, ipc, 1.0, 0.0), {"init": "random"}) for ipc in ipcs],
             "windows and MTT", ctx, ipcs)
    prefetch([(selmatch_run, (ctx, ipc, a, best_beta(ctx, ipc, betas, score=score)["beta"]), {"score": score})
              for ipc in ipcs for a in alphas], "SelMatch", ctx, ipcs)
    results = {}
    for ipc in ipcs:
        window = best_beta(ctx, ipc, betas, score=score)
        sm = [{"alpha": a, "alpha_fixed": len(alphas) == 1,
               **_distilled(selmatch_run(ctx, ipc, a, window["beta"], score=score)["result"])} for a in alphas]
        results[ipc] = {"Random": random_eval(ctx, ipc)["result"], "Sliding window": window,
                        "MTT": _distilled(selmatch_run(ctx, ipc, 1.0, 0.0, init="random")["result"]),
                        "SelMatch": best_by_val(sm)}
    return results


def _distilled(result: dict) -> dict:
    """A distillation's final evaluation, with how the distillation went: its matching loss at the start and
    over the last five iterations, the learned step size and how far the images moved (median relative
    change; results made before that was recorded have ``None``)."""
    loss = result.get("loss") or [None]
    tail = [v for v in loss[-5:] if v is not None]
    return {**result["final"], "loss_first": loss[0], "loss_last5": sum(tail) / len(tail) if tail else None,
            "syn_lr": result.get("syn_lr"), "moved_median": result.get("moved_median")}


def crossover(ctx: Context, ipcs: list[int], betas: list[float], eval_at: list[int]) -> list[dict]:
    """Notebook 09: MTT from random real images (DSA evaluation, as MTT's), that initialisation, and the
    best window, per IPC."""
    prefetch(_windows(ctx, ipcs, betas) + [(selmatch_run, (ctx, ipc, 1.0, 0.0), {"init": "random", "augmentation": "dsa",
                                                                                 "eval_at": tuple(eval_at)}) for ipc in ipcs],
             "windows and MTT", ctx, ipcs)
    return [{"ipc": ipc, "Random": random_eval(ctx, ipc)["result"],
             "MTT": selmatch_run(ctx, ipc, 1.0, 0.0, init="random", augmentation="dsa", eval_at=tuple(eval_at))["result"],
             "Sliding window": best_beta(ctx, ipc, betas)} for ipc in ipcs]


CLAIM_PAGES = ("02_sliding_window", "03_coverage", "04_ablations", "05_main_results", "09_crossover")


def page_data(profile: str, dataset: str = "cifar10", seed: int = 0, device: str = "cpu") -> dict:
    """Every page's data with the page's own grid (:func:`selmatch.settings.page_grid`) and context (the
    crossover is computed at the profile's redesign, as its page is)."""
    from ..settings import next_design, page_grid
    from .units import env_context

    ctx = env_context(profile=profile, dataset=dataset, seed=seed, device=device)
    design = env_context(profile=profile, dataset=dataset, seed=seed, device=device, design=next_design(profile))
    grid = {name: page_grid(name, profile) for name in CLAIM_PAGES}
    g = grid["02_sliding_window"]
    return {"02_sliding_window": sliding_window(ctx, g["ipcs"], g["betas"], g["code_betas"], log=lambda m: None),
            "03_coverage": coverage(ctx, **grid["03_coverage"]),
            "04_ablations": ablations(ctx, **grid["04_ablations"]),
            "05_main_results": main_results(ctx, **grid["05_main_results"]),
            "09_crossover": crossover(design, **grid["09_crossover"])}
