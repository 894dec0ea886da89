"""The built book in a real browser: at 1280 px no table, code block, figure or output is wider than its column.

The book is built as ``make book`` builds it (every page executed from the committed results at ``cpu``, then
the HTML), and each page is loaded in headless Chromium (the Debian package; ``.ci/run`` installs it when it can,
and the test is skipped, saying so, where it cannot). A page is measured inside a 1280 px frame of a probe page
that reports every element of the article that ends right of the article's column, or that scrolls sideways.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import pytest

from selmatch.companion.book import ROOT

WIDTH = 1280
PROBE = """<html><body style="margin:0"><iframe id="f" style="width:%dpx;height:900px;border:0"></iframe>
<pre id="out">pending</pre><script>
const f = document.getElementById('f');
f.onload = () => {
  try {
    const d = f.contentDocument, art = d.querySelector('.bd-article') || d.querySelector('main') || d.body;
    const col = art.getBoundingClientRect(), bad = [];
    art.querySelectorAll('pre, table, img, svg, div.cell_output, div.highlight, .output').forEach(e => {
      const r = e.getBoundingClientRect(), s = getComputedStyle(e);
      const scrolls = e.scrollWidth > e.clientWidth + 1 && s.overflowX !== 'visible' && s.overflowX !== 'hidden';
      if (r.width > 0 && (r.right > col.right + 1 || scrolls))
        bad.push({tag: e.tagName, right: Math.round(r.right), column: Math.round(col.right),
                  scroll: e.scrollWidth - e.clientWidth, text: (e.innerText || e.getAttribute('alt') || '').slice(0, 70)});
    });
    document.getElementById('out').textContent = 'RESULT' + JSON.stringify(bad);
  } catch (err) { document.getElementById('out').textContent = 'RESULT' + JSON.stringify([{error: String(err)}]); }
};
f.src = decodeURIComponent(location.hash.slice(1));
</script></body></html>""" % WIDTH


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


@pytest.fixture(scope="module")
def built_book():
    if _chromium() is None:
        pytest.skip("no Chromium here (Debian: apt-get install chromium); .ci/run installs it when it can")
    r = subprocess.run([sys.executable, "-m", "selmatch.companion.book", "build", "--profile", "cpu"], cwd=ROOT,
                       capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, f"make book failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    pages = sorted((ROOT / "_build" / "html" / "book").rglob("*.html"))
    assert len(pages) >= 20, pages
    return pages


def overflowing(page, probe) -> list[dict]:
    out = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files",
                          f"--window-size={WIDTH},900", "--virtual-time-budget=10000", "--dump-dom",
                          f"{probe.as_uri()}#{page.as_uri()}"], capture_output=True, text=True, timeout=120).stdout
    found = re.search(r"RESULT(\[.*?\])</pre>", out, re.S)
    assert found, f"{page.name}: the probe did not report (is the page there?)"
    return json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def test_nothing_is_wider_than_its_column(built_book, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE)
    wide = {p.relative_to(ROOT / "_build" / "html").as_posix(): bad
            for p in built_book if (bad := overflowing(p, probe))}
    assert not wide, json.dumps(wide, indent=1)


def test_the_probe_finds_an_element_wider_than_its_column(built_book, tmp_path):
    """The check can fail: the same probe on a page with one over-wide table reports it."""
    page = next(p for p in built_book if p.name == "intro.html")
    wide = page.with_name("_probe_wide.html")                 # beside it, so that it keeps the book's styles
    wide.write_text(page.read_text().replace("<section", '<table><tr><td><div style="width:3000px">wide</div></td>'
                                             "</tr></table><section", 1))
    probe = tmp_path / "probe.html"
    probe.write_text(PROBE)
    try:
        assert [b["tag"] for b in overflowing(wide, probe)] == ["TABLE"]
    finally:
        wide.unlink()
