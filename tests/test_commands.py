"""Every command the README and the book print runs, as printed, at the smallest scale that exercises it.

What counts as printed: each line of a ``bash`` block in ``README.md``, ``book/*.md`` and
``notebooks/*.md`` (continuation lines joined, comments dropped), and the "Rerun this page" commands each
page prints (:func:`selmatch.companion.report.page_commands`, for every page at ``smoke`` and ``cpu``).
A command in running prose that reruns a page (``selmatch rerun ...``, ``papermill X.ipynb ...``) must be one
of those.

How each is run (the first rule that matches; a command no rule matches fails the test):

* ``make TARGET`` -- ``make -n TARGET``: the target exists and what it would run (what ``make book`` does to
  each page, executing it from the committed results with no data, is what each page's own
  ``selmatch rerun NAME --profile P --reuse`` does, and that runs as printed);
* a GPU command (``--device cuda``) -- ``selmatch rerun`` with ``--prepare-only``; the GPU check with
  ``--device cpu --tiny`` into a temporary folder;
* ``selmatch rerun ... --reuse`` with no changed parameter -- executed as printed, offline and with no data: it
  must compute nothing (a committed result that no longer matches its page's configuration fails here);
* any other ``selmatch rerun`` and ``papermill`` -- with ``--prepare-only`` (the parameters are injected and
  checked, the notebook is not executed: at ``cpu`` it would take hours);
* ``VAR=value`` before a command sets it for that command;
* everything else (``jupytext``, ``ray start`` / ``ray stop``, the README's ``selmatch`` subcommands at
  ``smoke``) -- as printed.

Commands run in a fresh folder that has ``notebooks/`` (a link to the repository's), so relative paths
resolve as from the repository root and nothing is written into the repository.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from selmatch.companion.book import ROOT, page_parameters, profiled_pages

SOURCES = [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md")), *sorted((ROOT / "notebooks").glob("*.md"))]
PAGE_PROFILES = ("smoke", "cpu")


def bash_blocks(path: Path) -> list[list[str]]:
    """The commands of each ``bash`` block of a markdown file."""
    blocks = []
    for body in re.findall(r"^[ \t]*```bash\n(.*?)^[ \t]*```", path.read_text(), re.M | re.S):
        body = re.sub(r"\\\n\s*", " ", body)                         # continuation lines
        cmds = [re.sub(r"\s+#.*$", "", line).strip() for line in body.splitlines()]
        blocks.append([c for c in cmds if c and not c.startswith("#")])
    return blocks


def printed_blocks() -> list[tuple[str, list[str]]]:
    out = [(f"{p.relative_to(ROOT)} block {i}", b) for p in SOURCES for i, b in enumerate(bash_blocks(p))]
    from selmatch.companion.report import page_commands

    for name in profiled_pages():
        dataset = page_parameters(name, "cpu").get("dataset") or _default(name, "dataset")
        for profile in PAGE_PROFILES:
            out += [(f"page {name} at {profile}", [cmd]) for _, cmd in page_commands(name, profile, dataset)]
    return out


def _default(name: str, param: str):
    import jupytext

    cell = next(c for c in jupytext.read(ROOT / "notebooks" / f"{name}.md").cells
                if "parameters" in c.metadata.get("tags", []))
    ns: dict = {}
    exec(cell.source, {}, ns)
    return ns.get(param)


BLOCKS = printed_blocks()


def test_commands_in_prose_are_printed_ones():
    printed = {c for _, b in BLOCKS for c in b}
    for path in SOURCES:
        for span in re.findall(r"`([^`\n]+)`", path.read_text()):
            if re.match(r"(env -u \S+ )?selmatch rerun \w", span) or (span.startswith("papermill ") and ".ipynb" in span):
                assert span in printed, f"{path.name}: `{span}` is a command no test runs; put it in a bash block"


def _env(cwd: Path) -> dict:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    shared = os.environ.get("SELMATCH_DATA_SHARED")
    if shared:
        env["SELMATCH_DATA"] = shared
    return env


def _injected(notebook: Path) -> dict:
    nb = json.loads(notebook.read_text())
    cell = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    ns: dict = {}
    exec("".join(cell["source"]), {}, ns)
    return ns


def _expected_rerun(argv: list[str], cwd: Path) -> tuple[str, dict]:
    """What ``selmatch rerun`` should inject for ``argv`` (read from the command, not from the rerun code)."""
    name = next(n for n in profiled_pages() + ["00_quickstart", "07_gpu_cost"] if n.startswith(argv[2].split("_")[0]))
    profile = argv[argv.index("--profile") + 1] if "--profile" in argv else None
    if "--params" in argv:
        given = yaml.safe_load((cwd / argv[argv.index("--params") + 1]).read_text())
        if profile:
            given["profile"] = profile
    else:
        given = page_parameters(name, profile or "cpu")
    for i, a in enumerate(argv):
        if a == "-p":
            given[argv[i + 1]] = yaml.safe_load(argv[i + 2])
    if "--device" in argv:
        given["device"] = argv[argv.index("--device") + 1]
    return name, given


def run_command(cmd: str, cwd: Path, tmp: Path) -> None:
    argv = shlex.split(cmd)
    env = _env(cwd)
    if argv[:2] == ["env", "-u"]:
        env.pop(argv[2], None)
        argv = argv[3:]
    while argv and re.fullmatch(r"[A-Z_]+=\S*", argv[0]) and not argv[0].startswith("PYTHONPATH="):
        key, value = argv.pop(0).split("=", 1)            # VAR=value command ...
        env[key] = value
    rerun = argv[:2] == ["selmatch", "rerun"]
    if argv[0] == "make":
        argv = ["make", "-n", *argv[1:]]
        cwd = ROOT
    elif "--device" in argv and argv[argv.index("--device") + 1].startswith("cuda"):
        if rerun:
            argv = [*argv, "--prepare-only"]
        elif argv[:3] == ["python", "-m", "benchmarks.gpu"] or cmd.startswith("PYTHONPATH=. python -m benchmarks.gpu"):
            argv = [sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--tiny", "--out", str(tmp / "gpu")]
            env["PYTHONPATH"] = str(ROOT)
            cwd = ROOT
        else:
            pytest.fail(f"no rule runs the GPU command {cmd!r}")
    elif rerun and "--reuse" in argv and "-p" not in argv:
        env["SELMATCH_OFFLINE"] = "1"
        env.pop("SELMATCH_DATA", None)           # cached pages need no data
        env["SELMATCH_CACHE_LOG"] = str(tmp / "cache.log")
    elif rerun or (argv[0] == "papermill" and "--help-notebook" not in argv):
        argv = [*argv, "--prepare-only"]
    elif argv[:2] in (["ray", "start"], ["ray", "stop"]):
        pass                                          # a local Ray head, started and stopped as printed
    elif argv[0] not in ("jupytext", "selmatch", "papermill") and not argv[0].endswith("/selmatch"):
        pytest.fail(f"no rule runs {cmd!r}")
    if argv[0].startswith(".venv/bin/"):
        argv[0] = str(Path(sys.executable).parent / argv[0].split("/")[-1])
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"{cmd!r} (run as {argv}) failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    if rerun:
        out = Path(r.stdout.strip().splitlines()[-1].split(": ", 1)[1])
        assert out.is_file() and tmp in out.parents, out
        name, expected = _expected_rerun(shlex.split(cmd)[shlex.split(cmd).index("selmatch"):], cwd)
        got = _injected(out)
        assert got == expected, (cmd, got, expected)
        if "--reuse" in argv and "--prepare-only" not in argv:
            used = [json.loads(line) for line in (tmp / "cache.log").read_text().splitlines()] \
                if (tmp / "cache.log").exists() else []
            computed = [u for u in used if not u["cached"]]
            assert not computed, f"{cmd!r} computed {[u['name'] for u in computed]}: committed results are missing"
            nb = json.loads(out.read_text())
            errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
            assert not errors, errors


@pytest.mark.parametrize("where,commands", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_printed_command_runs(where, commands, tmp_path):
    if any("selmatch select" in c or "selmatch data cifar10" in c for c in commands) and \
            not os.environ.get("SELMATCH_DATA_SHARED"):
        pytest.skip("needs the shared CIFAR-10 (SELMATCH_DATA)")
    work = tmp_path / "work"
    work.mkdir()
    (work / "notebooks").symlink_to(ROOT / "notebooks")
    try:
        for cmd in commands:
            run_command(cmd, work, tmp_path)
    finally:            # a Ray head the block started is stopped even when a command of the block failed
        stops = [c for c in commands if c.split()[:2] == ["ray", "stop"]]
        if stops and any(c.split()[:2] == ["ray", "start"] for c in commands):
            ray = Path(sys.executable).with_name("ray")
            subprocess.run([str(ray) if ray.exists() else "ray", "stop"], cwd=work, capture_output=True, timeout=300)


def test_params_files_are_the_settings():
    """``notebooks/params/*.yaml`` (linked from every page) hold the grids of ``selmatch.settings``."""
    r = subprocess.run([sys.executable, "-m", "selmatch.companion.book", "params", "--check"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr + "\n(regenerate: python -m selmatch.companion.book params)"


def test_rerun_refuses_bad_input_before_any_work(tmp_path, capsys):
    from selmatch.cli import main

    for argv, message in ((["rerun", "55"], "notebook='55' is not one of the book's notebooks"),
                          (["rerun", "05", "-p", "width", "3"], "05_main_results has no parameter width"),
                          (["rerun", "05", "--params", str(tmp_path / "none.yaml")], "is not a file"),
                          (["rerun", "05", "--profile", "gpu"], "profile='gpu' is unknown")):
        assert main([*argv, "--into", str(tmp_path / "r")]) == 2
        assert message in capsys.readouterr().err, argv
    assert not (tmp_path / "r").exists()
