"""Every notebook executes top to bottom at profile=smoke on a fresh kernel, computing from scratch."""
from __future__ import annotations

import json
import os
import re

import pytest

from selmatch.companion.book import MEASUREMENTS, QUICKSTART, ROOT, execute, notebook_sources

NOTEBOOKS = [p.stem for p in notebook_sources()]
NEEDS_DATA = {"06_tinyimagenet": "tinyimagenet_c10_train.npz"}


def test_every_analysis_has_a_notebook_with_parameters():
    assert NOTEBOOKS[:8] == ["00_quickstart", "01_scores", "02_sliding_window", "03_coverage", "04_ablations",
                             "05_main_results", "06_tinyimagenet", "07_gpu_cost"]
    for name in NOTEBOOKS:
        text = (ROOT / "notebooks" / f"{name}.md").read_text()
        assert ":tags: [parameters]" in text and "kernelspec:" in text, name
        if name not in (QUICKSTART, MEASUREMENTS):
            assert 'profile = "smoke"' in text and "device =" in text and "seed =" in text, name


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_at_smoke(name, tmp_path, monkeypatch, shared_cache):
    if name not in (QUICKSTART, MEASUREMENTS):
        data = os.environ.get("SELMATCH_DATA_SHARED")
        if not data:
            pytest.skip("needs the shared offline data (SELMATCH_DATA)")
        monkeypatch.setenv("SELMATCH_DATA", data)
        monkeypatch.setenv("SELMATCH_CACHE", str(shared_cache))
        if name in NEEDS_DATA and not os.path.exists(os.path.join(data, NEEDS_DATA[name])):
            pytest.skip(f"needs {NEEDS_DATA[name]} in SELMATCH_DATA")
    monkeypatch.setenv("SELMATCH_RESULTS", str(tmp_path / "results"))
    monkeypatch.setenv("SELMATCH_RUNS", str(tmp_path / "runs"))
    out = tmp_path / f"{name}.ipynb"
    row = execute(ROOT / "notebooks" / f"{name}.md", out,
                  {} if name in (QUICKSTART, MEASUREMENTS) else {"profile": "smoke"})
    assert row["error"] is None, row["error"]
    nb = json.loads(out.read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) or "text/markdown" in o.get("data", {}) for o in outputs)
    if name not in (QUICKSTART, MEASUREMENTS):
        assert row["computed"] > 0   # computed from scratch, not read from a committed cache


def test_notebook_grids_name_real_parameters():
    """Every value of selmatch.settings.NOTEBOOK_GRIDS fills a parameter the notebook defines as None,
    and every None parameter of a notebook has a value at every profile."""
    import re

    from selmatch.settings import NOTEBOOK_GRIDS, PROFILES

    assert set(NOTEBOOK_GRIDS) == set(PROFILES)
    for profile, by_notebook in NOTEBOOK_GRIDS.items():
        for name in NOTEBOOKS:
            if name == QUICKSTART:
                continue
            text = (ROOT / "notebooks" / f"{name}.md").read_text()
            cell = text.split(":tags: [parameters]", 1)[1].split("```", 1)[0]
            nones = set(re.findall(r"^(\w+)\s*=\s*None\b", cell, re.M))
            assert set(by_notebook.get(name, {})) == nones, (profile, name, nones ^ set(by_notebook.get(name, {})))
            if nones:
                assert f'notebook_parameters("{name}", profile' in text, name


def _conforms(value, typ: str) -> bool:
    """Whether ``value`` has the type a parameters cell declares (``int``, ``list[float]``, ...)."""
    if typ.startswith("list[") and typ.endswith("]"):
        return isinstance(value, list) and all(_conforms(v, typ[5:-1]) for v in value)
    if typ == "bool":
        return isinstance(value, bool)
    kinds = {"int": int, "float": (int, float), "str": str, "dict": dict}
    return isinstance(value, kinds[typ]) and not isinstance(value, bool)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_help_notebook_lists_every_parameter_with_its_type_and_help(name, tmp_path):
    """``papermill --help-notebook`` shows each parameter with a type and a line of help, and the type is what
    the default and every profile's grid value actually are."""
    import jupytext
    import papermill

    from selmatch.settings import NOTEBOOK_GRIDS

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    defaults: dict = {}
    exec(cell.source, {}, defaults)
    jupytext.write(nb, tmp_path / f"{name}.ipynb")
    shown = papermill.inspect_notebook(str(tmp_path / f"{name}.ipynb"))
    assert list(shown) == list(defaults), name          # none is lost to papermill's parser
    for param, info in shown.items():
        typ = info["inferred_type_name"]
        assert typ != "None" and info["help"].strip(), (name, param, info)
        values = [defaults[param]] + [grids[name][param] for grids in NOTEBOOK_GRIDS.values()
                                      if param in grids.get(name, {})]
        for v in values:
            assert v is None or _conforms(v, typ), (name, param, typ, v)


def test_help_notebook_prints_types(tmp_path):
    import subprocess
    import sys

    import jupytext

    jupytext.write(jupytext.read(ROOT / "notebooks" / "02_sliding_window.md"), tmp_path / "02.ipynb")
    out = subprocess.run([sys.executable, "-m", "papermill", "--help-notebook", str(tmp_path / "02.ipynb")],
                         capture_output=True, text=True, check=True).stdout
    assert "code_betas: list[float] (default None)" in out and "Unknown type" not in out, out


# A result typed into prose: a decimal percentage or point difference, a value with ±, or a coverage-like
# fraction with three decimals. Ratios ("5 %") and settings ("β = 0.6") are not results.
HAND_TYPED = re.compile(r"[−+-]?\d+\.\d+\s*(?:%|points?\b)|±\s*\d|\b0\.\d{3}\b")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_no_result_is_typed_into_a_notebooks_prose(name):
    """Numbers in a page's text come from its results (printed by code cells), never typed by hand."""
    import jupytext

    nb = jupytext.read(ROOT / "notebooks" / f"{name}.md")
    typed = [(m.group(0), line.strip()[:90]) for c in nb.cells if c.cell_type == "markdown"
             for line in c.source.splitlines() for m in HAND_TYPED.finditer(line)]
    assert not typed, f"{name}: results typed into prose (print them from the results instead): {typed}"


def test_no_page_types_a_value_of_its_own_grid_in_its_prose():
    """The class of error that kept coming back: prose stating a parameter value the page did not run (α "fixed
    at 0.25" where the page chose from two). A page's prose (outside code, before its exercises) may not type a
    value of its grid next to the parameter's symbol, at any profile; such sentences are generated from the
    page's parameters. The definitional endpoints α = 0 and α = 1 are allowed."""
    import re

    from selmatch.settings import NOTEBOOK_GRIDS, page_grid

    symbol = {"alpha": "α", "alphas": "α", "alpha_fixed": "α", "beta": "β", "betas": "β", "code_betas": "β",
              "ipcs": "IPC", "large_ipcs": "IPC", "small_ipcs": "IPC", "budget_ipcs": "IPC", "distill_ipcs": "IPC"}

    def values(v):
        if isinstance(v, list):
            for x in v:
                yield from values(x)
        elif isinstance(v, (int, float)) and not isinstance(v, bool) and v not in (0, 1):
            yield v

    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9]*.md")):
        prose = re.sub(r"```.*?```", "", path.read_text(), flags=re.S).split("## Exercises")[0]
        for profile in NOTEBOOK_GRIDS:
            if path.stem not in NOTEBOOK_GRIDS[profile]:
                continue
            for name, v in page_grid(path.stem, profile).items():
                for x in set(values(v)) if name in symbol else ():
                    typed = re.compile(rf"{symbol[name]}\s*(=|≈|of|is|fixed at|∈\s*\{{[^}}]*)?\s*{re.escape(str(x))}(?![\d.])")
                    found += [f"{path.name} ({profile}, {name}): …{m.group(0)}…" for m in typed.finditer(prose)]
    assert not found, "prose types a value of the page's grid (generate the sentence instead):\n" + "\n".join(found)
