"""The strict build passes, and each kind of breakage fails it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pages import ROOT

MKDOCS = [sys.executable, "-m", "mkdocs", "build", "--strict"]
# What a build needs besides the pages; anything else in the repo is left behind.
PROJECT = ["mkdocs.yml", "docs", "hooks", "overrides", "snippets"]


def build(root: Path, site: Path, *, execute_notebook: bool = True) -> subprocess.CompletedProcess:
    # mkdocs.yml reads NOTEBOOK_EXECUTE (default true): only the breakage builds turn it off.
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(root),
           "NOTEBOOK_EXECUTE": "true" if execute_notebook else "false"}
    return subprocess.run(
        [*MKDOCS, "-f", str(root / "mkdocs.yml"), "-d", str(site)],
        cwd=root, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.fixture
def project_copy(tmp_path) -> Path:
    for name in PROJECT:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, tmp_path / name)
    return tmp_path


def test_strict_build_passes(built_site):
    assert (built_site / "index.html").is_file()
    assert (built_site / "02-matrix-trick" / "index.html").is_file()


def test_no_raw_tex_and_math_is_mathml(built_site):
    for page in built_site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert 'class="arithmatex"' not in text, page
        assert "\\frac" not in text and "\\sum" not in text, page
    assert "<math" in (built_site / "03-softmax" / "index.html").read_text(encoding="utf-8")


def test_included_source_is_on_the_page(built_site):
    text = (built_site / "01-by-hand" / "index.html").read_text(encoding="utf-8")
    assert "prefix_mean_loop" in text and "--8&lt;--" not in text and "--8<--" not in text


def test_notebook_page_is_executed_and_self_contained(built_site):
    page = (built_site / "notebook" / "index.html").read_text(encoding="utf-8")
    assert re.search(r"In\s\[1\]:", page), "the notebook was not executed"  # \s: a no-break space
    # an output area (not the CSS that styles one) holding a printed tensor
    assert re.search(r'<div class="[^"]*\bjp-OutputArea-output\b[^"]*"[^>]*>\s*<pre>tensor\(', page)
    assert "<math" in page and "$$" not in page
    assert not re.search(r"<script[^>]*\bsrc=\"\"", page) and "cdnjs" not in page
    assert (built_site / "notebook.ipynb").is_file()
    for name in ("causal-mean-weights", "masked-softmax", "head-weights", "masks"):
        assert (built_site / "figures" / f"{name}.svg").read_text(encoding="utf-8").startswith("<svg")


def test_pages_reference_no_other_host(built_site):
    # Tags whose src/href the browser fetches: not <a> links, not rel="canonical".
    tag = re.compile(r"<(script|link|img|iframe|source|video|audio)\b[^>]*>", re.I)
    remote = re.compile(r'\b(?:src|href)="(?:https?:)?//', re.I)
    for page in built_site.rglob("*.html"):
        for m in tag.finditer(page.read_text(encoding="utf-8")):
            if 'rel="canonical"' in m.group(0):
                continue
            assert not remote.search(m.group(0)), f"{page}: {m.group(0)}"


BREAKAGES = {
    "link to a missing page": ("01-by-hand.md", "\n[gone](no-such-page.md)\n", "no-such-page.md"),
    "link to a missing anchor": ("01-by-hand.md", "\n[gone](02-matrix-trick.md#no-such-anchor)\n", "no-such-anchor"),
    "include of a missing file": ("02-matrix-trick.md", '\n```py title="x"\n--8<-- "snippets/missing.py"\n```\n', "missing.py"),
    "include of a missing section": ("02-matrix-trick.md", '\n```py title="x"\n--8<-- "snippets/averaging.py:missing"\n```\n', "missing"),
}


@pytest.mark.slow
@pytest.mark.parametrize("what", BREAKAGES)
def test_a_breakage_fails_the_strict_build(project_copy, tmp_path, what):
    page, addition, needle = BREAKAGES[what]
    path = project_copy / "docs" / page
    path.write_text(path.read_text(encoding="utf-8") + addition, encoding="utf-8")
    # The breakages are in Markdown pages: running the notebook too would only cost time.
    result = build(project_copy, tmp_path / "out", execute_notebook=False)
    assert result.returncode != 0, f"{what} did not fail the build"
    assert needle in result.stderr + result.stdout


@pytest.mark.slow
def test_dev_py_serve_answers_at_the_root():
    """README's first command: the local server shows the home page and chapters at /."""
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():
        pytest.skip("runs inside the project's .venv only (dev.py would otherwise create one)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "NOTEBOOK_EXECUTE": "false"}
    env.pop("SITE_URL", None)
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "dev.py"), "serve", "--dev-addr", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                home = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except OSError:
                assert server.poll() is None, "dev.py serve exited"
                assert time.monotonic() < deadline, "dev.py serve did not answer in 120 s"
                time.sleep(1)
        assert home.status == 200 and home.url == f"http://127.0.0.1:{port}/"
        assert "<title>The attention trick" in home.read().decode()
        for page in ("01-by-hand/", "02-matrix-trick/", "03-softmax/"):
            assert urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5).status == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_hostile_results_show_as_text_and_changed_code_is_flagged_stale(project_copy, tmp_path):
    """One build with a results file whose every string is hostile and with a measured function changed."""
    import ast
    import html
    import html.parser
    import json

    from tests.test_timing import HOSTILE, hostile

    results = project_copy / "docs" / "appendix" / "results"
    doc = json.loads((results / "cpu-amd-epyc.json").read_text())
    (results / "cpu-hostile.json").write_text(json.dumps(hostile(doc)))
    source = project_copy / "snippets" / "averaging.py"
    text = source.read_text()
    fn = next(n for n in ast.parse(text).body if getattr(n, "name", "") == "prefix_mean_cumsum")
    lines = text.splitlines(keepends=True)
    lines.insert(fn.body[1].lineno - 1, "    x = x + 0  # a change to what runs\n")
    source.write_text("".join(lines))

    result = build(project_copy, tmp_path / "out", execute_notebook=False)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr + result.stdout
    assert "stale timing results: cpu-amd-epyc.json: prefix_mean_cumsum was measured at" in log
    assert "stale timing results: cpu-hostile.json: prefix_mean_cumsum" in log
    page = (tmp_path / "out" / "appendix" / "timing" / "index.html").read_text(encoding="utf-8")
    main = page[page.index('<article'):page.index('</article>')]
    elements = []

    class Collect(html.parser.HTMLParser):
        def handle_starttag(self, tag, attrs):
            elements.append((tag, dict(attrs)))

    Collect().feed(main)
    assert not {t for t, _ in elements} & {"iframe", "meta", "script", "object", "embed", "form"}
    assert all(a.get("src", "").startswith("../plots/") for t, a in elements if t == "img")
    assert not [(t, k) for t, a in elements for k in a if k.lower().startswith("on")]
    assert not [a for t, a in elements if (a.get("href") or "").strip().lower().startswith("javascript:")]
    assert html.escape(HOSTILE, quote=False) in main.replace("&quot;", '"') or HOSTILE in html.unescape(main)
    assert 'Stale numbers' in main and "<code>prefix_mean_cumsum</code> (stale)" in main
    # The CPU section comes first; the GPU file may be stale on its own, awaiting a GPU.
    cpu = main.split('href="../results/cuda-')[0]
    assert "<code>prefix_mean_cumsum</code> (stale)" in cpu
    assert "<code>prefix_mean_fast</code> (stale)" not in cpu


@pytest.mark.slow
def test_a_malformed_results_file_stops_the_build_naming_it(project_copy, tmp_path):
    bad = project_copy / "docs" / "appendix" / "results" / "cpu-bad.json"
    bad.write_text('{"schema": 2, "env": []}')
    result = build(project_copy, tmp_path / "out", execute_notebook=False)
    assert result.returncode != 0
    assert "timing results:" in result.stderr and "cpu-bad.json: $: missing key 'bandwidth'" in result.stderr
    assert "Traceback" not in result.stderr
