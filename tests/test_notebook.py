"""The notebook (docs/notebook.py) and the hooks that publish it: runs clean, installs on Colab only."""

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

NOTEBOOK = ROOT / "docs" / "notebook.py"
REPO_URL = re.search(r"^repo_url:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(), re.M).group(1)


notebook_hook = load_file("sitegen/notebook_links.py")
math_hook = load_file("sitegen/mathml.py")


@pytest.fixture(scope="module")
def nb() -> nbformat.NotebookNode:
    return jupytext.read(NOTEBOOK)


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def _nav_chapters() -> list[tuple[str, str, str]]:
    """(number, title, page) of every numbered chapter in mkdocs.yml's nav, in nav order."""
    nav = re.search(r"^nav:\n((?:[ \t]+-.*\n)+)", (ROOT / "mkdocs.yml").read_text(), re.M).group(1)
    return re.findall(r"^[ \t]+-[ \t]+(\d+)\.[ \t]+(.+?):[ \t]+(\S+\.md)[ \t]*$", nav, re.M)


def test_notebook_has_a_section_for_every_chapter_in_the_nav(nb):
    chapters = _nav_chapters()
    # Every numbered page in docs/ is in the list: the pattern above missed none.
    assert sorted(page for _, _, page in chapters) == sorted(p.name for p in (ROOT / "docs").glob("[0-9][0-9]-*.md"))
    assert len(chapters) >= 10, chapters
    headings = [line for c in nb.cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if line.startswith("#")]
    assert headings[0].startswith("# "), "the first heading is the page title"
    sections = [h for h in headings if h.startswith("## ")]
    assert sections == [f"## {n}. {title}" for n, title, _ in chapters], sections


def test_first_cell_installs_the_package_from_repo_url(nb):
    first = _code(nb)[0]
    assert 'if "google.colab" in sys.modules:' in first
    assert f"git+{REPO_URL}" in first.replace('"\n    "', ""), "install URL differs from repo_url"


def _run_first_cell(nb, monkeypatch, *, on_colab: bool) -> list[list[str]]:
    calls: list[list[str]] = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd))
    if on_colab:
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    try:
        exec(compile(_code(nb)[0], str(NOTEBOOK), "exec"), {"__name__": "__main__"})
    finally:
        torch.set_printoptions(profile="default", sci_mode=None)
    return calls


def test_first_cell_installs_only_on_colab(nb, monkeypatch):
    assert _run_first_cell(nb, monkeypatch, on_colab=False) == []
    (cmd,) = _run_first_cell(nb, monkeypatch, on_colab=True)
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert cmd[-1] == f"attention-trick @ git+{REPO_URL}"


def test_the_built_notebook_ran_top_to_bottom_without_errors(nb, built_site):
    # The build executed it (allow_errors: false); its page shows every cell's run, in order.
    page = (built_site / "notebook" / "index.html").read_text(encoding="utf-8")
    prompts = re.findall(r'class="jp-InputPrompt jp-InputArea-prompt">In\s\[(\d*)\]:', page)
    assert prompts == [str(n) for n in range(1, len(_code(nb)) + 1)], prompts
    assert not re.search(r'<div\b[^>]*data-mime-type="application/vnd\.jupyter\.stderr"', page), "a cell wrote to stderr"
    assert re.search(r'<img alt="[^"]{20,}" src="data:image/svg\+xml;base64,', page), "no figure with alt text"


def test_downloadable_ipynb_is_the_source_without_outputs(nb):
    converted = nbformat.reads(notebook_hook.to_ipynb(NOTEBOOK.read_text(encoding="utf-8")), as_version=4)
    nbformat.validate(converted)
    assert converted.metadata.kernelspec.name == "python3"
    assert [c.source for c in converted.cells] == [c.source for c in nb.cells]
    assert all(not c.get("outputs") for c in converted.cells)


def test_colab_url_comes_from_repo_url():
    assert notebook_hook.colab_url("https://github.com/octo/demo") == (
        "https://colab.research.google.com/github/octo/demo/blob/"
        f"{notebook_hook.COLAB_BRANCH}/{notebook_hook.IPYNB}"
    )
    assert notebook_hook.colab_url("https://github.com/octo/demo.git/").endswith("/octo/demo/blob/notebook/notebook.ipynb")
    with pytest.raises(BuildError, match="repo_url"):
        notebook_hook.colab_url("https://gitlab.com/octo/demo")


def test_deploy_workflow_publishes_what_the_colab_link_opens():
    workflow = (ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8")
    tested = (ROOT / ".github" / "workflows" / "test.yml").read_text(encoding="utf-8")
    assert "contents: write" in workflow, "pushing the notebook branch needs contents: write"
    assert f"site/{notebook_hook.IPYNB}" in tested, "the notebook of the site the tests ran on"
    assert re.search(rf"git push\b.*:refs/heads/{notebook_hook.COLAB_BRANCH}\b", workflow)
    # The deploy checks that the install is pinned, with a pattern that finds the hook's pin.
    pattern = re.search(r"grep -Eq '([^']+)' site/notebook\.ipynb", tested).group(1)
    pinned = notebook_hook.to_ipynb(NOTEBOOK.read_text(encoding="utf-8"), "0123abcd" * 5)
    assert subprocess.run(["grep", "-Eq", pattern], input=pinned, text=True).returncode == 0
    unpinned = notebook_hook.to_ipynb(NOTEBOOK.read_text(encoding="utf-8"))
    assert subprocess.run(["grep", "-Eq", pattern], input=unpinned, text=True).returncode == 1


def test_the_ipynb_is_the_same_file_for_the_same_source_and_commit():
    """Cell ids come from index and source (jupytext's are random): an unchanged notebook is not pushed again."""
    source = NOTEBOOK.read_text(encoding="utf-8")
    first, second = (notebook_hook.to_ipynb(source, "f" * 40) for _ in range(2))
    assert first == second
    ids = [c.id for c in nbformat.reads(first, as_version=4).cells]
    assert len(set(ids)) == len(ids)
    edited_source = source.replace('print("torch", torch.__version__)', "print(torch.__version__)")
    edited = nbformat.reads(notebook_hook.to_ipynb(edited_source, "f" * 40), as_version=4)
    changed = [a for a, b in zip(ids, [c.id for c in edited.cells], strict=True) if a != b]
    assert len(changed) == 1, "only the edited cell gets a new id"


def test_the_colab_install_is_pinned_to_the_commit():
    source = NOTEBOOK.read_text(encoding="utf-8")
    pinned = nbformat.reads(notebook_hook.to_ipynb(source, "ab" * 20), as_version=4)
    install = pinned.cells[1].source
    assert re.search(r'"git\+https://github\.com/[\w.-]+/[\w.-]+@' + "ab" * 20 + '"', install), install
    with pytest.raises(BuildError, match="40-digit commit"):
        notebook_hook.to_ipynb(source, "main; rm -rf /")
    with pytest.raises(BuildError, match="found it 0 times"):
        notebook_hook.to_ipynb(source.replace("git+https://github.com/", "https://example.org/"), "ab" * 20)


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
    (tmp_path / "snippets" / "a.py").write_text("x = 2\n")
    assert notebook_hook.pinned_commit(tmp_path) is None, "changes not committed: no commit holds them"


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
