"""The benchmark harness measures what it says (tiny shapes here; the figures themselves come from `make bench`)."""
from __future__ import annotations

import json

import pytest

from benchmarks.__main__ import main as bench_main
from benchmarks.targets import TARGETS, met
from benchmarks.workloads import run_distill, run_train


def test_target_comparisons():
    assert met(2.9, "<=", 3.0) and not met(3.1, "<=", 3.0)
    assert met(531, ">=", 530.4) and not met(500, ">=", 530.4)
    assert met(None, "<=", 1.0) is None
    assert len({k for k, *_ in TARGETS}) == len(TARGETS) == 27
    assert sum(k.startswith("endtoend/speedup/") for k, *_ in TARGETS) == 6        # every default-mode case


@pytest.mark.parametrize("memory", ["default", "recompute", "constant"])
def test_distill_workload_reports_ratio_and_memory(memory):
    r = run_distill("convnet", 2, memory, width=4, n=20, batch=10, plain_reps=1)
    assert r["step_s"] > 0 and r["plain_s"] > 0 and r["peak_gb"] > 0.05
    assert r["ratio"] == pytest.approx(r["step_s"] / r["plain_s"])


def test_train_workload_throughput():
    r = run_train("convnet", n=40, batch=16, augmentation="combined", epochs=1, width=4)
    assert r["img_s"] == pytest.approx(40 / r["seconds"])


def test_bench_reports_unmeasured_targets_and_writes_json(tmp_path, capsys):
    assert bench_main(["--only", "book", "--json", str(tmp_path / "r.json")]) == 0
    out = capsys.readouterr().out
    assert out.strip().splitlines()[-1].startswith("targets met: ") and out.strip().endswith(f"/{len(TARGETS)}")
    rec = json.loads((tmp_path / "r.json").read_text())
    assert [t["key"] for t in rec["targets"]] == [k for k, *_ in TARGETS]
    with pytest.raises(SystemExit):
        bench_main(["--reps", "0"])


def test_profile_of_the_unroll_lists_operators(capsys):
    from benchmarks.profile_unroll import main as profile_main

    assert profile_main(["--syn-steps", "1", "--width", "4", "--rows", "3"]) == 0
    out = capsys.readouterr().out
    assert "distillation iteration, 1 unrolled steps" in out and "plain training steps" in out and "aten::" in out
    with pytest.raises(SystemExit):
        profile_main(["--syn-steps", "0"])


FAKE_OFFICIAL = '''
import torch
class ParamDiffAug: pass
class TensorDataset(torch.utils.data.Dataset):
    def __init__(self, x, y): self.x, self.y = x, y
    def __getitem__(self, i): return self.x[i], self.y[i]
    def __len__(self): return len(self.x)
class CombinedTensorDataset(TensorDataset):
    def __init__(self, x, y, is_cds, simple, strategy, param): super().__init__(x, y)
CALLS = []
def get_network(name, channel, num_classes, im_size):
    CALLS.append(name)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(channel * im_size[0] * im_size[1], num_classes))
def epoch(mode, loader, net, opt, crit, args, aug):
    for x, y in loader:
        loss = crit(net(x), y); opt.zero_grad(); loss.backward(); opt.step()
    return 0.0, 0.0
def get_network(name, channel, num_classes, im_size, dist=True):
    CALLS.append(name)
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(channel * im_size[0] * im_size[1], num_classes))
def DiffAugment(x, strategy='', seed=-1, param=None):
    CALLS.append("DiffAugment")
    return x
'''

FAKE_REPARAM = '''
import torch
from torch.func import functional_call
class ReparamModule(torch.nn.Module):
    def __init__(self, module):
        super().__init__()
        self.module = module
    def forward(self, x, flat_param=None):
        names = [n for n, _ in self.module.named_parameters()]
        sizes = [p.numel() for p in self.module.parameters()]
        views = [t.view(p.shape) for t, p in zip(torch.split(flat_param, sizes), self.module.parameters())]
        return functional_call(self.module, dict(zip(names, views)), (x,))
'''


def test_official_code_is_timed_through_its_own_functions(tmp_path):
    """benchmarks.official imports a SelMatch clone and drives its get_network/epoch (a stand-in here)."""
    from benchmarks.official import main as official_main, run_train as official_train

    (tmp_path / "utils.py").write_text(FAKE_OFFICIAL)
    r = official_train(tmp_path, "convnet_bn", n=40, batch=16, augmentation="combined", epochs=2, expert=True)
    import utils
    assert utils.CALLS == ["ConvNetBN"] and r["img_s"] == pytest.approx(80 / r["seconds"])
    with pytest.raises(SystemExit):
        official_main([str(tmp_path / "missing"), "train"])


def test_official_distillation_iteration_is_timed_through_its_modules(tmp_path):
    """benchmarks.official runs an unrolled iteration through the clone's ReparamModule, get_network and
    DiffAugment (stand-ins here), one augmentation per step."""
    import sys

    from benchmarks.official import run_distill

    (tmp_path / "utils.py").write_text(FAKE_OFFICIAL)
    (tmp_path / "reparam_module.py").write_text(FAKE_REPARAM)
    sys.modules.pop("utils", None)
    sys.modules.pop("reparam_module", None)
    r = run_distill(tmp_path, "convnet", syn_steps=3, n=20, batch=10)
    import utils
    assert utils.CALLS == ["ConvNet"] + ["DiffAugment"] * 4        # the warm-up step, then 3 unrolled steps
    assert r["step_s"] > 0 and r["peak_gb"] > 0 and r["code"] == "official"
    with pytest.raises(SystemExit):
        bench_main(["--only", "book", "--official", str(tmp_path / "missing")])


def test_plain_step_is_measured_without_recomputation(monkeypatch):
    import torch

    from benchmarks.workloads import _net, plain_step
    from selmatch import networks

    calls = []
    real = networks.recomputed
    monkeypatch.setattr(networks, "recomputed", lambda *a: calls.append(1) or real(*a))
    model, x, y = _net("convnet", 4, 8, recompute=1)
    model(x)
    assert calls                                                     # the recompute model does recompute...
    calls.clear()
    plain_step(model, x, y, torch.Generator().manual_seed(0))
    assert not calls and model.recompute_blocks == 1                 # ...but not in the plain step, and is restored


def test_gpu_check_runs_tiny_on_the_cpu(tmp_path):
    """`python -m benchmarks.gpu --device cpu --tiny` (the prepared GPU check at toy sizes) writes its JSON and
    table: every paper setting in both memory modes, the equivalence of all three modes, the paper's cost."""
    import subprocess
    import sys

    from benchmarks.gpu import ROOT, SETTINGS

    r = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--tiny", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    (json_file,) = tmp_path.glob("cpu-*-tiny.json")
    rec = json.loads(json_file.read_text())
    assert rec["tiny"] and rec["device"] == "cpu" and not rec["skipped"]
    for mode in ("default", "recompute", "constant"):
        assert rec["equivalence"][mode]["grad_images"] == 0.0          # the CPU against itself: identical
    assert set(rec["distill"]) == {f"{d}-ipc{i}" for d, i in SETTINGS}
    for row in rec["distill"].values():
        assert row["default"]["s_per_iteration"] > 0 and row["constant"]["peak_gb"] > 0
    assert rec["distill"]["tinyimagenet-ipc50"]["default"]["network"] == "convnet_bn depth 4"
    cost = rec["paper_cost_gpu_hours"]["cifar10-ipc250"]
    assert cost["total"] == pytest.approx(cost["experts"] + cost["distillation"] + cost["evaluation"])
    assert cost["eval_epochs"] == 1000
    assert "| cifar10-ipc1500 |" in json_file.with_suffix(".md").read_text()


def test_gpu_check_refuses_a_missing_device(capsys):
    from benchmarks.gpu import main as gpu_main

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        gpu_main(["--device", "cuda:3"])
    assert "device='cuda:3' is not available" in capsys.readouterr().err
