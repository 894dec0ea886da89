"""SelMatch distillation: the partial update, the loss by hand, resume, divergence, memory modes."""
from __future__ import annotations

import importlib
import re

import pytest
import torch

from conftest import explicit_sgd
from selmatch.artifacts import expert_path, load_trajectory
from selmatch.distill import DistillationDiverged, DistillConfig, MissingSnapshots, distill
from selmatch.networks import build_model
from selmatch.select import random_subset
from selmatch.student import matching_loss, minibatches

def small_sets(mnist, ipc=4, alpha=0.5):
    sel = random_subset(mnist.y_train, ipc, seed=1, alpha=alpha)
    x = mnist.normalize(mnist.x_train)
    return x[sel.select_idx], mnist.y_train[sel.select_idx], x[sel.distill_idx], mnist.y_train[sel.distill_idx]


CFG = DistillConfig(iterations=4, syn_steps=3, expert_epochs=1, max_start_epoch=2, lr_img=10, lr_init=0.01,
                    batch_syn=16, checkpoint_every=2, augmentation="none")


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
    full = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "a", keep_at=(0, 3), **args)
    calls = {"n": 0}
    distill_module = importlib.import_module("selmatch.distill")     # the module (the package exports the function)
    original = distill_module._iteration

    def stop_at_3(*a, **k):           # killed during iteration 3 (after the checkpoint at 2)
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return original(*a, **k)

    distill_module._iteration = stop_at_3
    try:
        with pytest.raises(KeyboardInterrupt):
            distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "b", keep_at=(0, 3), **args)
    finally:
        distill_module._iteration = original
    assert (tmp_path / "b" / "checkpoint.pt").exists()               # the work up to iteration 2 is kept
    resumed = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "b", resume=True, keep_at=(0, 3), **args)
    assert torch.equal(resumed.images, full.images) and resumed.syn_lr == full.syn_lr
    assert resumed.history["loss"] == full.history["loss"]
    assert list(resumed.snapshots) == [0, 3]
    assert all(torch.equal(resumed.snapshots[k], full.snapshots[k]) for k in (0, 3))


def test_snapshots_are_the_images_at_those_iterations(mnist, experts, tmp_path):
    """``keep_at`` returns the distilled images as they were at each point: iteration 0 is the start, the
    last is the result, and a shorter run ends where the longer one passed."""
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, width=4, seed=5, progress=False)
    res = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG, keep_at=(0, 2, 4), **args)
    assert list(res.snapshots) == [0, 2, 4]
    assert torch.equal(res.snapshots[0], xd.float()) and torch.equal(res.snapshots[4], res.images[res.is_distilled])
    short = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(iterations=2), **args)
    assert torch.equal(res.snapshots[2], short.images[short.is_distilled])
    assert "evals" not in res.history


def test_a_resumed_run_returns_its_kept_images_and_refuses_ones_it_did_not_keep(mnist, experts, tmp_path):
    """A finished run asked again returns the images it kept, without distilling; asked for a point it passed
    without keeping it, it says so (the caller distills again), never borrowing other images."""
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, cfg=CFG, width=4, seed=5, progress=False, resume=True, out=tmp_path)
    first = distill(xs, ys, xd, yd, experts, "convnet_bn", keep_at=(0, 2), **args)
    again = distill(xs, ys, xd, yd, experts, "convnet_bn", keep_at=(0, 2, 4), **args)
    assert again.history["loss"] == first.history["loss"]                  # nothing distilled again
    assert all(torch.equal(again.snapshots[k], first.snapshots[k]) for k in (0, 2))
    with pytest.raises(MissingSnapshots, match=r"past keep_at \[1\]"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", keep_at=(1,), **args)
    (tmp_path / "evals" / "images-2.pt").write_bytes(b"damaged")
    with pytest.raises(MissingSnapshots, match=r"past keep_at \[2\]"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", keep_at=(0, 2), **args)


def test_divergence_names_learning_rates(mnist, experts, tmp_path):
    xs, ys, xd, yd = small_sets(mnist)
    cfg = CFG.with_(lr_init=1e8, iterations=3)
    with pytest.raises(DistillationDiverged, match="lr_img"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=cfg, width=4, out=tmp_path, progress=False)


@pytest.mark.parametrize("lr_img", [1e6, 1e38])
def test_a_checkpoint_never_holds_a_diverged_state(mnist, experts, tmp_path, lr_img):
    """An update that sends the pixels past 100x the real range (or to infinity) is caught before the
    checkpoint after it is written, though the loss that produced it was finite: the checkpoint left is
    the state before the bad update (at lr_img 1e6 the old code finished, pixels at +-1e3)."""
    from selmatch.artifacts import load_checkpoint

    xs, ys, xd, yd = small_sets(mnist)
    bad = CFG.with_(iterations=4, checkpoint_every=1, lr_img=lr_img)
    with pytest.raises(DistillationDiverged, match=r"by iteration (\d) the distilled pixels reach|"
                                                   r"the update of iteration (\d) made the images") as err:
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=bad, width=4, out=tmp_path, progress=False)
    at = int(re.search(r"iteration (\d)", str(err.value)).group(1))
    ckpt = tmp_path / "checkpoint.pt"
    assert ckpt.exists() == (at > 0) and ("predates it and is kept" in str(err.value)) == (at > 0)
    if at > 0:                                   # the state before the bad update, not after it
        state = load_checkpoint(ckpt)
        assert int(state["iteration"]) == at and state["x_distill"].abs().max() < 100 * xd.abs().max()


def test_resume_refuses_another_run_and_names_the_fields(mnist, experts, tmp_path):
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, width=4, progress=False, out=tmp_path)
    distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(iterations=2), seed=1, **args)
    with pytest.raises(ValueError, match=r"belongs to another run \(distill.lr_img: 10 -> 20; seed: 1 -> 2\)"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(lr_img=20), seed=2, resume=True, **args)
    with pytest.raises(ValueError, match=r"identity.selection: None -> 'other'"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG, seed=1, resume=True, identity={"selection": "other"},
                **args)
    with pytest.raises(ValueError, match="n_distill: 20 -> 10"):
        distill(xs, ys, xd[:10], yd[:10], experts, "convnet_bn", cfg=CFG, seed=1, resume=True, **args)
    with pytest.raises(ValueError, match="is at iteration 2, past iterations=1"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(iterations=1), seed=1, resume=True, **args)
    longer = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG, seed=1, resume=True, **args)   # extends it
    whole = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG, seed=1, **{**args, "out": tmp_path / "b"})
    assert torch.equal(longer.images, whole.images) and longer.history["loss"] == whole.history["loss"]


def test_min_start_epoch_is_checked_and_draws_later_segments(mnist, experts):
    with pytest.raises(ValueError, match=r"min_start_epoch=2 must be in \[0, max_start_epoch=2\)"):
        CFG.with_(min_start_epoch=2)
    assert "min_start_epoch" not in CFG.numbers() and CFG.with_(min_start_epoch=1).numbers()["min_start_epoch"] == 1
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, width=4, seed=5, progress=False)
    late = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(min_start_epoch=1), **args)
    early = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG, **args)
    assert late.history["loss"] != early.history["loss"]


def test_finite_learning_rates_and_evaluation_points():
    for name in ("lr_img", "lr_init", "lr_lr"):
        with pytest.raises(ValueError, match=f"{name}=inf must be a finite number"):
            CFG.with_(**{name: float("inf")})
    with pytest.raises(ValueError, match="lr_img=nan"):
        CFG.with_(lr_img=float("nan"))


def test_keep_at_outside_the_run_is_refused(mnist, experts):
    xs, ys, xd, yd = small_sets(mnist)
    with pytest.raises(ValueError, match=r"keep_at=\[0, 9\]: \[9\] outside \[0, iterations=4\]"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=CFG, width=4, keep_at=(0, 9), progress=False)


def test_bad_inputs(mnist, experts, tmp_path):
    xs, ys, xd, yd = small_sets(mnist)
    with pytest.raises(ValueError, match="syn_steps=0 must be >= 1"):
        DistillConfig(syn_steps=0)
    with pytest.raises(FileNotFoundError, match="no expert files"):
        distill(xs, ys, xd, yd, tmp_path, "convnet_bn", num_classes=10, cfg=CFG, width=4, progress=False)
    bad = tmp_path / "bad"
    bad.mkdir()
    expert_path(bad, 0).write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="expert_0000.pt is damaged"):
        distill(xs, ys, xd, yd, bad, "convnet_bn", num_classes=10, cfg=CFG, width=4, progress=False)
    with pytest.raises(ValueError, match="another network"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=CFG, width=8, progress=False)
    with pytest.raises(ValueError, match="max_start_epoch=5"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, width=4, progress=False,
                cfg=CFG.with_(max_start_epoch=5))


@pytest.mark.parametrize("memory, atol, rel", [("constant", 1e-3, 1e-4), ("recompute", 1e-4, 1e-5)])
def test_memory_modes_distill_match_default(mnist, experts, memory, atol, rel):
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, width=4, seed=4, progress=False)
    a = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(augmentation="dsa"), **args)
    b = distill(xs, ys, xd, yd, experts, "convnet_bn", cfg=CFG.with_(augmentation="dsa", memory=memory), **args)
    assert torch.allclose(a.images, b.images, atol=atol) and a.syn_lr == pytest.approx(b.syn_lr, rel=rel)
    assert a.history["loss"] == pytest.approx(b.history["loss"], rel=rel)


def test_bad_memory_mode_names_the_valid_ones():
    with pytest.raises(ValueError, match="memory='lean'.*recompute"):
        CFG.with_(memory="lean")


def test_distillation_lowers_the_matching_loss_on_a_fixed_segment(mnist, experts):
    """With one expert and one start epoch, every iteration matches the same segment; a few iterations must
    bring the student's end point closer to the expert's (the loss at the distilled images and learned
    syn_lr against the loss at the initialisation, same minibatches)."""
    from selmatch.networks import build_model
    from selmatch.student import ParamLayout, unroll

    xs, ys, xd, yd = small_sets(mnist, ipc=4, alpha=1.0)
    traj = load_trajectory(expert_path(experts, 0), mmap=False)
    cfg = CFG.with_(iterations=8, max_start_epoch=1, expert_epochs=1, batch_syn=None, lr_img=100, lr_lr=1e-5)
    res = distill(xs, ys, xd, yd, [traj], "convnet_bn", num_classes=10, cfg=cfg, width=4, progress=False)
    model = build_model("convnet_bn", 1, 10, 28, width=4)
    layout, y = ParamLayout.of(model), torch.cat([ys, yd])
    start, target = traj.params[0], traj.params[1]
    batches = [torch.arange(len(y))] * cfg.syn_steps

    def loss(images, lr):
        theta = unroll(model, layout, start.clone().requires_grad_(True), images, y, torch.tensor(lr), batches)
        return matching_loss(theta, start, target).item()

    before, after = loss(torch.cat([xs, xd]), cfg.lr_init), loss(res.images, res.syn_lr)
    assert after < 0.9 * before, (before, after)
    assert res.history["loss"][-1] < res.history["loss"][0]
