"""The two build passes on small inputs (sitegen/pre.py, sitegen/post.py), without a builder: what
each writes, what each refuses (naming the file, the setting or the cell), and that running the
post pass again changes nothing. The full site's build runs both through MkDocs (tests/test_site.py)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap

import pytest

REASON = "a site-building tool, absent where only the CUDA tests run (python3 -m bench.gpu)"
pytest.importorskip("yaml", reason=REASON, exc_type=ImportError)
nbformat = pytest.importorskip("nbformat", reason=REASON, exc_type=ImportError)
pytest.importorskip("html5lib", reason=REASON, exc_type=ImportError)
pytest.importorskip("jupytext", reason=REASON, exc_type=ImportError)

from sitegen import BuildError, config as configuration, post, pre  # noqa: E402
from sitegen.files import write  # noqa: E402
from tests.pages import ROOT  # noqa: E402


def _project(tmp_path, settings: str = "") -> configuration.Config:
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "mkdocs.yml").write_text("site_name: small\nrepo_url: https://github.com/o/r\n" + settings,
                                         encoding="utf-8")
    (tmp_path / "pyproject.toml").write_text('[project]\ndependencies = ["torch>=2.13.0"]\n', encoding="utf-8")
    return configuration.load(tmp_path / "mkdocs.yml")


# -- configuration and files -------------------------------------------------------------------


def test_env_tags_and_steps_are_read_as_mkdocs_reads_them(tmp_path, monkeypatch):
    monkeypatch.delenv("SITEGEN_TEST_URL", raising=False)
    config = _project(tmp_path, 'site_url: !ENV [SITEGEN_TEST_URL, "https://a.example/x/"]\n'
                                "extra:\n  sitegen:\n    steps: [csp]\n")
    assert config.site_url == "https://a.example/x/" and config.steps == {"csp"}
    monkeypatch.setenv("SITEGEN_TEST_URL", "http://127.0.0.1:8000/")
    assert configuration.load(tmp_path / "mkdocs.yml").site_url == "http://127.0.0.1:8000/"
    assert configuration.load(tmp_path / "mkdocs.yml").docs_dir == tmp_path / "docs"


def test_an_unknown_step_is_refused_naming_the_setting(tmp_path):
    with pytest.raises(BuildError, match=r"extra\.sitegen\.steps must be a list of .* got \['figure'\]"):
        _project(tmp_path, "extra:\n  sitegen:\n    steps: [figure]\n")


def test_write_is_atomic_readable_and_leaves_an_unchanged_file_alone(tmp_path):
    path = tmp_path / "a" / "b.txt"
    assert write(path, "one") is True and path.read_text() == "one"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    before = path.stat().st_mtime_ns
    assert write(path, "one") is False and path.stat().st_mtime_ns == before
    assert write(path, b"two") is True and path.read_bytes() == b"two"
    assert [p.name for p in path.parent.iterdir()] == ["b.txt"]  # no partial file left


# -- pre ----------------------------------------------------------------------------------------


def test_figures_are_written_with_a_copy_per_palette(tmp_path, monkeypatch):
    import snippets.figures
    from snippets.plotting import GREY

    svg = f'<svg><text style="fill: {GREY}">x</text></svg>'
    monkeypatch.setattr(snippets.figures, "FIGURES", {"tiny": lambda: svg})
    config = _project(tmp_path, "extra:\n  sitegen:\n    steps: [figures]\n")
    assert pre.run(config) == []
    light, dark = (tmp_path / "docs" / "figures" / n for n in ("tiny.svg", "tiny-dark.svg"))
    assert GREY not in light.read_text() and GREY not in dark.read_text()
    assert light.read_text() != dark.read_text()


def test_the_notebook_step_writes_the_downloads_and_checks_each_notebook_source(tmp_path):
    config = _project(tmp_path, "extra:\n  sitegen:\n    steps: [notebook]\n")
    (tmp_path / "docs" / "notebooks").mkdir()
    for name, code in (("01-a", "x = 1"), ("02-b", "y = 2")):
        (tmp_path / "docs" / "notebooks" / f"{name}.py").write_text(f"# %% [markdown]\n# # {name}\n\n# %%\n{code}\n",
                                                                   encoding="utf-8")
    (tmp_path / "docs" / "notebooks" / "00-gone.ipynb").write_text("{}")  # its source was removed
    pre.run(config)
    written = nbformat.reads((tmp_path / "docs" / "notebooks" / "01-a.ipynb").read_text(), as_version=4)
    assert [c.cell_type for c in written.cells] == ["markdown", "markdown", "code", "code"]
    assert "git+https://github.com/o/r" in written.cells[2].source and written.cells[3].source == "x = 1"
    combined = nbformat.reads((tmp_path / "docs" / "notebook.ipynb").read_text(), as_version=4)
    assert [c.source for c in combined.cells if c.cell_type == "markdown"][-2:] == ["## 01-a", "## 02-b"]
    assert [c.source for c in combined.cells][-1] == "y = 2"
    assert not (tmp_path / "docs" / "notebooks" / "00-gone.ipynb").exists()
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": '<iframe src="https://h.example">'})]
    nb.cells = [nbformat.v4.new_markdown_cell("# A"), cell]
    nbformat.write(nb, tmp_path / "docs" / "stored.ipynb")
    with pytest.raises(BuildError, match=r"docs/stored\.ipynb: cell 1 .* <iframe> loads a frame"):
        pre.run(config)
    (tmp_path / "docs" / "stored.ipynb").unlink()
    (tmp_path / "docs" / "notebooks" / "03-c.py").write_text("# %% [markdown]\n# Hello\n")
    with pytest.raises(BuildError, match=r"docs/notebooks/03-c\.py: a chapter's notebook starts with a Markdown cell"):
        pre.run(config)
    (tmp_path / "docs" / "notebooks" / "03-c.py").write_text("# %% [markdown]\n# # C\n#\n# <img src=x onerror=alert(1)>\n")
    with pytest.raises(BuildError, match=r"docs/notebooks/03-c\.py: cell 0 .*raw HTML"):
        pre.run(config)
    (tmp_path / "docs" / "notebooks" / "03-c.py").write_text("# %% [markdown]\n# # C &lt;/title&gt;\n")
    with pytest.raises(BuildError, match=r"docs/notebooks/03-c\.py: cell 0 .*a heading with <, > or &"):
        pre.run(config)


def test_the_timing_step_without_results_is_refused_naming_the_folder(tmp_path):
    config = _project(tmp_path, "extra:\n  sitegen:\n    steps: [timing]\n")
    with pytest.raises(BuildError, match=r"appendix/results: no such folder"):
        pre.run(config)


# -- post ---------------------------------------------------------------------------------------

PAGE = textwrap.dedent("""\
    <!doctype html><html><head><meta charset="utf-8"><title>t</title></head><body>
    <article class="md-content__inner">{body}</article>
    <p class="tested-with" data-sitegen="tested-with"></p>
    </body></html>""")
CHAPTER = ('<h1>One</h1><p><img alt="m" src="../figures/masks.svg"></p>'
           '<div class="highlight"><pre><span></span><code>&gt;&gt;&gt; 1 + 1\n2\n</code></pre></div>'
           '<div data-widget="online-softmax"></div>')


def _site(tmp_path, pages: dict[str, str]):
    site = tmp_path / "site"
    for name, body in pages.items():
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text(PAGE.format(body=body), encoding="utf-8")
    return site


def test_the_post_pass_changes_each_page_once(tmp_path):
    config = _project(tmp_path)
    site = _site(tmp_path, {"one/index.html": CHAPTER, "index.html": "<h1>Home</h1>"})
    assert post.run(site, config) == 2
    page = (site / "one" / "index.html").read_text()
    assert 'src="../figures/masks.svg#only-light"' in page and 'src="../figures/masks-dark.svg#only-dark"' in page
    assert 'data-copy="1 + 1"' in page and 'data-trace="' in page
    assert '<p class="tested-with"><small>Tested by CI' in page and "torch 2.13.0 (the lowest supported)" in page
    head = page.split("<title>")[0]
    assert head.index('<meta charset="utf-8">') < head.index('http-equiv="Content-Security-Policy"')
    assert page.rstrip().endswith(post.DONE)
    assert post.run(site, config) == 0 and (site / "one" / "index.html").read_text() == page


def test_the_policy_is_left_out_for_serve(tmp_path):
    config = _project(tmp_path)
    site = _site(tmp_path, {"index.html": "<h1>Home</h1>"})
    post.run(site, config, csp=False)
    assert "Content-Security-Policy" not in (site / "index.html").read_text()


@pytest.mark.parametrize("relative, site_url, expected", [
    ("index.html", None, "."), ("one/index.html", None, ".."), ("appendix/timing/index.html", None, "../.."),
    ("404.html", "https://a.example/x/", "/x/"), ("404.html", None, "/"),
])
def test_base_url_is_the_one_the_templates_wrote(relative, site_url, expected):
    assert post.base_url(relative, site_url) == expected


def test_a_refused_page_fails_the_pass_naming_it_and_is_deleted(tmp_path):
    config = _project(tmp_path)
    site = _site(tmp_path, {"bad/index.html": "<script>alert(1)</script>", "good/index.html": "<h1>G</h1>"})
    with pytest.raises(BuildError, match=r"bad/index\.html has an inline script that no template"):
        post.run(site, config)
    assert not (site / "bad" / "index.html").exists()


def _notebook_page(output: str) -> str:
    return ('<div class="jp-Notebook"><div class="jp-Cell jp-MarkdownCell"><h1>Nb</h1>'
            '<div class="jp-RenderedMarkdown"><p>Position $t$.</p></div></div>'
            f'<div class="jp-Cell jp-CodeCell"><pre>show()</pre><div class="jp-OutputArea">{output}</div></div></div>'
            '<script src="https://cdn.example/mathjax.js"></script>')


def test_the_notebook_pages_get_their_links_and_mathml_and_no_remote_script(tmp_path):
    config = _project(tmp_path, "extra:\n  sitegen:\n    steps: [notebook]\n")
    site = _site(tmp_path, {"notebook/index.html": "<article><h1>All</h1><p>$x$</p></article>",
                            "notebooks/01-a/index.html": _notebook_page("<p>fine</p>"),
                            "01-a/index.html": "<article><h1>A</h1><p>Text</p></article>",
                            "02-b/index.html": "<article><h1>B</h1><p>Text</p></article>"})
    (site / "notebook.ipynb").write_text("{}")
    (site / "notebooks" / "01-a.ipynb").write_text("{}")
    post.run(site, config)
    page = (site / "notebooks" / "01-a" / "index.html").read_text()
    colab = "https://colab.research.google.com/github/o/r/blob/notebook/notebooks/01-a.ipynb"
    assert ('</h1>\n<p class="notebook-links"><a class="md-button md-button--primary" href="../../01-a/">Read the '
            'chapter</a> <a class="md-button md-button--primary" href="../01-a.ipynb" download>Download 01-a.ipynb'
            f'</a> <a class="md-button md-button--primary" href="{colab}">Open in Colab</a></p>') in page
    assert "<math" in page and "$t$" not in page and "cdn.example" not in page
    chapter = (site / "01-a" / "index.html").read_text()
    assert 'href="../notebooks/01-a/">This chapter&#x27;s notebook</a>' in chapter and colab in chapter
    assert "notebook-links" not in (site / "02-b" / "index.html").read_text(), "no notebook, no links"
    combined = (site / "notebook" / "index.html").read_text()
    assert 'href="../notebook.ipynb" download>' in combined
    assert "https://colab.research.google.com/github/o/r/blob/notebook/notebook.ipynb" in combined
    assert "$x$" in combined, "a Markdown page's formulas are the Markdown extension's, not the notebook step's"


def test_a_notebook_output_the_browser_would_run_is_refused_naming_the_cell(tmp_path):
    config = _project(tmp_path, "extra:\n  sitegen:\n    steps: [notebook]\n")
    site = _site(tmp_path, {"notebook/index.html": _notebook_page('<img src="x.png" onerror="alert(1)">')})
    with pytest.raises(BuildError, match=r"notebook/index\.html: cell 1 .* 'show\(\)', the built page has "
                                         r"<img onerror=\.\.\.> runs script"):
        post.run(site, config)
    assert not (site / "notebook" / "index.html").exists()


def test_the_search_index_gets_the_notebook_formulas_as_text():
    assert post.search_text("<p>Position $t-2$ and</p><pre>$HOME</pre> $$\\sum_j x_j$$") \
        == "<p>Position t−2 and</p><pre>$HOME</pre> ∑jxj"


def test_the_command_line_says_why_in_one_line(tmp_path):
    _project(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "sitegen", "-f", str(tmp_path / "mkdocs.yml"), "post",
                           str(tmp_path / "nowhere")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1 and done.stderr == f"sitegen: {tmp_path / 'nowhere'}: no such folder; build the site first\n"


# -- the builders' check ------------------------------------------------------------------------


def test_compare_lists_what_another_builder_lost(tmp_path):
    from sitegen.compare import compare

    (tmp_path / "ref").mkdir()
    ref = _site(tmp_path / "ref", {"index.html": "<h1>H</h1>", "one/index.html": CHAPTER})
    (ref / "figures").mkdir()
    (ref / "figures" / "masks.svg").write_text("<svg/>")
    post.run(ref, _project(tmp_path / "ref"))
    (tmp_path / "other").mkdir()
    other = _site(tmp_path / "other", {"index.html": "<h1>H</h1>", "one/index.html": CHAPTER})
    lines = compare(ref, other)
    assert lines[0] == "pages: 2 (reference 2); only in reference: none; only here: none"
    assert lines[1] == ("drawings: 0 (reference 1); missing: 1; images whose file is missing: 1, "
                        "e.g. ['one/index.html: ../figures/masks.svg']")
    assert lines[2].startswith("CSP: 0 of 2 pages have one; without: ['index.html', 'one/index.html']")
    assert lines[4] == "tested-with line: missing on 2 pages, e.g. ['index.html', 'one/index.html']"
    assert lines[5] == "HTML otherwise different: 2 of 2 common pages: ['index.html', 'one/index.html']"
    assert compare(ref, ref)[5] == "HTML otherwise different: 0 of 2 common pages"
