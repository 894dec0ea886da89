"""Coverage on hand-made geometry with a known answer."""
from __future__ import annotations

import pytest
import torch

from selmatch.coverage import coverage, coverage_radius, nearest_distance


def test_radius_excludes_self():
    # points on a line at 0, 1, 3: nearest others 1, 1, 2 -> mean 4/3
    real = torch.tensor([[0.0], [1.0], [3.0]])
    assert coverage_radius(real) == pytest.approx(4 / 3)


def test_known_coverage_and_groups():
    real = torch.tensor([[0.0, 0], [1, 0], [10, 0], [11, 0]])          # radius = 1
    syn = torch.tensor([[0.5, 0], [30, 0]])                            # covers the first two only
    groups = {"easy": torch.tensor([True, True, False, False]), "hard": torch.tensor([False, False, True, True])}
    out = coverage(real, syn, groups=groups)
    assert out["radius"] == pytest.approx(1.0)
    assert out["all"] == pytest.approx(0.5) and out["easy"] == 1.0 and out["hard"] == 0.0
    assert coverage(real, syn, radius=25.0)["all"] == 1.0


def test_chunking_matches_dense():
    g = torch.Generator().manual_seed(0)
    real, syn = torch.randn(1000, 8, generator=g), torch.randn(300, 8, generator=g)
    dense = torch.cdist(real.double(), syn.double()).min(1).values
    assert torch.allclose(nearest_distance(real, syn, chunk=77), dense)
    d = torch.cdist(real.double(), real.double())
    d.fill_diagonal_(float("inf"))
    assert coverage_radius(real, chunk=64) == pytest.approx(d.min(1).values.mean().item())


def test_shape_errors():
    with pytest.raises(ValueError, match="equal D"):
        coverage(torch.zeros(3, 2), torch.zeros(3, 4))
