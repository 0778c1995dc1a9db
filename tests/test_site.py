"""The strict build passes, and each kind of breakage fails it."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from tests.building import build, minimal_site
from tests.pages import DOCS, ROOT, expand, fences, pages


def test_strict_build_passes(built_site):
    assert (built_site / "index.html").is_file()
    assert (built_site / "02-matrix-trick" / "index.html").is_file()


def test_no_raw_tex_and_math_is_mathml(built_site):
    for page in built_site.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert 'class="arithmatex"' not in text, page
        assert "\\frac" not in text and "\\sum" not in text, page
    assert "<math" in (built_site / "03-softmax" / "index.html").read_text(encoding="utf-8")


def _code_blocks(page_html: str) -> list[str]:
    """The text of each <pre> block as a reader copies it: tags dropped, entities decoded."""
    blocks = re.findall(r"<pre\b[^>]*>(.*?)</pre>", page_html, re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", b)) for b in blocks]


def test_included_source_is_on_the_page(built_site):
    """Every --8<-- block of every page shows the whole included section, line for line."""
    checked = 0
    for page in pages():
        include_fences = [f for f in fences(page) if f.includes]
        if not include_fences:
            continue
        rel = page.relative_to(ROOT / "docs").with_suffix("")
        out = built_site / ("index.html" if rel.name == "index" else rel / "index.html")
        text = out.read_text(encoding="utf-8")
        assert "--8&lt;--" not in text and "--8<--" not in text, out
        shown = [" ".join(b.split()) for b in _code_blocks(text)]
        for fence in include_fences:
            want = " ".join(expand(fence).split())
            assert want and any(want in b for b in shown), f"{fence}: the included source is not shown whole"
            checked += 1
    assert checked >= 10, checked


@pytest.mark.parametrize("source", sorted((DOCS / "notebooks").glob("[0-9][0-9]-*.py")), ids=lambda p: p.stem)
def test_notebook_page_is_executed_and_self_contained(built_site, source):
    page = (built_site / "notebooks" / source.stem / "index.html").read_text(encoding="utf-8")
    assert re.search(r"In\s\[1\]:", page), "the notebook was not executed"  # \s: a no-break space
    # an output area (not the CSS that styles one) holding a printed value
    assert re.search(r'<div class="[^"]*\bjp-OutputArea-output\b[^"]*"[^>]*>\s*<pre>\S', page)
    markdown = "".join(line for line in source.read_text(encoding="utf-8").splitlines() if line.startswith("# "))
    assert ("<math" in page) == ("$" in markdown) and "$$" not in page and "\\(" not in page, "formulas not MathML"
    assert not re.search(r"<script[^>]*\bsrc=\"\"", page) and "cdnjs" not in page
    assert (built_site / "notebooks" / f"{source.stem}.ipynb").is_file()


def test_figures_are_well_formed_and_shown(built_site):
    import xml.etree.ElementTree as ET

    linked = " ".join(p.read_text(encoding="utf-8") for p in built_site.rglob("*.html"))
    for name in ("causal-mean-weights", "masked-softmax", "head-weights", "masks"):
        svg = ET.parse(built_site / "figures" / f"{name}.svg").getroot()  # well-formed XML
        assert svg.tag == "{http://www.w3.org/2000/svg}svg", name
        assert len(svg.findall(".//{http://www.w3.org/2000/svg}text")) > 10, f"{name}: no numbers drawn"
        assert (svg.findtext("{http://www.w3.org/2000/svg}title") or "").strip(), f"{name}: no title"
        assert f"figures/{name}.svg" in linked, f"{name}: no page shows it"


def test_pages_reference_no_other_host(built_site):
    # Tags whose src/href the browser fetches: not <a> links, not rel="canonical".
    tag = re.compile(r"<(script|link|img|iframe|source|video|audio)\b[^>]*>", re.I)
    remote = re.compile(r'\b(?:src|href)="(?:https?:)?//', re.I)
    for page in built_site.rglob("*.html"):
        for m in tag.finditer(page.read_text(encoding="utf-8")):
            if 'rel="canonical"' in m.group(0):
                continue
            assert not remote.search(m.group(0)), f"{page}: {m.group(0)}"


def test_the_minimal_site_builds(tmp_path):
    """The control for the breakage tests below: without a breakage it passes."""
    result = build(minimal_site(tmp_path), tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "out" / "02-matrix-trick" / "index.html").is_file()


def test_plain_mkdocs_builds_with_nothing_on_the_path(tmp_path):
    """`mkdocs build --strict` typed in the activated .venv, PYTHONPATH unset: the MathML
    extension comes from the adapter hook, which MkDocs loads by path (no `hooks` package to
    import) and which puts `sitegen` on the path.
    The shared build (`built_site`) runs the same command with every step and page, with
    nothing on PYTHONPATH wherever the venv's editable install is this checkout."""
    result = build(minimal_site(tmp_path, pages=("08-linear-time.md",)), tmp_path / "out", plain=True)
    assert result.returncode == 0, result.stderr[-3000:]
    page = (tmp_path / "out" / "08-linear-time" / "index.html").read_text(encoding="utf-8")
    assert "<math" in page and 'class="arithmatex"' not in page


BREAKAGES = {
    "link to a missing page": ("01-by-hand.md", "\n[gone](no-such-page.md)\n", "no-such-page.md"),
    "link to a missing anchor": ("01-by-hand.md", "\n[gone](02-matrix-trick.md#no-such-anchor)\n", "no-such-anchor"),
    "include of a missing file": ("02-matrix-trick.md", '\n```py title="x"\n--8<-- "snippets/missing.py"\n```\n', "missing.py"),
    "include of a missing section": ("02-matrix-trick.md", '\n```py title="x"\n--8<-- "snippets/averaging.py:missing"\n```\n', "missing"),
}


@pytest.mark.parametrize("what", BREAKAGES)
def test_a_breakage_fails_the_strict_build(tmp_path, what):
    page, addition, needle = BREAKAGES[what]
    path = minimal_site(tmp_path) / "docs" / page
    path.write_text(path.read_text(encoding="utf-8") + addition, encoding="utf-8")
    result = build(tmp_path, tmp_path / "out")
    assert result.returncode != 0, f"{what} did not fail the build"
    assert needle in result.stderr + result.stdout


@pytest.fixture
def timing_site(tmp_path) -> Path:
    """The appendix page in full with the timing step; every other page as its headings."""
    (tmp_path / "project").mkdir()
    return minimal_site(tmp_path / "project", pages=("appendix/timing.md",), steps=("timing",))


def test_hostile_results_show_as_text_and_changed_code_is_flagged_stale(timing_site, tmp_path):
    """One build with a results file whose every string is hostile and with a measured function changed."""
    import ast
    import html
    import html.parser
    import json

    from tests.hostile import HOSTILE, hostile

    results = timing_site / "docs" / "appendix" / "results"
    CPU_FILE = next(results.glob("cpu-*.json")).name  # the committed CPU results file
    doc = json.loads((results / CPU_FILE).read_text())
    (results / "cpu-hostile.json").write_text(json.dumps(hostile(doc)))
    source = timing_site / "snippets" / "averaging.py"
    text = source.read_text()
    fn = next(n for n in ast.parse(text).body if getattr(n, "name", "") == "prefix_mean_cumsum")
    lines = text.splitlines(keepends=True)
    lines.insert(fn.body[1].lineno - 1, "    x = x + 0  # a change to what runs\n")
    source.write_text("".join(lines))

    result = build(timing_site, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stderr + result.stdout
    assert f"stale timing results: {CPU_FILE}: prefix_mean_cumsum was measured at" in log
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


def test_a_malformed_results_file_stops_the_build_naming_it(timing_site, tmp_path):
    bad = timing_site / "docs" / "appendix" / "results" / "cpu-bad.json"
    bad.write_text('{"schema": 2, "env": []}')
    result = build(timing_site, tmp_path / "out")
    assert result.returncode != 0
    assert "timing results:" in result.stderr and "cpu-bad.json: $: missing key 'bandwidth'" in result.stderr
    assert "Traceback" not in result.stderr


def _examples_sections(docstring: str, where: str) -> int:
    """How many `Examples:` sections `docstring` has; fails on a `>>>` line outside one."""
    sections, header = 0, None  # header: the indent of the open Examples: line
    for line in docstring.splitlines():
        indent, text = len(line) - len(line.lstrip()), line.strip()
        if text == "Examples:":
            sections, header = sections + 1, indent
        elif text and header is not None and indent <= header:
            header = None
        assert not text.startswith(">>>") or header is not None, (where, line)
    return sections


def test_reference_examples_are_examples_sections_that_mkdocstrings_renders(built_site):
    """Every `>>>` example of a module on the API reference sits in a Google-style `Examples:`
    section, which mkdocstrings renders as code by itself (no extension rewrites docstrings):
    the page shows one "Examples:" title and one copyable session per section."""
    import ast

    modules = re.findall(r"^::: snippets\.(\w+)", (DOCS / "reference.md").read_text(encoding="utf-8"), re.M)
    assert len(modules) >= 8, modules
    sections = 0
    for name in modules:
        tree = ast.parse((ROOT / "snippets" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node, clean=False)
                sections += _examples_sections(doc or "", f"snippets/{name}.py: {getattr(node, 'name', 'module')}")
    page = (built_site / "reference" / "index.html").read_text(encoding="utf-8")
    assert sections >= 20 and page.count('<span class="doc-section-title">Examples:</span>') == sections
    assert page.count('<div class="language-pycon highlight" data-copy="') >= sections
