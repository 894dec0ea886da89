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
