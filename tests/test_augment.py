"""Batched augmentation: determinism, gradients, the official ranges, and per-sample families."""
from __future__ import annotations

import pytest
import torch

from selmatch import augment as A


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("kind", ["simple", "dsa", "combined"])
def test_same_seed_same_output(kind):
    x = torch.randn(16, 3, 32, 32)
    mask = torch.arange(16) % 2 == 0
    a, b = A.augment(x, kind, gen(3), mask), A.augment(x, kind, gen(3), mask)
    assert torch.equal(a, b)
    assert not all(torch.equal(A.augment(x, kind, gen(s), mask), a) for s in range(4, 8))


@pytest.mark.parametrize("family", A.DSA_FAMILIES)
def test_gradient_reaches_input(family):
    x = torch.randn(8, 3, 32, 32, requires_grad=True)
    A.dsa(x, gen(), families=(family,)).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_gradient_per_sample_and_combined():
    x = torch.randn(12, 3, 32, 32, requires_grad=True)
    out = A.combined(x, gen(), torch.arange(12) < 6)
    out.sum().backward()
    assert out.shape == x.shape and (x.grad.abs().flatten(1).sum(1) > 0).all()


def _marker_batch(n, row=16, col=10):
    x = torch.zeros(n, 1, 32, 32)
    x[:, 0, row, col] = 1.0
    return x


def test_simple_translation_range_and_flip_rate():
    n = 4000
    out = A.simple(_marker_batch(n), gen(1))
    flat = out[:, 0].flatten(1)
    assert (flat.max(1).values == 1).sum() >= n * 0.99  # marker kept unless shifted off (never: |shift| <= 4)
    pos = flat.argmax(1)
    r, c = pos // 32, pos % 32
    flipped = c > 15                     # unflipped: 10 + dx in [6, 14]; flipped: 31 - (10 + dx) in [17, 25]
    dx = torch.where(flipped, 31 - c - 10, c - 10)
    dy = r - 16
    assert dx.abs().max() <= 4 and dy.abs().max() <= 4
    assert set(dx.tolist()) == set(range(-4, 5)) and set(dy.tolist()) == set(range(-4, 5))
    assert abs(flipped.double().mean().item() - 0.5) < 0.04


def test_dsa_crop_range_and_flip_rate():
    n = 4000
    out = A.dsa(_marker_batch(n), gen(2), families=("crop",))[:, 0].flatten(1).argmax(1)
    assert ((out // 32 - 16).abs().max() <= 4) and ((out % 32 - 10).abs().max() <= 4)
    flips = A.dsa(_marker_batch(n), gen(2), families=("flip",))[:, 0].flatten(1).argmax(1) % 32 == 21
    assert abs(flips.double().mean().item() - 0.5) < 0.04


def test_color_ranges():
    x = torch.full((3000, 3, 8, 8), 0.25)
    x[:, 0] = 0.75
    g = gen(5)
    bright = A.color(x, g, A.DSAParams(saturation=1.0, contrast=0.0))   # saturation x1 and contrast x1: brightness only
    shift = (bright - x).mean((1, 2, 3))
    assert shift.min() >= -0.5 and shift.max() <= 0.5 and shift.max() - shift.min() > 0.9


def test_cutout_square_size():
    out = A.dsa(torch.ones(500, 1, 32, 32), gen(6), families=("cutout",))
    zeros = (out == 0).flatten(1).sum(1)
    assert zeros.max() == 16 * 16 and zeros.min() >= 8 * 8  # half-size square, possibly clipped at the border


def test_single_mode_one_family_per_call():
    x = torch.rand(64, 3, 32, 32) + 0.1    # no exact zeros in the images: only cutout makes them
    # with flip and cutout only: either every changed image is a mirror (flip) or has zeros (cutout)
    for seed in range(10):
        out = A.dsa(x, gen(seed), families=("flip", "cutout"))
        mirror = torch.isclose(out, x.flip(3)).flatten(1).all(1) & ~torch.isclose(out, x).flatten(1).all(1)
        cut = (out == 0).flatten(1).any(1)
        assert not (mirror.any() and cut.any())


def test_sample_mode_mixes_families():
    x = torch.rand(64, 3, 32, 32)
    out = A.dsa(x, gen(1), mode="sample", families=("flip", "cutout"))
    cut = (out == 0).flatten(1).any(1)
    assert 10 < cut.sum() < 54


def test_none_is_identity_and_bad_kind():
    x = torch.randn(4, 3, 32, 32)
    assert A.augment(x, "none", gen()) is x
    with pytest.raises(ValueError, match="none, simple, dsa, combined"):
        A.augment(x, "mixup", gen())
    with pytest.raises(ValueError, match="subset of"):
        A.dsa(x, gen(), families=("blur",))


def test_combined_uses_simple_on_selected():
    x = _marker_batch(400)
    selected = torch.zeros(400, dtype=torch.bool)
    out = A.combined(x, gen(7), selected)
    assert torch.allclose(out, A.simple(x, gen(7)))  # no distilled images: exactly simple augmentation
