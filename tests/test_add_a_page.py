"""The library page's "Add a page in five steps", followed as printed in a copy of the repository: the page module,
the notebook, the grid, the table-of-contents line and the two commands; the new page executes at ``smoke``."""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from selmatch.companion.book import ROOT


def _steps() -> list[str]:
    text = (ROOT / "book" / "library.md").read_text()
    section = text[text.index("## Add a page in five steps"):text.index("## How the modules implement the method")]
    return re.findall(r"^(`{3,4})\{code-block\} \w+\n(.*?)^\1$", section, re.M | re.S)


def test_the_five_steps_are_printed():
    blocks = [b for _, b in _steps()]
    assert len(blocks) == 4 and "def data(" in blocks[0] and ":tags: [parameters]" in blocks[1]
    assert blocks[2].startswith('NOTEBOOK_GRIDS["smoke"]') and "execute --profile smoke" in blocks[3]


def test_a_page_added_in_five_steps_executes(tmp_path):
    if not os.environ.get("SELMATCH_DATA_SHARED"):
        pytest.skip("needs the shared CIFAR-10 (SELMATCH_DATA)")
    module, notebook, grid, commands = [b for _, b in _steps()]
    repo = tmp_path / "repo"
    shutil.copytree(ROOT, repo, ignore=shutil.ignore_patterns(".git", ".venv", "_build", "runs", "results",
                                                              "notebooks", "__pycache__", "rerun-*"))
    shutil.copytree(ROOT / "notebooks", repo / "notebooks")
    (repo / "selmatch" / "companion" / "pages" / "example.py").write_text(module)                   # 1
    front = re.match(r"---\n.*?\n---\n", (ROOT / "notebooks" / "02_sliding_window.md").read_text(), re.S).group(0)
    (repo / "notebooks" / "11_example.md").write_text(front + "\n" + notebook)                        # 2
    with open(repo / "selmatch" / "settings.py", "a") as f:                                           # 3
        f.write("\n" + grid)
    toc = (repo / "_toc.yml").read_text()                                                             # 4
    (repo / "_toc.yml").write_text(toc.replace("      - file: book/notebooks/10_claims\n",
                                               "      - file: book/notebooks/10_claims\n      - file: book/notebooks/11_example\n"))
    env = dict(os.environ, PYTHONPATH=str(repo), SELMATCH_RESULTS=str(tmp_path / "results"),
               SELMATCH_RUNS=str(tmp_path / "runs"), SELMATCH_DATA=os.environ["SELMATCH_DATA_SHARED"])
    for line in commands.strip().splitlines():                                                        # 5
        argv = shlex.split(line)
        argv[0] = sys.executable if argv[0] == "python" else argv[0]
        r = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, (line, r.stdout[-2000:], r.stderr[-3000:])
    assert "FAILED" not in r.stdout, r.stdout[-2000:]
    assert (repo / "notebooks" / "params" / "11_example.cpu.yaml").exists()
    nb = json.loads((repo / "book" / "notebooks" / "11_example.ipynb").read_text())
    outputs = [o for c in nb["cells"] for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = "".join("".join(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "| IPC | random | window |" in shown and "| 10 |" in shown
    assert len(list((tmp_path / "results" / "smoke").glob("window-*.json"))) == 2
