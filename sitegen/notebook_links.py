"""The notebooks' downloads and launch links, offline.

Every chapter has a notebook: `docs/notebooks/NN-topic.py` for the chapter `docs/NN-topic.md`
(jupytext percent format, the one source of each), which the mkdocs-jupyter plugin executes and
renders as the page `notebooks/NN-topic/`. This module adds what that plugin does not:

* the downloads, written before every build by `sitegen.pre` with jupytext: each chapter's
  notebook as `docs/notebooks/NN-topic.ipynb`, and all of them in one, in chapter order, as
  `docs/notebook.ipynb` (`combined_ipynb`), the download of the page `notebook/`. Each starts
  with the same setup cells (`setup_cells`, written only here): on Colab they install the
  tutorial's package from `repo_url`, and without a CUDA GPU they ask for Triton's interpreter;
* the launch links (`launch_links`), put after the title of the page they belong to by
  `sitegen.post`: on a notebook page its download, "Open in Colab" and its chapter; on a
  chapter page its notebook's page, download and "Open in Colab"; on `notebook/` the
  combined download and its Colab link. Colab opens notebooks from GitHub, so the deploy
  workflow (`.github/workflows/pages.yml`) pushes the same `.ipynb` files, at the same paths,
  to the branch `COLAB_BRANCH` of the repository named by `repo_url`, and the links point
  there. In those files the setup cell's `pip install` of the package from GitHub is pinned
  to the last commit that changed the package or the notebooks (`pinned_commit`), and every
  cell's id is made from its index and its source: the same notebooks and package give the
  same files, byte for byte, so the workflow pushes only when something changed;
* the removal of every `<script>` in a notebook page's HTML that would fetch code
  from another host: an absolute `src` (`http:`, `https:`, `//`) or an absolute
  URL in its code or, HTML-escaped, in one of its attributes (nbconvert's MathJax
  loader and Mermaid import); of one whose `src` is empty, which loads nothing;
  and of the data blocks (a `type` that is
  not JavaScript, such as MathJax's configuration), which only such scripts
  read. Formulas become MathML in `sitegen/mathml.py`.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import subprocess
from html import escape
from pathlib import Path

import jupytext
import nbformat

from sitegen import BuildError

NOTEBOOKS = "notebooks"  # the chapters' notebooks, relative to docs/: NOTEBOOKS/NN-topic.py
CHAPTER_NOTEBOOK = "[0-9][0-9]-*.py"  # the name of a chapter's notebook source in NOTEBOOKS/
IPYNB = "notebook.ipynb"  # every chapter's notebook in one; same path on the Colab branch
COLAB_BRANCH = "notebook"
PACKAGE = "attention-trick"  # the distribution name in pyproject.toml

# What `pip install git+...@COMMIT` takes from a commit, and the notebooks themselves: where none
# of them changed after COMMIT, installing COMMIT installs what this build ran.
PACKAGE_PATHS = ("pyproject.toml", "README.md", "LICENSE", "snippets", "bench", f"docs/{NOTEBOOKS}")
_SHA = re.compile(r"[0-9a-f]{40}")
_GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)(?:\.git)?/?$")
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script>", re.S | re.I)
# A quoted absolute URL (src="https://...", import("//...")) or an empty src; the quotes may be
# HTML entities, as in a URL inside an attribute's JSON (data-config="{&quot;url&quot;: ...}").
_REMOTE = re.compile(
    r"""(?:["']|&quot;|&#34;|&#x22;|&#39;|&#x27;)(?:https?:)?//|\bsrc\s*=\s*(?:""|'')""", re.I
)
# A data block: a type the browser does not run (JavaScript is no type, a JavaScript MIME type, or module).
_DATA = re.compile(
    r"""^<script\b[^>]*(?<![\w-])type\s*=\s*["']?"""
    r"""(?!(?:text/javascript|application/javascript|text/ecmascript|application/ecmascript|module)\b)[^"'\s>]""",
    re.I,
)

SETUP_TEXT = (
    "The next cell installs the tutorial's `snippets` package when this notebook runs on Google "
    "Colab; anywhere else it expects the package to be installed already (`python3 dev.py test` "
    "in a clone of the repository sets that up). Without a CUDA GPU it also asks for Triton's "
    "interpreter, which runs chapter 10's kernel on the CPU; that has to happen before anything "
    "imports triton, so it happens first."
)
SETUP_CODE = """import os
import subprocess
import sys

import torch

if "google.colab" in sys.modules:
    # Colab has torch already; this adds the tutorial's own package.
    PACKAGE = "{package} @ {url}"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", PACKAGE], check=True)
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")  # read when triton is first imported"""
COMBINED_TITLE = (
    "# The attention trick: every chapter's notebook\n\n"
    "The notebook of each chapter of the tutorial, one after the other. Run the cells from top "
    "to bottom; the site shows each chapter's notebook on a page of its own, with the outputs "
    "of the run made when the site was built."
)


def _github(repo_url: str | None) -> re.Match:
    m = _GITHUB.match(repo_url or "")
    if not m:
        raise BuildError(f"repo_url must be https://github.com/OWNER/REPO for the Colab link and the "
                         f"notebooks' install, got {repo_url!r}")
    return m


def colab_url(repo_url: str, path: str = IPYNB) -> str:
    """Where Colab opens the notebook `path` (relative to the site) that the deploy workflow pushes to GitHub."""
    m = _github(repo_url)
    return f"https://colab.research.google.com/github/{m['owner']}/{m['repo']}/blob/{COLAB_BRANCH}/{path}"


def install_url(repo_url: str, commit: str | None = None) -> str:
    """What the setup cell gives pip: the repository, pinned to `commit` if one is given."""
    m = _github(repo_url)
    if commit is not None and not _SHA.fullmatch(commit):
        raise BuildError(f"the notebooks' install can be pinned to a 40-digit commit hash, got {commit!r}")
    return f"git+https://github.com/{m['owner']}/{m['repo']}" + (f"@{commit}" if commit else "")


def pinned_commit(root: Path) -> str | None:
    """The last commit that changed PACKAGE_PATHS, or None: no git, no repository, or changes not committed."""

    def git(*args: str) -> subprocess.CompletedProcess | None:
        try:
            return subprocess.run(["git", *args, "--", *PACKAGE_PATHS], cwd=root, capture_output=True,
                                  text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            return None

    last, status = git("log", "-1", "--format=%H"), git("status", "--porcelain")
    if not (last and status) or last.returncode or status.returncode or status.stdout.strip():
        return None
    sha = last.stdout.strip()
    return sha if _SHA.fullmatch(sha) else None


def setup_cells(repo_url: str, commit: str | None = None) -> list:
    """The two cells every download starts with, after its title: what they do, and the setup."""
    code = SETUP_CODE.format(package=PACKAGE, url=install_url(repo_url, commit))
    return [nbformat.v4.new_markdown_cell(SETUP_TEXT), nbformat.v4.new_code_cell(code)]


def _write(notebook) -> str:
    """The notebook as an .ipynb document whose cell ids are the cell's index and a digest of its
    source (jupytext would make random ones), without outputs: readers run it."""
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{i}-{hashlib.sha256(cell.source.encode()).hexdigest()[:12]}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return jupytext.writes(notebook, fmt="ipynb")


def _read(source: str, name: str):
    notebook = jupytext.reads(source, fmt="py:percent")
    first = notebook.cells[0] if notebook.cells else None
    if first is None or first.cell_type != "markdown" or not first.source.startswith("# "):
        raise BuildError(f"{name}: a chapter's notebook starts with a Markdown cell that opens with its "
                         f"title (# TITLE), got {first.source[:60] if first else 'no cell'!r}")
    return notebook


def to_ipynb(source: str, repo_url: str, commit: str | None = None, name: str = "the notebook") -> str:
    """A chapter's percent-format source (from the file `name`) as its download: the title cell,
    the setup cells, the rest. With `commit`, the package's install is pinned to it.
    """
    notebook = _read(source, name)
    notebook.cells[1:1] = setup_cells(repo_url, commit)
    return _write(notebook)


def _demoted(cell):
    """A Markdown cell with each of its headings one level down (# Title becomes ## Title)."""
    if cell.cell_type == "markdown":
        cell.source = re.sub(r"^(#{1,5}) ", r"#\1 ", cell.source, flags=re.M)
    return cell


def combined_ipynb(sources: dict[str, str], repo_url: str, commit: str | None = None) -> str:
    """The chapters' sources (file name: source, in chapter order) as one download: a title, the
    setup cells, then each chapter's cells, its headings one level down."""
    if not sources:
        raise BuildError(f"no chapter notebook (docs/{NOTEBOOKS}/{CHAPTER_NOTEBOOK}) to put into {IPYNB}")
    chapters = [_read(source, name) for name, source in sources.items()]
    notebook = chapters[0]  # its metadata: the kernel, jupytext's format
    notebook.cells = [nbformat.v4.new_markdown_cell(COMBINED_TITLE), *setup_cells(repo_url, commit),
                      *(_demoted(cell) for chapter in chapters for cell in chapter.cells)]
    return _write(notebook)


def chapter_notebooks(docs_dir: Path) -> list[Path]:
    """The chapters' notebook sources, in chapter order."""
    return sorted((docs_dir / NOTEBOOKS).glob(CHAPTER_NOTEBOOK))


def strip_remote_scripts(html: str) -> str:
    """`html` without the scripts that would load code from another host, load nothing, or only hold data."""
    return _SCRIPT.sub(lambda m: "" if _REMOTE.search(m.group(0)) or _DATA.match(m.group(0)) else m.group(0), html)


def launch_links(relative: str, site: Path, repo_url: str) -> str | None:
    """The launch links of the page at `relative` (a path in the site, `PAGE/index.html`) as a
    paragraph of buttons, or None where the page has no notebook. The page `PAGE/` shows the
    notebook `PAGE.ipynb` (a chapter's notebook page, or `notebook/` for the combined one); the
    chapter page `NN-topic/` has its notebook at `notebooks/NN-topic/`. Every href is relative."""
    if not relative.endswith("/index.html"):
        return None
    page = relative.removesuffix("/index.html")
    up = "../" * (page.count("/") + 1)
    links: list[tuple[str, str, bool]] = []  # (label, href, a download)
    if (site / f"{page}.ipynb").is_file():
        ipynb = f"{page}.ipynb"
        chapter = page.removeprefix(f"{NOTEBOOKS}/")
        if chapter != page and (site / chapter / "index.html").is_file():
            links.append(("Read the chapter", f"{up}{chapter}/", False))
    elif (site / NOTEBOOKS / f"{page}.ipynb").is_file():
        ipynb = f"{NOTEBOOKS}/{page}.ipynb"
        if (site / NOTEBOOKS / page / "index.html").is_file():
            links.append(("This chapter's notebook", f"{up}{NOTEBOOKS}/{page}/", False))
    else:
        return None
    links += [(f"Download {posixpath.basename(ipynb)}", posixpath.relpath(ipynb, page), True),
              ("Open in Colab", colab_url(repo_url, ipynb), False)]
    buttons = " ".join(
        f'<a class="md-button md-button--primary" href="{escape(href)}"{" download" if is_download else ""}>'
        f"{escape(label)}</a>"
        for label, href, is_download in links
    )
    return f'\n<p class="notebook-links">{buttons}</p>\n'


def with_links(page_html: str, links: str) -> str:
    """`page_html` (a page's content) with the paragraph `links` after its title (its first
    heading), or first if it has none."""
    heading = re.search(r"</h1>", page_html)
    at = heading.end() if heading else 0
    return page_html[:at] + links + page_html[at:]
