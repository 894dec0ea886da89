"""selmatch.device: a device is checked once, up front, and recorded with every result."""
from __future__ import annotations

import pytest
import torch

from selmatch.device import available_devices, cpu_name, provenance, resolve_device


def test_cpu_and_torch_devices():
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))
    assert resolve_device(None) == torch.device("cpu")
    assert "cpu" in available_devices()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
@pytest.mark.parametrize("name", ["cuda", "cuda:3"])
def test_a_device_this_machine_lacks_names_what_it_has(name):
    with pytest.raises(ValueError, match=rf"device='{name}' is not available on this machine; available: cpu"):
        resolve_device(name)


def test_a_name_that_is_no_device():
    with pytest.raises(ValueError, match="device='gpu0' is not a device name; available here: cpu"):
        resolve_device("gpu0")


def test_provenance_records_what_changes_rounding(monkeypatch):
    monkeypatch.setenv("SELMATCH_COMPILE", "1")
    p = provenance("cpu")
    assert p == {"device": "cpu", "torch": torch.__version__, "compile": "1", "cpu": cpu_name()}
    assert cpu_name().endswith(" cores") and cpu_name().split(", ")[-1].split()[0].isdigit()   # "MODEL, N cores"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_every_entry_point_refuses_a_missing_device_before_working(tmp_path, capsys):
    from selmatch import distill, evaluate, record_difficulty, train_experts
    from selmatch.cli import main
    from selmatch.distill import DistillConfig
    from selmatch.experts import ExpertConfig
    from selmatch.train import TrainConfig

    x, y = torch.zeros(4, 1, 8, 8), torch.arange(4) % 2
    cfg = TrainConfig(model="convnet", width=4, depth=1)
    calls = {
        "evaluate": lambda: evaluate(x, y, x, y, cfg, device="cuda"),
        "record_difficulty": lambda: record_difficulty(x, y, cfg, 0, device="cuda"),
        "train_experts": lambda: train_experts(x, y, x, y, ExpertConfig(num_experts=1), tmp_path / "e", num_classes=2,
                                               device="cuda"),
        "distill": lambda: distill(x, y, x, y, tmp_path / "none", "convnet", num_classes=2, cfg=DistillConfig(),
                                   device="cuda"),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match="device='cuda' is not available"):
            call()
    assert not (tmp_path / "e").exists()                          # nothing was written before the check
    code = main(["evaluate", "--dataset", "mnist5k", "--selection", str(tmp_path / "missing.npz"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "device='cuda' is not available" in err
