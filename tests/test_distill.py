"""SelMatch distillation: the partial update, the loss by hand, resume, divergence, memory modes."""
from __future__ import annotations

import re
import warnings

import pytest
import torch

from conftest import explicit_sgd
from selmatch.artifacts import expert_path, load_trajectory
from selmatch.distill import DistillationDiverged, DistillConfig, distill
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


def test_evaluations_of_another_evaluator_are_made_again_from_the_saved_images(mnist, experts, tmp_path):
    """Two callers sharing a run folder but evaluating differently (``eval_tag``) never read each other's
    evaluations: the second evaluates the images saved at each point by the first, without distilling
    again, and gets exactly what evaluating during a run of its own gives."""
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, cfg=CFG, width=4, seed=5, progress=False, resume=True)

    def evaluator(name):
        return lambda it, images, labels, flags: {"by": name, "sum": float(images[flags].double().sum())}

    first = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "shared", eval_at=(0, 2, 4),
                    on_eval=evaluator("A"), eval_tag="A", **args)
    assert {v["by"] for v in first.history["evals"].values()} == {"A"}
    alone = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "alone", eval_at=(0, 2, 4),
                    on_eval=evaluator("B"), eval_tag="B", **args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no "distilling again from iteration 0"
        second = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "shared", eval_at=(0, 2, 4),
                         on_eval=evaluator("B"), eval_tag="B", **args)
    assert second.history["evals"] == alone.history["evals"]
    assert {v["by"] for v in second.history["evals"].values()} == {"B"}
    assert second.history["loss"] == first.history["loss"] and torch.equal(second.images, first.images)
    # A caller with no evaluations gets none, not another caller's; the same tag reuses its own
    assert distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "shared", **args).history["evals"] == {}
    calls = []
    third = distill(xs, ys, xd, yd, experts, "convnet_bn", out=tmp_path / "shared", eval_at=(0, 2, 4),
                    on_eval=lambda *a: calls.append(a), eval_tag="B", **args)
    assert calls == [] and third.history["evals"] == alone.history["evals"]


def test_evaluations_without_saved_images_redistill(mnist, experts, tmp_path):
    """Without the images of an evaluation point (a run made before they were saved, or a damaged file),
    another evaluator's point is made by distilling again: never borrowed."""
    xs, ys, xd, yd = small_sets(mnist)
    args = dict(num_classes=10, cfg=CFG, width=4, seed=5, progress=False, resume=True, out=tmp_path, eval_at=(0, 2))
    distill(xs, ys, xd, yd, experts, "convnet_bn", on_eval=lambda it, *_: {"by": "A"}, eval_tag="A", **args)
    (tmp_path / "evals" / "images-2.pt").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match=r"no evaluation at \[2\] \(nor the images"):
        again = distill(xs, ys, xd, yd, experts, "convnet_bn", on_eval=lambda it, *_: {"by": "B"}, eval_tag="B",
                        **args)
    assert again.history["evals"] == {"0": {"by": "B"}, "2": {"by": "B"}}


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


def test_finite_learning_rates_and_evaluation_points():
    for name in ("lr_img", "lr_init", "lr_lr"):
        with pytest.raises(ValueError, match=f"{name}=inf must be a finite number"):
            CFG.with_(**{name: float("inf")})
    with pytest.raises(ValueError, match="lr_img=nan"):
        CFG.with_(lr_img=float("nan"))


def test_eval_at_outside_the_run_is_refused(mnist, experts):
    xs, ys, xd, yd = small_sets(mnist)
    with pytest.raises(ValueError, match=r"eval_at=\[0, 9\]: \[9\] outside \[0, iterations=4\]"):
        distill(xs, ys, xd, yd, experts, "convnet_bn", num_classes=10, cfg=CFG, width=4, eval_at=(0, 9),
                on_eval=lambda *a: {}, progress=False)


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
