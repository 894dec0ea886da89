"""The end-to-end benchmark: an official-layout script run as a script, selmatch distill run as the user runs
it, iterations timed the same way on both sides (a stand-in for the official clone here)."""
from __future__ import annotations

import argparse
import json

import pytest

from benchmarks import endtoend

# A stand-in for the official clone: its distill.py reads the arguments the benchmark passes, loads the dataset
# through utils.get_dataset and the buffer the benchmark wrote, and steps an image and a syn_lr optimiser per
# iteration, as the official script does.
FAKE_DISTILL = '''
import argparse, os, torch
from utils import get_dataset, get_network
p = argparse.ArgumentParser()
for name in ("dataset", "device", "model", "buffer_path", "save_path", "initialize", "score"):
    p.add_argument("--" + name)
for name in ("Iteration", "syn_steps", "batch_syn", "expert_epochs", "max_start_epoch", "ipc", "num_eval"):
    p.add_argument("--" + name, type=int)
for name in ("lr_img", "lr_lr", "lr_init", "alpha", "beta"):
    p.add_argument("--" + name, type=float)
p.add_argument("--load_all", action="store_true")
args = p.parse_args()
assert os.path.exists("scores"), "run from inside the clone"
channel, im_size, num_classes, _, _, _, dst_train, _, _ = get_dataset(args.dataset, None)
assert len(dst_train) == 50000 and isinstance(dst_train[0][1], int)
buffer = torch.load(os.path.join(args.buffer_path, args.dataset, args.model, "replay_buffer_0.pt"))
net = get_network(args.model, channel, num_classes, im_size, dist=False)
assert len(buffer) == 10 and all(torch.is_tensor(p) for p in buffer[0][0])   # ten trajectories of tensor lists
assert net[0].out_channels == 4                       # its own ConvNet class at the case's width
images = torch.zeros(4, requires_grad=True)
syn_lr = torch.tensor(args.lr_init, requires_grad=True)
opt_img, opt_lr = torch.optim.SGD([images], lr=1.0), torch.optim.SGD([syn_lr], lr=1.0)
for it in range(args.Iteration + 1):
    (images.sum() * syn_lr).backward()
    opt_img.step(); opt_lr.step()
    torch.linalg.norm(torch.ones(2, 3, 4, 5), dim=(1, 2, 3))
'''

FAKE_EVAL = '''
import argparse, os, torch
from utils import get_dataset, get_network
p = argparse.ArgumentParser()
for name in ("dataset", "device", "model", "method", "score", "aug"):
    p.add_argument("--" + name)
for name in ("ipc", "epoch_eval_train", "batch_train", "Iteration"):
    p.add_argument("--" + name, type=int)
for name in ("lr_net", "beta"):
    p.add_argument("--" + name, type=float)
args = p.parse_args()
assert os.path.exists("scores"), "run from inside the clone"
channel, im_size, num_classes, _, _, _, dst_train, _, _ = get_dataset(args.dataset, None)
net = get_network(args.model, channel, num_classes, im_size, dist=False)
opt = torch.optim.SGD(net.parameters(), lr=args.lr_net)
n = args.ipc * num_classes
for ep in range(args.epoch_eval_train + 1):                  # as its evaluate_synset: one epoch more
    for start in range(0, n, args.batch_train):
        x = torch.stack([dst_train[i][0] for i in range(start, min(n, start + args.batch_train))])
        net(x).sum().backward()
        opt.step()
'''

FAKE_NETWORKS = '''
import torch
class ConvNet(torch.nn.Sequential):
    def __init__(self, channel, num_classes, net_width, net_depth, net_act, net_norm, net_pooling, im_size=(32, 32)):
        super().__init__(torch.nn.Conv2d(channel, net_width, 3))
'''


@pytest.fixture()
def official(tmp_path):
    root = tmp_path / "SelMatch"
    (root / "scores").mkdir(parents=True)
    (root / "distill.py").write_text(FAKE_DISTILL)
    (root / "eval.py").write_text(FAKE_EVAL)
    (root / "utils.py").write_text("def get_dataset(dataset, data_path):\n    raise RuntimeError('replaced')\n"
                                   "def get_network(*a, **k):\n    raise RuntimeError('replaced at width != 128')\n")
    (root / "networks.py").write_text(FAKE_NETWORKS)
    return root


def test_cases_parse_and_bad_ones_are_named():
    case = endtoend.parse_case("convnet_bn/20")
    assert (case["network"], case["syn_steps"], case["width"], case["ipc"]) == ("convnet_bn", 20, 128, 10)
    assert endtoend.parse_case("convnet/5/32")["width"] == 32
    assert endtoend.parse_case("cpu")["batch_syn"] == 128 and endtoend.parse_case("cpu")["width"] == 32
    assert endtoend.parse_case("eval-paper")["kind"] == "evaluate" and endtoend.parse_case("eval-paper")["width"] is None
    for bad in ("resnet/10", "convnet/0", "convnet", "convnet/10/32/5"):
        with pytest.raises(argparse.ArgumentTypeError, match="NETWORK/SYN_STEPS"):
            endtoend.parse_case(bad)


def test_each_case_has_a_preset_with_its_learning_rates():
    for text in (c for c in endtoend.DEFAULT_CASES if c not in endtoend.EVAL):
        assert endtoend._preset(endtoend.parse_case(text)) in ("cifar10-ipc250", "cpu")
    with pytest.raises(ValueError, match="lr_init=0.5"):
        endtoend._preset({**endtoend.SHARED, "lr_init": 0.5})


def test_both_sides_are_timed_per_iteration_and_compared(official, tmp_path, shared_data):
    case = {**endtoend.parse_case("convnet/1/4"), "ipc": 2}
    rows = endtoend.compare(official, [case], reps=2, iterations=3, warmup=1, work=tmp_path / "work")
    (row,) = rows
    for code in ("official", "ours"):
        assert len(row["runs"][code]) == 2
        assert all(len(r["iteration_s"]) == 2 and len(r["timed_s"]) == 1 for r in row["runs"][code])
        assert all(r["peak_gb"] > 0 for r in row["runs"][code])
    assert row["speedup"]["n"] == 2 and row["speedup"]["min"] <= row["speedup"]["median"] <= row["speedup"]["max"]
    synset = tmp_path / "work" / "ours-out" / "synset.npz"
    assert synset.exists()                                      # selmatch distill ran as the user runs it
    assert "ours" in endtoend.line(row) or "convnet/1/4" in endtoend.line(row)


def test_the_driver_refuses_a_folder_without_distill_py(tmp_path, capsys):
    with pytest.raises(SystemExit):
        endtoend.main(["--official", str(tmp_path)])
    assert "distill.py" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        endtoend.main(["--official", str(tmp_path), "--iterations", "2"])


def test_evaluation_is_timed_per_training_step_on_both_sides(official, tmp_path, shared_data):
    case = {**endtoend.parse_case("eval-cpu"), "width": 4, "ipc": 13, "batch": 64, "epochs": 2, "profile": "smoke",
            "name": "eval-tiny"}
    (row,) = endtoend.compare(official, [case], reps=1, iterations=7, warmup=1, work=tmp_path / "work")
    for code in ("official", "ours"):
        (run,) = row["runs"][code]
        assert len(run["iteration_s"]) == 2 * 3 - 1            # 130 images in batches of 64, two epochs
        assert len(run["timed_s"]) == 2                           # as many as an epoch has steps dropped
    assert (tmp_path / "work" / "ours-eval.json").exists()       # selmatch evaluate ran as the user runs it
    text = endtoend.markdown({"date": "2026-12-06T00:00:00", "cpu": "x", "threads": 2, "torch": "t", "reps": 1,
                              "rows": [row]})
    assert "| evaluation |" in text and "ConvNet-4, batch 64" in text
    with pytest.raises(RuntimeError, match="batches of 64, not the case's 10"):
        endtoend.compare(official, [{**case, "batch": 10}], reps=1, iterations=7, warmup=1, work=tmp_path / "work")
