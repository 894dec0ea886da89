"""selmatch.companion.units: the book's cached units."""
from __future__ import annotations

import pytest
import torch


def test_window_that_does_not_fit_is_cached_so_a_rebuild_needs_no_data(tmp_path, monkeypatch):
    """best_beta skips windows that overflow the class; without data that must be known from the cache."""
    import types

    from selmatch.companion import units as experiments

    y = torch.arange(10).repeat_interleave(10)             # 10 images per class
    fake = types.SimpleNamespace(y_train=y, num_classes=10, source="fake", fingerprint="0" * 64)
    monkeypatch.setattr(experiments, "dataset", lambda name: fake)
    monkeypatch.setattr(experiments, "hardness", lambda ctx, score: torch.rand(len(y)))
    ctx = experiments.Context(profile="smoke", dataset="cifar10", results=str(tmp_path / "results"),
                              runs=str(tmp_path / "runs"))
    with pytest.raises(ValueError, match="beta"):
        experiments.window_eval(ctx, 5, 0.8)               # 0.8 * 10 + 5 > 10
    assert len(list((tmp_path / "results").rglob("window-*.json"))) == 1

    def no_data(name):
        raise FileNotFoundError("no data here")

    monkeypatch.setattr(experiments, "dataset", no_data)
    with pytest.raises(ValueError, match="beta"):          # from the cache: no data needed
        experiments.window_eval(ctx, 5, 0.8)
