"""selmatch.artifacts: every file selmatch writes round-trips, carries its format, and a foreign, damaged
or wrong-kind file is one clear error."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from selmatch.artifacts import (ArtifactError, Trajectory, atomic_write, load_checkpoint, load_score_record,
                                load_selection, load_synset, load_trajectory, read_training_file, save_checkpoint,
                                save_score_record, save_selection, save_synset, save_trajectory)
from selmatch.select import Selection, sliding_window


def a_selection():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat_interleave(20)
    return sliding_window(torch.rand(60, generator=g).double(), labels, 6, 0.25, 0.5)


def test_selection_round_trip(tmp_path):
    sel = a_selection()
    save_selection(sel, tmp_path / "sel.npz", dataset="toy")
    back = load_selection(tmp_path / "sel.npz")
    assert torch.equal(back.select_idx, sel.select_idx) and torch.equal(back.distill_idx, sel.distill_idx)
    assert torch.equal(back.scores, sel.scores)
    assert back.params["dataset"] == "toy" and back.params["beta"] == 0.25
    with np.load(tmp_path / "sel.npz") as z:
        assert str(z["format"]) == "selmatch-selection/1"
    assert isinstance(read_training_file(tmp_path / "sel.npz"), Selection)


def test_synset_round_trip_and_kind_check(tmp_path):
    x, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 1, 0, 1])
    flags = torch.tensor([False, False, True, True])
    save_synset(tmp_path / "s.npz", x, y, flags, torch.arange(4), 0.01, {"dataset": "toy"})
    s = load_synset(tmp_path / "s.npz")
    assert torch.equal(s.images, x) and torch.equal(s.labels, y) and torch.equal(s.is_distilled, flags)
    assert s.syn_lr == pytest.approx(0.01) and s.config == {"dataset": "toy"}
    save_selection(a_selection(), tmp_path / "sel.npz")
    with pytest.raises(ArtifactError, match="a selection file, not a synset file"):
        load_synset(tmp_path / "sel.npz")


def test_selections_written_before_formats_are_still_read(tmp_path):
    np.savez(tmp_path / "old.npz", select_idx=np.arange(3), distill_idx=np.arange(3, 5),
             params=np.array(json.dumps({"ipc": 5})))
    assert load_selection(tmp_path / "old.npz").params == {"ipc": 5}


def test_foreign_and_future_files(tmp_path):
    np.savez(tmp_path / "x.npz", weights=np.zeros(3))
    with pytest.raises(ArtifactError, match="neither a selection .* nor a synthetic set"):
        read_training_file(tmp_path / "x.npz")
    with pytest.raises(ArtifactError, match=r"not a selection file \(missing select_idx, distill_idx"):
        load_selection(tmp_path / "x.npz")
    np.savez(tmp_path / "new.npz", format=np.array("selmatch-selection/9"), select_idx=np.arange(2),
             distill_idx=np.arange(0))
    with pytest.raises(ArtifactError, match="selection format version 9; this selmatch reads version 1"):
        load_selection(tmp_path / "new.npz")
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArtifactError, match="bad.npz: not a readable selection file"):
        load_selection(tmp_path / "bad.npz")
    with pytest.raises(FileNotFoundError, match="write one with `selmatch select`"):
        load_selection(tmp_path / "missing.npz")


class Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_pt_files_never_run_code_and_damage_is_one_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    torch.save({"names": Payload()}, tmp_path / "evil.pt")
    with pytest.raises(ArtifactError, match="evil.pt is damaged or not a selmatch file") as err:
        load_trajectory(tmp_path / "evil.pt")
    assert not (tmp_path / "PWNED").exists() and "weights_only=False" not in str(err.value)
    (tmp_path / "cut.pt").write_bytes(b"\x80\x02garbage")
    with pytest.raises(ArtifactError, match="checkpoint file .*cut.pt is damaged"):
        load_checkpoint(tmp_path / "cut.pt")
    save_checkpoint(tmp_path / "ck.pt", {"iteration": 3})
    with pytest.raises(ArtifactError, match="not a distillation checkpoint \\(missing x_distill"):
        load_checkpoint(tmp_path / "ck.pt")
    traj = Trajectory(["w"], [[2, 3]], torch.zeros(4, 6), [1.0, 2.0, 3.0])
    save_trajectory(traj, tmp_path / "e.pt", {"k": 1})
    with pytest.raises(ArtifactError, match="a trajectory file, not a checkpoint file"):
        load_checkpoint(tmp_path / "e.pt")
    assert load_trajectory(tmp_path / "e.pt").epochs == 3


def test_score_record_round_trip(tmp_path):
    save_score_record(tmp_path / "s.npz", {"scores": np.arange(5.0), "forgetting_test": np.ones(2)}, {"seed": 1})
    rec = load_score_record(tmp_path / "s.npz")
    assert rec["scores"].tolist() == [0, 1, 2, 3, 4] and rec["params"] == {"seed": 1}


def test_atomic_write_leaves_nothing_behind_on_failure(tmp_path):
    target = tmp_path / "deep" / "out.txt"
    atomic_write(target, lambda p: p.write_text("first"))

    def half(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, half)
    assert target.read_text() == "first" and sorted(os.listdir(target.parent)) == ["out.txt"]


def test_temporary_files_of_a_killed_run_are_removed_by_the_next(tmp_path):
    stale = tmp_path / ".out.txt.tmp4242"                  # what a SIGKILL mid-write leaves behind
    stale.write_text("half")
    atomic_write(tmp_path / "out.txt", lambda p: p.write_text("done"))
    assert sorted(os.listdir(tmp_path)) == ["out.txt"]


def test_an_8bit_download_reads_back_as_the_set_to_within_one_grey_level(tmp_path):
    """A download stores pixels as 8 bits with the mean/std that normalise them: read back, each image equals the
    original to within half a grey level where it lay inside the real range, and is clipped where it did not (the
    clipped fraction is written in its config); a file without its mean/std is one clear error."""
    from selmatch.artifacts import SynSet, load_synset, save_synset_uint8

    mean, std = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)
    g = torch.Generator().manual_seed(0)
    raw = torch.rand(6, 3, 4, 4, generator=g)
    raw[0, 0, 0, 0], raw[1, 2, 3, 3] = 1.7, -0.4                       # two distilled pixels outside [0, 1]
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    syn = SynSet((raw - m) / s, torch.arange(6) % 3, torch.arange(6) >= 2, torch.arange(6) * 7, 0.01, {"ipc": 2})
    info = save_synset_uint8(tmp_path / "d.npz", syn, mean, std, profile="cpu")
    back = load_synset(tmp_path / "d.npz")
    assert back.images.dtype == torch.float32 and torch.equal(back.labels, syn.labels)
    assert torch.equal(back.is_distilled, syn.is_distilled) and torch.equal(back.source_idx, syn.source_idx)
    pixels = back.images * s + m
    assert (pixels - raw.clamp(0, 1)).abs().max() <= 0.5 / 255 + 1e-6
    assert pixels[0, 0, 0, 0] == 1.0 and pixels[1, 2, 3, 3] == 0.0
    assert info["clipped"] == pytest.approx(2 / raw.numel()) and back.config["uint8_clipped_fraction"] == info["clipped"]
    assert back.config["ipc"] == 2 and back.config["profile"] == "cpu" and info["bytes"] == (tmp_path / "d.npz").stat().st_size
    with np.load(tmp_path / "d.npz") as z:
        arrays = {k: z[k] for k in z.files if k not in ("mean", "std")}
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ArtifactError, match="without the mean and std"):
        load_synset(tmp_path / "bad.npz")
