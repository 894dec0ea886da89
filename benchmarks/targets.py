"""The official code's figures on this kind of machine (2 cores, torch on CPU, 2 threads, CIFAR-10 shapes)
and the targets derived from them."""
from __future__ import annotations

from .endtoend import TARGET_MEMORY, TARGET_SPEEDUP

OFFICIAL = {
    "distill_ratio": {"convnet": {5: 3.6, 10: 3.7, 20: 4.2}, "convnet_bn": {5: 4.8, 10: 5.1, 20: 5.5}},
    "distill_peak_gb": {"convnet": {5: 2.8, 10: 4.6, 20: 8.1}},
    "eval_img_s": {"convnet": 408.0, "resnet18_bn": 66.0},
    "eval_plain_img_s": {"convnet": 424.0, "resnet18_bn": 69.0},
    "expert_img_s": {"convnet_bn": 364.0},
}

# (key, description, comparison, bound): a figure passes when ``figure <comparison> bound``
TARGETS = [
    # What the user runs: the official distill.py end to end against selmatch distill, alternating processes
    # (benchmarks.endtoend), on every default-mode case: at least twice as fast, in at most 0.6x its memory.
    *[(f"endtoend/speedup/{net}/{steps}", f"end to end, {name}, {steps} steps: official s/iter / ours", ">=", TARGET_SPEEDUP)
      for net, name in (("convnet", "ConvNet"), ("convnet_bn", "ConvNetBN")) for steps in (5, 10, 20)],
    *[(f"endtoend/memory/{net}/{steps}", f"end to end, {name}, {steps} steps: our peak / official peak", "<=", TARGET_MEMORY)
      for net, name in (("convnet", "ConvNet"), ("convnet_bn", "ConvNetBN")) for steps in (5, 10, 20)],
    ("ratio/convnet/10", "isolated iteration: step ratio, ConvNet, syn_steps 10", "<=", 3.0),
    ("ratio/convnet/20", "isolated iteration: step ratio, ConvNet, syn_steps 20", "<=", 3.0),
    ("ratio/convnet_bn/10", "isolated iteration: step ratio, ConvNetBN, syn_steps 10", "<=", 3.5),
    ("ratio/convnet_bn/20", "isolated iteration: step ratio, ConvNetBN, syn_steps 20", "<=", 3.5),
    ("peak_gb/default/20", "peak memory, default mode, ConvNet, syn_steps 20 (GB)", "<=",
     OFFICIAL["distill_peak_gb"]["convnet"][20] / 2),
    ("peak_gb/recompute/20", "peak memory, --memory recompute, ConvNet, syn_steps 20 (GB)", "<=",
     OFFICIAL["distill_peak_gb"]["convnet"][20] / 2),
    ("constant/peak_40_over_5", "constant mode: peak at syn_steps 40 / peak at 5", "<=", 1.25),
    ("constant/time_over_default", "constant mode: time per step / default mode's (syn_steps 20)", "<=", 1.5),
    ("eval_img_s/convnet", "evaluation training, ConvNet, 500 images, batch 128, combined aug (img/s)", ">=",
     1.3 * OFFICIAL["eval_img_s"]["convnet"]),
    ("eval_img_s/resnet18_bn", "evaluation training, ResNet-18-BN, same (img/s)", ">=",
     1.3 * OFFICIAL["eval_img_s"]["resnet18_bn"]),
    ("expert_img_s/convnet_bn", "expert training, ConvNetBN, batch 256 (img/s)", ">=",
     1.3 * OFFICIAL["expert_img_s"]["convnet_bn"]),
    # The same 1.3x against the official code timed on this machine in the same run (--official DIR): here
    # it trains at about half the figures above. Judged for the compiled loop; eager is printed beside it.
    ("vs_official/compiled/eval_img_s/convnet", "evaluation ConvNet: ours / official code, same run", ">=", 1.3),
    ("vs_official/compiled/eval_img_s/resnet18_bn", "evaluation ResNet-18-BN: ours / official code, same run", ">=",
     1.3),
    ("vs_official/compiled/expert_img_s/convnet_bn", "expert training ConvNetBN: ours / official code, same run",
     ">=", 1.3),
    # (The isolated iteration against benchmarks.official's loop around the official functions is printed as a
    # diagnostic, not judged: a user runs the whole script, judged end to end above.)
    ("book_cached_s", "make book with every result cached (s)", "<=", 600.0),
]


def met(value: float | None, comparison: str, bound: float) -> bool | None:
    if value is None:
        return None
    return value <= bound if comparison == "<=" else value >= bound
