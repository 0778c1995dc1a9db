"""The chapters' notebooks (docs/notebooks/NN-topic.py) and the hooks that publish them: one per
chapter, short, run clean, linked from their chapters, installs on Colab only."""

from __future__ import annotations

import re
import subprocess
import sys
import types

import pytest
import torch

REASON = "a site-building tool, absent where only the CUDA tests run (python3 -m bench.gpu)"
jupytext = pytest.importorskip("jupytext", reason=REASON, exc_type=ImportError)
nbformat = pytest.importorskip("nbformat", reason=REASON, exc_type=ImportError)
from sitegen import BuildError

from tests.pages import ROOT
from tests.scripts import load_file

DOCS = ROOT / "docs"
REPO_URL = re.search(r"^repo_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), re.M).group(1)
# A notebook is short: at most this many non-blank lines of code, and words in its Markdown cells.
CODE_LINES, MARKDOWN_WORDS = 40, 400

notebook_hook = load_file("sitegen/notebook_links.py")
math_hook = load_file("sitegen/mathml.py")
SOURCES = sorted((DOCS / notebook_hook.NOTEBOOKS).glob(notebook_hook.CHAPTER_NOTEBOOK))
FIRST = SOURCES[0] if SOURCES else DOCS / "notebooks" / "01-by-hand.py"


def _nav() -> str:
    return re.search(r"^nav:\n((?:[ \t]+-.*\n)+)", (ROOT / "mkdocs.yml").read_text(), re.M).group(1)


def _nav_chapters() -> list[tuple[str, str, str]]:
    """(number, title, page) of every numbered chapter in mkdocs.yml's nav, in nav order."""
    return re.findall(r"^[ \t]+-[ \t]+(\d+)\.[ \t]+(.+?):[ \t]+(\S+)\.md[ \t]*$", _nav(), re.M)


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _ipynb(source, commit=None):
    return nbformat.reads(notebook_hook.to_ipynb(source.read_text(encoding="utf-8"), REPO_URL, commit), as_version=4)


def test_every_chapter_has_a_notebook_in_the_nav_titled_as_the_chapter():
    chapters = _nav_chapters()
    # Every numbered page in docs/ is in the list: the pattern above missed none.
    assert sorted(f"{page}.md" for _, _, page in chapters) == sorted(p.name for p in DOCS.glob("[0-9][0-9]-*.md"))
    assert len(chapters) >= 10, chapters
    assert [p.stem for p in SOURCES] == [page for _, _, page in chapters], "one notebook per chapter, named as it"
    listed = re.findall(r'^[ \t]+-[ \t]+"(Notebook \d+: .+?)":[ \t]+notebooks/(\S+)\.py[ \t]*$', _nav(), re.M)
    assert listed == [(f"Notebook {n}: {title}", page) for n, title, page in chapters], listed
    for (n, title, _), source in zip(chapters, SOURCES):
        first = jupytext.read(source).cells[0]
        assert first.cell_type == "markdown" and first.source.splitlines()[0] == f"# Notebook {n}: {title}", source


def test_the_notebooks_page_links_to_every_notebook():
    overview = (DOCS / "notebook.md").read_text(encoding="utf-8")
    linked = re.findall(r"\]\(notebooks/(\S+)\.py\)", overview)
    assert linked == [p.stem for p in SOURCES], linked


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_a_notebook_is_short_and_imports_the_package(source):
    nb = jupytext.read(source)
    code = sum(len([line for line in c.splitlines() if line.strip()]) for c in _code(nb))
    words = sum(len(c.source.split()) for c in nb.cells if c.cell_type == "markdown")
    assert code <= CODE_LINES and words <= MARKDOWN_WORDS, (code, words)
    assert re.search(r"^\s*from snippets\.\w+ import ", "\n".join(_code(nb)), re.M), "no import from snippets"
    assert "google.colab" not in source.read_text(encoding="utf-8"), "the setup is the hook's, not the source's"


def test_the_setup_cells_follow_the_title_and_install_from_repo_url():
    nb = _ipynb(FIRST)
    assert nb.cells[0].source == jupytext.read(FIRST).cells[0].source
    assert nb.cells[1].cell_type == "markdown" and nb.cells[2].cell_type == "code"
    setup = nb.cells[2].source
    assert 'if "google.colab" in sys.modules:' in setup
    assert f'"{notebook_hook.PACKAGE} @ git+{REPO_URL}"' in setup, "install URL differs from repo_url"
    name = re.search(r'^name\s*=\s*"([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert notebook_hook.PACKAGE == name


def _run_setup(monkeypatch, *, on_colab: bool) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(_code(_ipynb(FIRST))[0], "setup", "exec"), {"__name__": "__main__"})
    return calls


def test_the_setup_cell_installs_only_on_colab(monkeypatch):
    assert _run_setup(monkeypatch, on_colab=False) == []
    (cmd,) = _run_setup(monkeypatch, on_colab=True)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == f"attention-trick @ git+{REPO_URL}"


def _prompts(page: str) -> list[str]:
    return re.findall(r'class="jp-InputPrompt jp-InputArea-prompt">In\s\[(\d*)\]:', page)


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_the_built_notebook_ran_top_to_bottom_without_errors(source, built_site):
    # The build executed it (allow_errors: false); its page shows every cell's run, in order.
    page = (built_site / "notebooks" / source.stem / "index.html").read_text(encoding="utf-8")
    assert _prompts(page) == [str(n) for n in range(1, len(_code(jupytext.read(source))) + 1)], _prompts(page)
    assert not re.search(r'<div\b[^>]*data-mime-type="application/vnd\.jupyter\.stderr"', page), "a cell wrote to stderr"


def test_a_notebook_shows_a_figure_with_alt_text(built_site):
    page = (built_site / "notebooks" / "02-matrix-trick" / "index.html").read_text(encoding="utf-8")
    assert re.search(r'<img alt="[^"]{20,}" src="data:image/svg\+xml;base64,', page), "no figure with alt text"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_each_download_is_its_source_after_the_setup_cells_without_outputs(source):
    converted = _ipynb(source)
    nbformat.validate(converted)
    assert converted.metadata.kernelspec.name == "python3"
    cells = jupytext.read(source).cells
    assert [c.source for c in converted.cells] == [cells[0].source, *[c.source for c in
                                                   notebook_hook.setup_cells(REPO_URL)], *[c.source for c in cells[1:]]]
    assert all(not c.get("outputs") for c in converted.cells)


def _combined(commit=None):
    texts = {p.name: p.read_text(encoding="utf-8") for p in SOURCES}
    return nbformat.reads(notebook_hook.combined_ipynb(texts, REPO_URL, commit), as_version=4)


def test_the_combined_notebook_is_every_chapter_in_order_headings_one_level_down():
    nb = _combined()
    nbformat.validate(nb)
    assert nb.cells[0].source.startswith("# ") and [c.source for c in nb.cells[1:3]] == [
        c.source for c in notebook_hook.setup_cells(REPO_URL)]
    chapters = [c for p in SOURCES for c in jupytext.read(p).cells]
    assert len(nb.cells) == 3 + len(chapters)
    for mine, theirs in zip(nb.cells[3:], chapters, strict=True):
        if theirs.cell_type == "markdown":
            assert mine.source == re.sub(r"^(#+) ", r"#\1 ", theirs.source, flags=re.M)
        else:
            assert mine.source == theirs.source
    titles = [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("#")]
    assert [t for t in titles if t.startswith("## Notebook ")] == [
        "#" + jupytext.read(p).cells[0].source.splitlines()[0] for p in SOURCES]
    with pytest.raises(BuildError, match="no chapter notebook"):
        notebook_hook.combined_ipynb({}, REPO_URL)


@pytest.mark.slow  # every chapter again, in one kernel
def test_the_combined_notebook_runs_top_to_bottom(tmp_path):
    from nbclient import NotebookClient

    nb = _combined()
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    ran = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in ran] == list(range(1, len(ran) + 1))
    assert not [o for c in ran for o in c.outputs if o.output_type == "error" or o.get("name") == "stderr"]


def test_a_source_without_its_title_first_is_refused_naming_it():
    with pytest.raises(BuildError, match=r"docs/x\.py: a chapter's notebook starts with a Markdown cell"):
        notebook_hook.to_ipynb("# %%\nx = 1\n", REPO_URL, name="docs/x.py")


def test_colab_url_comes_from_repo_url():
    assert notebook_hook.colab_url("https://github.com/octo/demo") == (
        "https://colab.research.google.com/github/octo/demo/blob/"
        f"{notebook_hook.COLAB_BRANCH}/{notebook_hook.IPYNB}"
    )
    assert notebook_hook.colab_url("https://github.com/octo/demo.git/", "notebooks/01-x.ipynb").endswith(
        "/octo/demo/blob/notebook/notebooks/01-x.ipynb")
    with pytest.raises(BuildError, match="repo_url"):
        notebook_hook.colab_url("https://gitlab.com/octo/demo")
    with pytest.raises(BuildError, match="repo_url"):
        notebook_hook.to_ipynb(FIRST.read_text(encoding="utf-8"), "https://gitlab.com/octo/demo")


def test_deploy_workflow_publishes_what_the_colab_links_open():
    workflow = (ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8")
    tested = (ROOT / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8")
    assert "contents: write" in workflow, "pushing the notebook branch needs contents: write"
    # The artifact holds every download at its path in the site, which is its path on the branch.
    for path in (f"site/{notebook_hook.IPYNB}", f"site/{notebook_hook.NOTEBOOKS}/*.ipynb"):
        assert re.search(rf"^\s+{re.escape(path)}$", tested, re.M), f"the artifact lacks {path}"
    assert re.search(rf"git push\b.*:refs/heads/{notebook_hook.COLAB_BRANCH}\b", workflow)
    assert "path: notebooks-artifact" in workflow and "cp -R ../notebooks-artifact/. ." in workflow
    # The deploy checks that every install is pinned, with a pattern that finds the hook's pin.
    pattern = re.search(r"grep -Eq '([^']+)' \"\$f\"", tested).group(1)
    assert f"for f in site/{notebook_hook.IPYNB} site/{notebook_hook.NOTEBOOKS}/*.ipynb" in tested
    source = FIRST.read_text(encoding="utf-8")
    pinned = notebook_hook.to_ipynb(source, REPO_URL, "0123abcd" * 5)
    assert subprocess.run(["grep", "-Eq", pattern], input=pinned, text=True).returncode == 0
    unpinned = notebook_hook.to_ipynb(source, REPO_URL)
    assert subprocess.run(["grep", "-Eq", pattern], input=unpinned, text=True).returncode == 1


def test_the_ipynb_is_the_same_file_for_the_same_source_and_commit():
    """Cell ids come from index and source (jupytext's are random): an unchanged notebook is not pushed again."""
    source = FIRST.read_text(encoding="utf-8")
    first, second = (notebook_hook.to_ipynb(source, REPO_URL, "f" * 40) for _ in range(2))
    assert first == second
    ids = [c.id for c in nbformat.reads(first, as_version=4).cells]
    assert len(set(ids)) == len(ids)
    edited_source = source.replace("import torch\n", "import torch  # edited\n", 1)
    assert edited_source != source
    edited = nbformat.reads(notebook_hook.to_ipynb(edited_source, REPO_URL, "f" * 40), as_version=4)
    changed = [a for a, b in zip(ids, [c.id for c in edited.cells], strict=True) if a != b]
    assert len(changed) == 1, "only the edited cell gets a new id"


def test_the_colab_install_is_pinned_to_the_commit():
    source = FIRST.read_text(encoding="utf-8")
    install = notebook_hook.to_ipynb(source, REPO_URL, "ab" * 20)
    setup = nbformat.reads(install, as_version=4).cells[2].source
    assert re.search(r'"attention-trick @ git\+https://github\.com/[\w.-]+/[\w.-]+@' + "ab" * 20 + '"', setup), setup
    with pytest.raises(BuildError, match="40-digit commit"):
        notebook_hook.to_ipynb(source, REPO_URL, "main; rm -rf /")


def test_the_pin_is_the_last_commit_of_the_package_and_none_with_changes(tmp_path):
    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path,
                              check=True, capture_output=True, text=True).stdout.strip()

    assert notebook_hook.pinned_commit(tmp_path) is None, "not a repository"
    git("init", "-q")
    (tmp_path / "snippets").mkdir()
    (tmp_path / "snippets" / "a.py").write_text("x = 1\n")
    git("add", "-A")
    git("commit", "-qm", "package")
    package = git("rev-parse", "HEAD")
    (tmp_path / "other.md").write_text("prose\n")
    git("add", "-A")
    git("commit", "-qm", "prose only")
    assert notebook_hook.pinned_commit(tmp_path) == package, "a commit that leaves the package alone moves nothing"
    (tmp_path / "docs" / "notebooks").mkdir(parents=True)
    (tmp_path / "docs" / "notebooks" / "01-x.py").write_text("# %% [markdown]\n# # X\n")
    git("add", "-A")
    git("commit", "-qm", "a notebook")
    assert notebook_hook.pinned_commit(tmp_path) == git("rev-parse", "HEAD"), "the notebooks count"
    (tmp_path / "snippets" / "a.py").write_text("x = 2\n")
    assert notebook_hook.pinned_commit(tmp_path) is None, "changes not committed: no commit holds them"


def test_every_chapter_page_links_to_its_notebook_and_back(built_site):
    links = re.compile(r'<p class="notebook-links">(.*?)</p>', re.S)
    href = re.compile(r'<a class="md-button md-button--primary" href="([^"]+)"( download)?>([^<]+)</a>')

    def shown(page: str) -> list[tuple[str, str, str]]:
        return href.findall(links.search((built_site / page / "index.html").read_text(encoding="utf-8")).group(1))

    for source in SOURCES:
        name = source.stem
        colab = notebook_hook.colab_url(REPO_URL, f"notebooks/{name}.ipynb")
        assert shown(name) == [(f"../notebooks/{name}/", "", "This chapter&#x27;s notebook"),
                               (f"../notebooks/{name}.ipynb", " download", f"Download {name}.ipynb"),
                               (colab, "", "Open in Colab")]
        assert shown(f"notebooks/{name}") == [(f"../../{name}/", "", "Read the chapter"),
                                              (f"../{name}.ipynb", " download", f"Download {name}.ipynb"),
                                              (colab, "", "Open in Colab")]
        assert (built_site / "notebooks" / f"{name}.ipynb").is_file()
    assert shown("notebook") == [("../notebook.ipynb", " download", "Download notebook.ipynb"),
                                 (notebook_hook.colab_url(REPO_URL), "", "Open in Colab")]
    combined = nbformat.reads((built_site / "notebook.ipynb").read_text(encoding="utf-8"), as_version=4)
    assert len(combined.cells) == 3 + sum(len(jupytext.read(p).cells) for p in SOURCES)
    assert not links.search((built_site / "reference" / "index.html").read_text(encoding="utf-8")), "no notebook there"


def test_scripts_that_load_from_another_host_are_removed_and_others_kept():
    remote = [
        '<script src="https://cdn.example/mathjax/latest.js"> </script>',
        "<script SRC='http://cdn.example/a.js'></script>",
        '<script src="//cdn.example/b.js"></script>',
        '<script type="module">const m = await import("https://cdn.example/mermaid.esm.min.mjs");</script>',
        '<!-- an empty src loads nothing --><script src=""> </script>',
        # data that only the remote scripts read: MathJax's configuration, a widget state
        '<script type="text/x-mathjax-config">MathJax.Hub.Config({tex2jax: {displayMath: [["$$", "$$"]]}});</script>',
        '<script type="application/vnd.jupyter.widget-state+json">{"state": {}}</script>',
        # a loader whose URL sits in an attribute's JSON, HTML-escaped (mkdocs-jupyter 0.27)
        '<script data-loader="{&quot;url&quot;: &quot;https://cdn.example/tex-mml-chtml.js&quot;}">'
        "load(JSON.parse(document.currentScript.dataset.loader).url);</script>",
    ]
    local = [
        "<script>document.addEventListener('clipboard-copy', () => {}); // a comment</script>",
        '<script src="../assets/local.js"></script>',
        '<script type="text/javascript">let a = 1;</script>',
        '<script type="module">import "./local.mjs";</script>',
        '<script type="application/javascript">let b = 2;</script>',
        '<script data-type="x" src="../assets/other.js"></script>',
    ]
    out = notebook_hook.strip_remote_scripts("\n".join(remote + local))
    assert out.count("<script") == len(local) and all(tag in out for tag in local), out


CELL = '<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown jp-MarkdownOutput" data-mime-type="text/markdown">{}</div>'


def test_notebook_markdown_math_becomes_mathml():
    html = CELL.format(r"<p>Row $t$ gets $\frac{1}{t+1}$:</p><p>$$" "\n" r"W_{ts} &lt; 1" "\n" "$$</p>")
    out = math_hook.render_notebook_math(html)
    assert "$" not in out and "\\frac" not in out
    assert out.count("<math") == 3 and 'display="block"' in out
    assert "<mo>&#x0003C;</mo>" in out  # the entity was decoded to TeX, then escaped as MathML


def test_notebook_math_in_arithmatex_wrappers_becomes_mathml():
    """The markup that newer mkdocs-jupyter releases give a cell's formulas."""
    html = CELL.format(r'<p>Position <span class="arithmatex">\(t\)</span> may use '
                       r'<span class="arithmatex">\(0, 1, \dots, t\)</span>.</p>')
    out = math_hook.render_notebook_math(html)
    assert "arithmatex" not in out and "\\(" not in out and out.count("<math") == 2


def test_notebook_math_leaves_code_and_outputs_alone():
    code = CELL.format("<p>Use <code>$HOME</code> and</p><pre><code>echo $x $y</code></pre>")
    assert math_hook.render_notebook_math(code) == code
    output = '<div class="jp-RenderedText"><pre>cost: $5 and $6</pre></div>'
    assert math_hook.render_notebook_math(output) == output


def test_an_unpaired_dollar_fails_instead_of_showing_raw_tex():
    with pytest.raises(ValueError, match="unpaired"):
        math_hook.render_notebook_math(CELL.format("<p>costs $5</p>"))
