"""selmatch.cluster: independent work as Ray tasks gives the numbers the serial run gives.

These start a local Ray of 2 CPUs (skipped where the ``ray`` extra is not installed). The serial reference
runs with one torch thread, as a task does, so both compute the same floating-point operations.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def local_ray():
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])   # workers run this module's helpers
    old = {k: os.environ.get(k) for k in ("SELMATCH_RAY", "SELMATCH_RAY_CPUS")}
    os.environ.update(SELMATCH_RAY="auto", SELMATCH_RAY_CPUS="2")
    yield
    ray.shutdown()
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _serial(fn):
    """``fn()`` with Ray off, on one thread."""
    saved = os.environ.pop("SELMATCH_RAY", None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(threads)
        if saved is not None:
            os.environ["SELMATCH_RAY"] = saved


def _data(n_per_class: int = 8, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(10 * n_per_class, 3, 16, 16, generator=g)
    y = torch.arange(10).repeat_interleave(n_per_class)
    return x, y


def test_off_by_default_is_a_plain_loop(monkeypatch):
    from selmatch import cluster

    monkeypatch.delenv("SELMATCH_RAY", raising=False)
    assert not cluster.enabled()
    assert cluster.map(lambda i, k: i * k, [1, 2, 3], shared={"k": 10}) == [10, 20, 30]
    for off in ("", "0", "off"):
        monkeypatch.setenv("SELMATCH_RAY", off)
        assert not cluster.enabled()


def test_experts_through_ray_equal_serial_bit_for_bit(local_ray, tmp_path):
    from selmatch import ExpertConfig, load_trajectory, train_experts

    x, y = _data()
    cfg = ExpertConfig(model="convnet", width=8, num_experts=3, epochs=2, batch_size=32)
    serial = _serial(lambda: train_experts(x, y, x, y, cfg, tmp_path / "serial", seed=3, num_classes=10, progress=False))
    on_ray = train_experts(x, y, x, y, cfg, tmp_path / "ray", seed=3, num_classes=10, progress=False)
    assert [p.name for p in serial] == [p.name for p in on_ray] == ["expert_0000.pt", "expert_0001.pt", "expert_0002.pt"]
    for a, b in zip(serial, on_ray):
        ta, tb = load_trajectory(a), load_trajectory(b)
        assert len(ta.params) == len(tb.params) == 3
        assert all(torch.equal(p, q) for p, q in zip(ta.params, tb.params))


def test_evaluation_runs_through_ray_equal_serial(local_ray):
    from selmatch import TrainConfig, evaluate

    x, y = _data()
    cfg = TrainConfig(model="convnet", width=8, epochs=2, batch_size=32, augmentation="dsa")
    kw = dict(runs=3, seed=5, num_classes=10, progress=False)
    serial = _serial(lambda: evaluate(x, y, x, y, cfg, **kw))
    on_ray = evaluate(x, y, x, y, cfg, **kw)
    assert on_ray.runs == serial.runs and len(on_ray.runs) == 3


def test_a_page_unit_through_ray_equals_the_in_process_one(local_ray, tmp_path, monkeypatch):
    """``cache.run`` computes missing jobs as tasks (each writes its own result file); the records it returns
    equal the ones computed in this process."""
    from selmatch.companion import units

    def ctx(name):
        return units.Context(profile="smoke", dataset="mnist5k", results=str(tmp_path / name / "results"),
                             runs=str(tmp_path / name / "runs"))

    serial = _serial(lambda: units.random_eval(ctx("serial"), 5))
    from selmatch.companion.cache import run

    run([units.random_eval.job(ctx("ray"), 5), units.random_eval.job(ctx("ray"), 6)])
    files = list((tmp_path / "ray" / "results").rglob("random-*.json"))
    assert len(files) == 2                                       # written by the tasks
    on_ray = units.random_eval(ctx("ray"), 5)                   # read back, not computed
    assert on_ray["key"] == serial["key"] and on_ray["result"]["runs"] == serial["result"]["runs"]


def _dies_once(k: int, marker_dir: str) -> int:
    """A task body whose worker dies the first time it runs for ``k`` (as a lost machine would)."""
    marker = Path(marker_dir) / f"attempt-{k}"
    if not marker.exists():
        marker.write_text("1")
        os._exit(1)
    return k * k


def test_a_task_whose_worker_dies_is_retried(local_ray, tmp_path):
    from selmatch import cluster

    assert cluster.map(_dies_once, [1, 2, 3], shared={"marker_dir": str(tmp_path)}, progress=False) == [1, 4, 9]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attempt-1", "attempt-2", "attempt-3"]


def test_an_expert_whose_worker_dies_is_retrained_and_equal(local_ray, tmp_path, monkeypatch):
    """The worker training expert 1 dies before writing it; Ray runs that task again and the folder ends up
    equal to the serial one, with no half-written file."""
    from selmatch import ExpertConfig, experts, load_trajectory, train_experts

    x, y = _data()
    cfg = ExpertConfig(model="convnet", width=8, num_experts=2, epochs=1, batch_size=32)
    serial = _serial(lambda: train_experts(x, y, x, y, cfg, tmp_path / "serial", seed=0, num_classes=10, progress=False))
    original = experts._train_and_save
    marker = tmp_path / "died"

    def dying(k, *args, **kwargs):
        if k == 1 and not marker.exists():
            marker.write_text("1")
            os._exit(1)
        return original(k, *args, **kwargs)

    monkeypatch.setattr(experts, "_train_and_save", dying)
    on_ray = train_experts(x, y, x, y, cfg, tmp_path / "ray", seed=0, num_classes=10, progress=False)
    assert marker.exists()
    for a, b in zip(serial, on_ray):
        assert all(torch.equal(p, q) for p, q in zip(load_trajectory(a).params, load_trajectory(b).params))
    assert not list((tmp_path / "ray").glob("*.tmp*"))


def _fails(k: int) -> int:
    raise ValueError(f"k={k} is not accepted")


def test_a_tasks_error_is_raised_as_itself(local_ray):
    from selmatch import cluster

    with pytest.raises(ValueError, match="k=2 is not accepted"):
        cluster.map(_fails, [2], progress=False, retries=0)


def test_every_entry_point_refuses_a_missing_device_on_ray_too(local_ray, tmp_path):
    from selmatch import TrainConfig, evaluate

    x, y = _data(2)
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises((ValueError, RuntimeError), match="cuda"):
        evaluate(x, y, x, y, TrainConfig(model="convnet", width=4, epochs=1), runs=2, num_classes=10, device="cuda")
