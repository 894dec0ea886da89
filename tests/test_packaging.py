"""The project's files agree with each other: pyproject, environment.yml, README, Makefile, CI."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(req: str) -> str:
    return re.sub(r"\s+", "", req).lower().replace("_", "-")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        wanted |= {_norm(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_norm(r) for r in pip} == wanted


def test_torch_pins_accept_the_local_build():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for name, local in (("torch", (2, 14, 1)), ("torchvision", (0, 29, 1))):
        spec = next(_norm(d) for d in deps if re.match(rf"{name}\b(?!-)", _norm(d)) and not _norm(d).startswith(name + "v"))
        for op, ver in re.findall(r"(>=|<=|==|<|>)([\d.]+)", spec):
            v = tuple(int(p) for p in ver.split("."))
            ok = {">=": local >= v, "<=": local <= v, "==": local[:len(v)] == v, "<": local < v, ">": local > v}[op]
            assert ok, f"{name} spec {spec!r} rejects the local {local}"


def test_ci_and_makefile_wiring():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "set -euo pipefail" in ci and "make test" in ci and "SELMATCH_DATA" in ci
    make = (ROOT / "Makefile").read_text()
    assert re.search(r"^test:", make, re.M) and re.search(r"^book:", make, re.M)
    assert "selmatch.companion.book build" in make               # which builds the HTML with warnings as errors:
    build = (ROOT / "selmatch" / "companion" / "book.py").read_text().split("def build(", 1)[1].split("\ndef ", 1)[0]
    assert all(f'"{flag}"' in build for flag in ("-n", "-W", "--keep-going"))


def test_toc_files_exist():
    """Every page in the table of contents is a written page, a notebook source that `make book`
    executes into book/notebooks/, or the status page that the same step writes."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    for f in files:
        if f.startswith("book/notebooks/"):
            assert (ROOT / "notebooks" / f"{f.split('/')[-1]}.md").exists(), f
        elif f in ("book/status", "book/paper"):       # written by the execute step of `make book`
            assert f'"{f.split("/")[-1]}.md"' in (ROOT / "selmatch" / "companion" / "book.py").read_text(), f
        else:
            assert (ROOT / f"{f}.md").exists(), f
    sources = sorted(p.stem for p in (ROOT / "notebooks").glob("*.md"))
    assert sources == sorted(f.split("/")[-1] for f in files if f.startswith("book/notebooks/"))


def _imports(path: Path, package: str) -> set[str]:
    """The selmatch modules ``path`` imports (absolute and relative, at any depth of the file)."""
    import ast

    here = package.split(".")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("selmatch")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[:len(here) - node.level + 1] + ([base] if base else []))
            if not base.startswith("selmatch"):
                continue
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}     # `from . import pipeline` names a module
    return found


def test_import_graph_has_no_cycle():
    """No module of the package imports itself through others, lazily or not (a lazy import hides a cycle
    from Python but not from a reader)."""
    modules = {}
    for path in (ROOT / "selmatch").rglob("*.py"):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        package = name if rel.name == "__init__" else ".".join(rel.parts[:-1])
        modules[name] = (path, package)
    graph = {name: {m for m in _imports(path, pkg) if m in modules and m != name}
             for name, (path, pkg) in modules.items()}
    # a package's __init__ may re-export its modules; the cycle that matters runs between modules
    graph = {n: {m for m in deps if not (n.startswith(m + ".") and modules[m][0].name == "__init__.py")}
             for n, deps in graph.items()}
    assert graph["selmatch.distill"] and "selmatch.student" in graph["selmatch.distill"]    # the graph is real
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(dep):] + [node, dep]))
            if dep not in state:
                visit(dep, stack + [node])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [])


PYTHON_BLOCKS = [(path, i, code) for path in [ROOT / "README.md", *sorted((ROOT / "book").glob("*.md"))]
                 for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", path.read_text(), re.M | re.S))]


@pytest.mark.parametrize("path,index,code", PYTHON_BLOCKS, ids=[f"{p.name}-{i}" for p, i, _ in PYTHON_BLOCKS])
def test_python_blocks_run_as_printed(path, index, code, tmp_path, shared_cache):
    """Each Python block of the README and the book's pages runs as printed (with the shared data where it
    loads CIFAR-10; a block that reads the book's results reads the committed ones, offline, with no data,
    so it fails if it would compute anything)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, SELMATCH_CACHE=str(shared_cache), SELMATCH_OFFLINE="1")
    if "env_context" in code:
        env.update(SELMATCH_RESULTS=str(ROOT / "results"), SELMATCH_RUNS=str(tmp_path / "runs"))
        env.pop("SELMATCH_DATA", None)
    elif "cifar10" in code:
        if not os.environ.get("SELMATCH_DATA_SHARED"):
            pytest.skip("needs the shared offline data (SELMATCH_DATA)")
        env["SELMATCH_DATA"] = os.environ["SELMATCH_DATA_SHARED"]
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    if "window alone" in code:      # the library page's example says both sets end far above chance (10 %)
        accs = [float(a) for a in re.findall(r"(\d+\.\d+) ± ", r.stdout)]
        assert len(accs) == 2 and min(accs) > 30, r.stdout


def test_no_reference_to_a_document_outside_the_repository():
    """The paper's facts are a page of the book (book/paper.md, written from selmatch/companion/paper.py and
    the settings); nothing points to the team's own notes or issue numbers, which readers do not have."""
    files = [*ROOT.glob("selmatch/**/*.py"), *ROOT.glob("notebooks/*.md"), *ROOT.glob("book/*.md"), ROOT / "README.md",
             *ROOT.glob("tests/*.py"), *ROOT.glob("benchmarks/*.py")]
    hits = [f"{f.relative_to(ROOT)}:{i}" for f in files if f.name != "test_packaging.py"
            for i, line in enumerate(f.read_text().splitlines(), 1)
            if re.search(r"\bFACTS\b|\b[Ii]ssues? ?#?\d+\b", line)]
    assert not hits, hits
