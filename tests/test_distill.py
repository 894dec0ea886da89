"""Expert trajectories and SelMatch distillation: exactness of the unroll, the partial update, resume."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from selmatch import load_dataset
from selmatch.distill import DistillationDiverged, DistillConfig, distill, matching_loss, minibatches, unroll
from selmatch.experts import ExpertConfig, expert_path, flat_params, load_trajectory, train_experts
from selmatch.networks import build_model
from selmatch.select import random_subset

EXPERT = ExpertConfig(model="convnet_bn", width=4, num_experts=2, epochs=3, batch_size=64)


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist5k")


@pytest.fixture(scope="module")
def experts(mnist, tmp_path_factory):
    idx = random_subset(mnist.y_train, 20, seed=0).select_idx
    out = tmp_path_factory.mktemp("experts")
    train_experts(mnist.normalize(mnist.x_train[idx]), mnist.y_train[idx], mnist.normalize(mnist.x_test[:200]),
                  mnist.y_test[:200], EXPERT, out, num_classes=10, progress=False)
    return out


def small_sets(mnist, ipc=4, alpha=0.5):
    sel = random_subset(mnist.y_train, ipc, seed=1, alpha=alpha)
    x = mnist.normalize(mnist.x_train)
    return x[sel.select_idx], mnist.y_train[sel.select_idx], x[sel.distill_idx], mnist.y_train[sel.distill_idx]


CFG = DistillConfig(iterations=4, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10, lr_init=0.01,
                    batch_syn=16, checkpoint_every=2, augmentation="none")


def explicit_sgd(model, x, y, batches, lr):
    """The reference: a plain SGD loop on a stock module."""
    model = copy.deepcopy(model)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for idx in batches:
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    return flat_params(model)


def test_unroll_equals_explicit_sgd():
    torch.manual_seed(0)
    model = build_model("convnet", 1, 10, 16, width=4, depth=2)
    x, y = torch.randn(40, 1, 16, 16), torch.randint(0, 10, (40,))
    batches = minibatches(40, 16, 5, torch.Generator().manual_seed(0))
    names = [n for n, _ in model.named_parameters()]
    shapes = [list(p.shape) for _, p in model.named_parameters()]
    theta = flat_params(model).requires_grad_(True)
    got = unroll(model, names, shapes, theta, x, y, torch.tensor(0.05), batches)
    assert torch.allclose(got.detach(), explicit_sgd(model, x, y, batches, 0.05), atol=1e-5)


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


def test_partial_update(mnist, experts):
    xs, ys, xd, yd = small_sets(mnist)
    res = distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=CFG.with_(augmentation="dsa"),
                  width=4, progress=False)
    n = len(xs)
    assert torch.equal(res.images[:n], xs)                       # D_select bit-identical
    assert not torch.equal(res.images[n:], xd)                   # D_distill updated
    assert (res.images[n:] - xd).abs().flatten(1).amax(1).gt(0).all()
    assert res.is_distilled.tolist() == [False] * n + [True] * len(xd)
    assert res.syn_lr != pytest.approx(CFG.lr_init, rel=1e-9)     # syn_lr moved
    assert len(res.history["loss"]) == CFG.iterations


def test_alpha_zero_changes_nothing(mnist, experts):
    xs, ys, xd, yd = small_sets(mnist, alpha=0.0)
    res = distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=CFG, width=4, progress=False)
    assert len(xd) == 0 and torch.equal(res.images, xs) and res.history["loss"] == []


def test_iteration_zero_loss_by_hand(mnist, experts):
    xs, ys, xd, yd = small_sets(mnist)
    cfg = CFG.with_(iterations=1)
    res = distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=cfg, width=4, seed=3, progress=False)
    g = torch.Generator().manual_seed(3)                           # replay the same draws
    k = int(torch.randint(2, (1,), generator=g))
    t = int(torch.randint(cfg.max_start_epoch, (1,), generator=g))
    batches = minibatches(len(xs) + len(xd), cfg.batch_syn, cfg.syn_steps, g)
    traj = load_trajectory(expert_path(experts, k))
    model = build_model("convnet_bn", 1, 10, 28, width=4)
    torch.nn.utils.vector_to_parameters(traj.params[t].clone(), model.parameters())
    theta_hat = explicit_sgd(model, torch.cat([xs, xd]), torch.cat([ys, yd]), batches, cfg.lr_init)
    start, target = traj.params[t], traj.params[t + 1]
    by_hand = ((theta_hat - target) ** 2).sum() / ((start - target) ** 2).sum()
    assert res.history["loss"][0] == pytest.approx(by_hand.item(), rel=1e-4)
    assert matching_loss(start, start, target).item() == pytest.approx(1.0)


def test_resume_equals_uninterrupted(mnist, experts, tmp_path):
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, cfg=CFG, width=4, seed=5, progress=False)
    full = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "a", **args)
    state = {"stopped": False}

    def stop_once(it, *_):
        if not state["stopped"]:
            state["stopped"] = True
            raise KeyboardInterrupt
        return {}

    with pytest.raises(KeyboardInterrupt):
        distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "b", eval_at=(3,), on_eval=stop_once, **args)
    assert (tmp_path / "b" / "checkpoint.pt").exists()               # the work up to iteration 2 is kept
    resumed = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "b", resume=True, eval_at=(3,),
                      on_eval=stop_once, **args)
    assert torch.equal(resumed.images, full.images) and resumed.syn_lr == full.syn_lr
    assert resumed.history["loss"] == full.history["loss"]


def test_resume_of_finished_run_without_requested_evals_redistills(mnist, experts, tmp_path):
    """A run finished without evaluations cannot supply them later: it is redone, not silently skipped."""
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, cfg=CFG, width=4, seed=5, progress=False, out=tmp_path, resume=True)
    first = distill(xs, ys, xd, yd, experts, "convnet_bn", **args)
    assert first.history["evals"] == {}
    with pytest.warns(UserWarning, match=r"no evaluation at \[0, 2\]"):
        again = distill(xs, ys, xd, yd, experts, "convnet_bn", eval_at=(0, 2, 4),
                        on_eval=lambda it, *_: {"it": it}, **args)
    assert sorted(again.history["evals"]) == ["0", "2", "4"]
    assert torch.equal(again.images, first.images) and again.history["loss"] == first.history["loss"]


def test_divergence_names_learning_rates(mnist, experts, tmp_path):
    xs, ys, xd, yd = small_sets(mnist)
    cfg = CFG.with_(lr_init=1e8, iterations=3)
    with pytest.raises(DistillationDiverged, match="lr_img"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=cfg, width=4, out=tmp_path, progress=False)


def test_bad_inputs(mnist, experts, tmp_path):
    xs, ys, xd, yd = small_sets(mnist)
    with pytest.raises(ValueError, match="syn_steps=0 must be >= 1"):
        DistillConfig(syn_steps=0)
    with pytest.raises(FileNotFoundError, match="no expert files"):
        distill(xs, ys, xd, yd, tmp_path, "convnet_bn", num_classes=10, cfg=CFG, width=4, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    expert_path(bad, 0).write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="expert_0000.pt is corrupt"):
        distill(xs, ys, xd, yd, bad, "convnet_bn", num_classes=10, cfg=CFG, width=4, progress=False)
    with pytest.raises(ValueError, match="another network"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=CFG, width=8, progress=False)
    with pytest.raises(ValueError, match="max_start_epoch=5"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, width=4, progress=False,
                cfg=CFG.with_(max_start_epoch=5))


@pytest.mark.parametrize("augmentation", ["none", "dsa"])
def test_constant_memory_gradients_equal_default(augmentation):
    from selmatch.remat import matching_grads

    torch.manual_seed(0)
    model = build_model("convnet_bn", 1, 10, 16, width=4, depth=2)
    names = [n for n, _ in model.named_parameters()]
    shapes = [list(p.shape) for _, p in model.named_parameters()]
    start = flat_params(model)
    target = start + 0.05 * torch.randn_like(start)
    x_sel, x_dis0 = torch.randn(12, 1, 16, 16), torch.randn(20, 1, 16, 16)
    y = torch.randint(0, 10, (32,))
    batches = minibatches(32, 8, 6, torch.Generator().manual_seed(1))

    x_dis = x_dis0.clone().requires_grad_(True)
    lr = torch.tensor(0.02, requires_grad=True)
    g = torch.Generator().manual_seed(2)
    theta = unroll(model, names, shapes, start.clone().requires_grad_(True), torch.cat([x_sel, x_dis]), y, lr,
                   batches, g, augmentation)
    loss = matching_loss(theta, start, target)
    loss.backward()
    g2 = torch.Generator().manual_seed(2)
    loss_c, gx, glr = matching_grads(model, names, shapes, start, target, x_sel, x_dis0, y, torch.tensor(0.02),
                                     batches, g2, augmentation)
    assert loss_c.item() == pytest.approx(loss.item(), rel=1e-5)
    assert torch.allclose(gx, x_dis.grad, rtol=1e-4, atol=1e-4 * x_dis.grad.abs().max().item())
    assert glr.item() == pytest.approx(lr.grad.item(), rel=1e-4)
    assert torch.equal(g.get_state(), g2.get_state())          # both modes consume the generator identically


@pytest.mark.parametrize("memory, atol, rel", [("constant", 1e-3, 1e-4), ("recompute", 1e-4, 1e-5)])
def test_memory_modes_distill_match_default(mnist, experts, memory, atol, rel):
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, width=4, seed=4, progress=False)
    a = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(augmentation="dsa"), **args)
    b = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(augmentation="dsa", memory=memory), **args)
    assert torch.allclose(a.images, b.images, atol=atol) and a.syn_lr == pytest.approx(b.syn_lr, rel=rel)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=rel)


def test_expert_indices_cap_at_the_smallest_class():
    from selmatch.experts import expert_indices

    y = torch.cat([torch.zeros(7, dtype=torch.long), torch.ones(5, dtype=torch.long), torch.full((9,), 2)])
    assert torch.equal(expert_indices(y, None, 0, 3), torch.arange(21))
    few = expert_indices(y, 3, 0, 3)
    assert torch.equal(torch.bincount(y[few], minlength=3), torch.tensor([3, 3, 3]))
    capped = expert_indices(y, 1000, 0, 3)       # more than any class holds: every class gives 5
    assert torch.equal(torch.bincount(y[capped], minlength=3), torch.tensor([5, 5, 5]))
    assert len(set(capped.tolist())) == 15


def test_bad_memory_mode_names_the_valid_ones():
    with pytest.raises(ValueError, match="memory='lean'.*recompute"):
        CFG.with_(memory="lean")
