"""The official SelMatch code, timed on this machine:

    python -m benchmarks.official DIR train --network convnet --n 500 --batch 128 --augmentation combined
    python -m benchmarks.official DIR distill --network convnet --syn-steps 10 --n 100 --batch 100

``DIR`` is a clone of https://github.com/Yongalls/SelMatch (its ``utils.py`` and ``networks.py`` must
import: ``pip install kornia scipy einops pandas requests``). Nothing of it is copied here: this module
imports it and calls its own functions on random CIFAR-10-shaped data -- ``get_network``, its dataset
classes and ``epoch`` the way its evaluation (``evaluate_synset``) and expert training (``buffer.py``) do;
for a distillation iteration its ``ReparamModule``, ``get_network`` and ``DiffAugment`` in the order its
``distill.py`` uses them (a student run on a list of flat parameter vectors, one per unrolled step, then the
normalised parameter distance back-propagated) -- and prints one JSON line like ``benchmarks.workloads``.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

NAMES = {"convnet": "ConvNet", "convnet_bn": "ConvNetBN", "resnet18_bn": "ResNet18BN"}


def _official(root: Path):
    """The official ``utils`` module (with ``networks`` and ``reparam_module`` importable beside it)."""
    sys.path.insert(0, str(root))
    try:
        import utils                                                 # the official module
    except ImportError as e:
        raise ImportError(f"the official code in {root} needs {e.name!r}: pip install kornia scipy einops pandas "
                          "requests (into this environment or a folder on PYTHONPATH)") from e
    return utils


def run_distill(root: Path, network: str, syn_steps: int, n: int, batch: int) -> dict:
    """Seconds per unrolled step of one official distillation iteration (after a 1-step warm-up), and the
    process's peak memory; the same shapes as ``benchmarks.workloads distill``."""
    import resource

    utils = _official(root)
    from reparam_module import ReparamModule                        # the official module

    torch.manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32), torch.arange(n) % 10
    net = ReparamModule(utils.get_network(NAMES[network], 3, 10, (32, 32), dist=False))
    net.train()
    param, strategy = utils.ParamDiffAug(), "color_crop_cutout_flip_scale_rotate"
    start = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    target = start + 0.01 * torch.randn(start.shape)

    def iteration(steps: int) -> float:
        t0 = time.perf_counter()
        images, lr = x.clone().requires_grad_(True), torch.tensor(0.01, requires_grad=True)
        trajectory, chunks = [start.clone().requires_grad_(True)], []
        for _ in range(steps):
            if not chunks:
                chunks = list(torch.split(torch.randperm(n), batch))
            idx = chunks.pop()
            out = net(utils.DiffAugment(images[idx], strategy, param=param), flat_param=trajectory[-1])
            grad = torch.autograd.grad(torch.nn.functional.cross_entropy(out, y[idx]), trajectory[-1],
                                       create_graph=True)[0]
            trajectory.append(trajectory[-1] - lr * grad)
        loss = (trajectory[-1] - target).square().sum() / (start - target).square().sum()
        loss.backward()
        return time.perf_counter() - t0

    iteration(1)                                                     # warm-up: allocator, kernels
    seconds = iteration(syn_steps)
    return {"network": network, "syn_steps": syn_steps, "n": n, "batch": batch, "code": "official",
            "step_s": seconds / syn_steps, "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}


def run_train(root: Path, network: str, n: int, batch: int, augmentation: str, epochs: int, expert: bool) -> dict:
    utils = _official(root)
    from torchvision import transforms

    class Args:                                                      # the fields its epoch() and DSA read
        device, dsa = "cpu", True
        dsa_strategy = "color_crop_cutout_flip_scale_rotate"
        dsa_param = utils.ParamDiffAug()

    torch.manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32), torch.arange(n) % 10
    net = utils.get_network(NAMES[network], 3, 10, (32, 32))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.0 if expert else 0.9,
                          weight_decay=0.0 if expert else 5e-4)
    if augmentation == "combined":                                   # as evaluate_synset(aug="combined")
        simple = transforms.Compose([transforms.RandomCrop((32, 32), padding=4), transforms.RandomHorizontalFlip()])
        data = utils.CombinedTensorDataset(x, y, [True] * (n // 2) + [False] * (n - n // 2), simple,
                                           Args.dsa_strategy, Args.dsa_param)
    elif augmentation == "none":
        data = utils.TensorDataset(x, y)
    else:
        raise ValueError(f"augmentation={augmentation!r}: expected 'combined' or 'none'")
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=0)
    loss = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    utils.epoch("train", loader, net, opt, loss, Args, aug=augmentation)              # warm-up epoch
    warmup = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(epochs):
        utils.epoch("train", loader, net, opt, loss, Args, aug=augmentation)
    seconds = time.perf_counter() - t0
    return {"network": network, "n": n, "batch": batch, "augmentation": augmentation, "epochs": epochs,
            "code": "official", "seconds": seconds, "warmup_s": warmup, "img_s": n * epochs / seconds}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", type=Path, help="a clone of github.com/Yongalls/SelMatch")
    sub = p.add_subparsers(dest="kind", required=True)
    t = sub.add_parser("train")
    t.add_argument("--network", default="convnet", choices=sorted(NAMES))
    t.add_argument("--n", type=int, default=500)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--augmentation", default="combined", choices=["combined", "none"])
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--expert", action="store_true", help="the expert recipe: no momentum, no weight decay")
    d = sub.add_parser("distill")
    d.add_argument("--network", default="convnet", choices=sorted(NAMES))
    d.add_argument("--syn-steps", type=int, default=10)
    d.add_argument("--n", type=int, default=100)
    d.add_argument("--batch", type=int, default=100)
    a = p.parse_args(argv)
    if not (a.root / "utils.py").exists():
        p.error(f"root={a.root}: no utils.py there (expected a clone of github.com/Yongalls/SelMatch)")
    if a.kind == "distill":
        out = run_distill(a.root, a.network, a.syn_steps, a.n, a.batch)
    else:
        out = run_train(a.root, a.network, a.n, a.batch, a.augmentation, a.epochs, a.expert)
    out["threads"] = torch.get_num_threads()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
