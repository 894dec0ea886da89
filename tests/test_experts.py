"""Expert trajectories: the file format, resume, refusal to mix configs, and the training subset."""
from __future__ import annotations

import pytest
import torch

from conftest import TINY_EXPERT
from selmatch.artifacts import expert_path, load_trajectory
from selmatch.experts import ExpertConfig, expert_indices, train_experts
from selmatch.select import random_subset

EXPERT = ExpertConfig(**TINY_EXPERT)      # the config of the ``experts`` fixture (conftest)


def test_experts_format_and_resume(mnist, experts):
    traj = load_trajectory(expert_path(experts, 0))
    assert traj.params.shape[0] == EXPERT.epochs + 1 and len(traj.test_acc) == EXPERT.epochs
    assert traj.names[0].startswith("body.0") and traj.test_acc[-1] > 10
    blob = torch.load(expert_path(experts, 1), weights_only=True)   # loads without executing code
    assert set(blob) >= {"names", "shapes", "params", "config"}
    # resume: a deleted expert is retrained identically; existing files are left alone
    kept = expert_path(experts, 0).stat().st_mtime_ns
    before = load_trajectory(expert_path(experts, 1), mmap=False).params.clone()
    expert_path(experts, 1).unlink()
    idx = random_subset(mnist.y_train, 20, seed=0).select_idx
    train_experts(mnist.normalize(mnist.x_train[idx]), mnist.y_train[idx], mnist.normalize(mnist.x_test[:200]),
                  mnist.y_test[:200], EXPERT, experts, num_classes=10, progress=False)
    assert expert_path(experts, 0).stat().st_mtime_ns == kept
    assert torch.equal(load_trajectory(expert_path(experts, 1)).params, before)
    with pytest.raises(ValueError, match="different config"):
        train_experts(mnist.normalize(mnist.x_train[idx]), mnist.y_train[idx], mnist.normalize(mnist.x_test[:20]),
                      mnist.y_test[:20], ExpertConfig(model="convnet_bn", width=8, num_experts=1, epochs=1),
                      experts, num_classes=10, progress=False)


def test_expert_indices_cap_at_the_smallest_class():
    y = torch.cat([torch.zeros(7, dtype=torch.long), torch.ones(5, dtype=torch.long), torch.full((9,), 2)])
    assert torch.equal(expert_indices(y, None, 0, 3), torch.arange(21))
    few = expert_indices(y, 3, 0, 3)
    assert torch.equal(torch.bincount(y[few], minlength=3), torch.tensor([3, 3, 3]))
    capped = expert_indices(y, 1000, 0, 3)       # more than any class holds: every class gives 5
    assert torch.equal(torch.bincount(y[capped], minlength=3), torch.tensor([5, 5, 5]))
    assert len(set(capped.tolist())) == 15


def test_a_damaged_expert_is_retrained_with_a_warning(mnist, experts):
    from selmatch.artifacts import expert_path

    expert_path(experts, 1).write_bytes(b"\x80\x02 cut short by a crash")
    idx = random_subset(mnist.y_train, 20, seed=0).select_idx
    with pytest.warns(UserWarning, match="expert_0001.pt is damaged .* training expert 1 again"):
        train_experts(mnist.normalize(mnist.x_train[idx]), mnist.y_train[idx], mnist.normalize(mnist.x_test[:200]),
                      mnist.y_test[:200], EXPERT, experts, num_classes=10, progress=False)
    assert load_trajectory(expert_path(experts, 1)).epochs == EXPERT.epochs
