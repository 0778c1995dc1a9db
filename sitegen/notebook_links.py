"""The notebook page's download and "Open in Colab" links, offline.

`docs/notebook.py` is the notebook's source (jupytext percent format); the
mkdocs-jupyter plugin executes it and renders it as the page `notebook/`. This
module adds what that plugin does not:

* `notebook.ipynb`, converted from the source with jupytext before every build
  (`sitegen.pre` writes it beside the source), and a link to it at the top of the
  notebook page (`sitegen.post`);
* an "Open in Colab" link. Colab opens notebooks from GitHub, so the deploy
  workflow (`.github/workflows/pages.yml`) pushes that same `notebook.ipynb` to
  the branch `COLAB_BRANCH` of the repository named by `repo_url`, and the link
  points there. In that `.ipynb` the first cell's `pip install` of the package
  from GitHub is pinned to the last commit that changed the package or the
  notebook (`pinned_commit`), and every cell's id is made from its index and
  its source: the same notebook and package give the same file, byte for byte,
  so the workflow pushes only when something changed;
* the removal of every `<script>` in the notebook's HTML that would fetch code
  from another host: an absolute `src` (`http:`, `https:`, `//`) or an absolute
  URL in its code or, HTML-escaped, in one of its attributes (nbconvert's MathJax
  loader and Mermaid import); of one whose `src` is empty, which loads nothing;
  and of the data blocks (a `type` that is
  not JavaScript, such as MathJax's configuration), which only such scripts
  read. Formulas become MathML in `sitegen/mathml.py`.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import jupytext

from sitegen import BuildError

NOTEBOOK = "notebook.py"  # source, relative to docs/
IPYNB = "notebook.ipynb"  # what readers download; same path on the Colab branch
COLAB_BRANCH = "notebook"

# What `pip install git+...@COMMIT` takes from a commit, and the notebook itself: where none of
# them changed after COMMIT, installing COMMIT installs what this build ran.
PACKAGE_PATHS = ("pyproject.toml", "README.md", "LICENSE", "snippets", "bench", f"docs/{NOTEBOOK}")
_SHA = re.compile(r"[0-9a-f]{40}")
# The install URL in the notebook's first cell, ended by its closing quote.
_INSTALL = re.compile(r"(git\+https://github\.com/[\w.-]+/[\w.-]+?)(?:\.git)?(?=[\"'])")
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


def colab_url(repo_url: str) -> str:
    """Where Colab opens the notebook that the deploy workflow pushes to GitHub."""
    m = _GITHUB.match(repo_url or "")
    if not m:
        raise BuildError(f"repo_url must be https://github.com/OWNER/REPO for the Colab link, got {repo_url!r}")
    return f"https://colab.research.google.com/github/{m['owner']}/{m['repo']}/blob/{COLAB_BRANCH}/{IPYNB}"


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


def to_ipynb(source: str, commit: str | None = None) -> str:
    """The percent-format source as an .ipynb document (no outputs: readers run it).

    With `commit`, the package's install URL is pinned to it. Cell ids are the cell's
    index and a digest of its source (jupytext would make random ones).
    """
    if commit is not None:
        if not _SHA.fullmatch(commit):
            raise BuildError(f"the notebook's install can be pinned to a 40-digit commit hash, got {commit!r}")
        source, found = _INSTALL.subn(rf"\1@{commit}", source)
        if found != 1:
            raise BuildError(f"docs/{NOTEBOOK} must name the package's git+https://github.com/OWNER/REPO URL "
                              f"once, to pin it to the deployed commit; found it {found} times")
    notebook = jupytext.reads(source, fmt="py:percent")
    for i, cell in enumerate(notebook.cells):
        cell.id = f"{i}-{hashlib.sha256(cell.source.encode()).hexdigest()[:12]}"
    return jupytext.writes(notebook, fmt="ipynb")


def strip_remote_scripts(html: str) -> str:
    """`html` without the scripts that would load code from another host, load nothing, or only hold data."""
    return _SCRIPT.sub(lambda m: "" if _REMOTE.search(m.group(0)) or _DATA.match(m.group(0)) else m.group(0), html)


def with_links(page_html: str, download: str, repo_url: str) -> str:
    """The notebook page's HTML with its download and "Open in Colab" links after its title
    (the notebook's first heading), or first if it has none; `download` is the `.ipynb`'s URL
    relative to the page."""
    links = (
        '\n<p class="notebook-links">'
        f'<a class="md-button md-button--primary" href="{download}" download>Download {IPYNB}</a> '
        f'<a class="md-button md-button--primary" href="{colab_url(repo_url)}">Open in Colab</a>'
        "</p>\n"
    )
    heading = re.search(r"</h1>", page_html)
    at = heading.end() if heading else 0
    return page_html[:at] + links + page_html[at:]
