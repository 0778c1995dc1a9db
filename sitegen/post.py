"""The post-build pass over the finished site: every `*.html` file in the site folder, changed in
place (atomically), in this order:

1. `notebook`: on the pages that hold nbconvert's markup, in the article, the scripts that would
   load from another host removed and formulas as MathML (`sitegen.notebook_links`,
   `sitegen.mathml`); on every page that has a notebook (a notebook page, a chapter page, the
   page `notebook/`), its launch links after the title: the download, "Open in Colab", and the
   notebook's page or its chapter (`sitegen.notebook_links.launch_links`);
2. `palettes`: each drawing's `<img>` as a light and a dark one (`sitegen.palettes`);
3. `copy`: the copy button's text of `>>>` sessions (`sitegen.copy`);
4. `widgets`: the interactive figures' numbers (`sitegen.widgets`);
5. `a11y`: boxes that scroll sideways take keyboard focus (`sitegen.a11y`);
6. `tested_with`: the "tested with" line (`sitegen.tested_with`);
7. the notebook pages' output check (`sitegen.notebook_outputs.check_page`), which runs with
   the `notebook` step: what the browser would run or fetch, refused naming the cell;
8. `csp`, last: the Content-Security-Policy, which refuses an inline script not on its
   allow-list, an inline event handler, a `javascript:` URL and a `<meta http-equiv=refresh>`
   (`sitegen.csp`). Left out for `mkdocs serve` (`csp=False`), whose live-reload script it would block.

MkDocs' search plugin indexed the notebook pages before this pass: in `search/search_index.json`
(where there is one), their formulas become the text of their MathML, as the search plugin
would have read it (`search_text`).

A page the pass refuses is deleted from the site folder before the error is raised. A page the
pass has finished ends with `DONE`; it is left alone when the pass runs again (as
`python -m sitegen post site/` after a `mkdocs build` that ran it through the adapter).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from sitegen import BuildError
from sitegen.config import Config
from sitegen.files import write

DONE = "<!-- sitegen post: done -->"
# The page's content: Material's <article>, else (another theme) the whole <body>.
_ARTICLE = re.compile(r"(<article\b[^>]*>)(.*)(</article>)", re.S)
_BODY = re.compile(r"(<body\b[^>]*>)(.*)(</body>)", re.S | re.I)


def base_url(relative: str, site_url: str | None) -> str:
    """The `base_url` the theme's templates wrote into the page at `relative` (a path in the site):
    the way up to the site's root from a page's folder, and the site's path for `404.html`, which
    MkDocs renders as a template with absolute URLs."""
    if relative == "404.html":
        return urlsplit(site_url or "/").path
    depth = relative.count("/")
    return "/".join([".."] * depth) or "."


def _notebook(page_html: str, relative: str) -> str:
    from sitegen.mathml import render_notebook_math
    from sitegen.notebook_links import strip_remote_scripts

    m = _content(page_html, relative)
    body = strip_remote_scripts(m.group(2))
    try:
        body = render_notebook_math(body)
    except Exception as exc:  # latex2mathml raises several exception types
        raise BuildError(f"{relative}: a formula could not be converted: {exc}") from exc
    return page_html[: m.start(2)] + body + page_html[m.end(2):]


def _content(page_html: str, relative: str) -> re.Match:
    m = _ARTICLE.search(page_html) or _BODY.search(page_html)
    if m is None:
        raise BuildError(f"{relative}: a page without an <article> or a <body> for its content")
    return m


def _launch_links(page_html: str, relative: str, config: Config, site: Path) -> str:
    """The page's notebook links after its title, where it has a notebook (`sitegen.notebook_links`)."""
    from sitegen.notebook_links import launch_links, with_links

    links = launch_links(relative, site, config.repo_url or "")
    if links is None:
        return page_html
    m = _content(page_html, relative)
    return page_html[: m.start(2)] + with_links(m.group(2), links) + page_html[m.end(2):]


def page(page_html: str, relative: str, config: Config, site: Path, *, csp: bool = True,
         tested_with: str | None = None) -> str:
    """One page of the site (`relative` to the site folder) after the pass."""
    from sitegen import a11y, copy, csp as policy, notebook_outputs, palettes, tested_with as tw, widgets

    steps = config.steps
    notebook = notebook_outputs.is_notebook(page_html)
    if notebook and "notebook" in steps:
        page_html = _notebook(page_html, relative)
    if "notebook" in steps:
        page_html = _launch_links(page_html, relative, config, site)
    if "palettes" in steps:
        page_html = palettes.both_palettes(page_html)
    if "copy" in steps:
        page_html = copy.with_copy_text(page_html)
    if "widgets" in steps:
        page_html = widgets.with_traces(page_html)
    if "a11y" in steps:
        page_html = a11y.focusable_boxes(page_html)
    if "tested_with" in steps and tested_with is not None:
        page_html = tw.fill(page_html, tested_with)
    if notebook and "notebook" in steps:
        notebook_outputs.check_page(page_html, relative)
    if csp and "csp" in steps:
        page_html = policy.with_policy(page_html, relative, base_url(relative, config.site_url), config.scope)
    return page_html


def search_text(text: str) -> str:
    """A search index entry's text with each `$...$` and `$$...$$` outside code as its formula's text."""
    import html

    from sitegen.mathml import _CODE, _DOLLARS_BLOCK, _DOLLARS_INLINE, tex_to_mathml

    def plain(m: re.Match, display: bool) -> str:
        return html.unescape(re.sub(r"<[^>]*>", "", tex_to_mathml(m.group(1), display=display)))

    parts = _CODE.split(text)  # odd items are code
    return "".join(p if i % 2 else _DOLLARS_INLINE.sub(lambda m: plain(m, False),
                                                       _DOLLARS_BLOCK.sub(lambda m: plain(m, True), p))
                   for i, p in enumerate(parts))


def _reindex(site: Path, notebook_pages: list[str]) -> None:
    """The notebook pages' formulas in MkDocs' search index as text (see the module's docstring)."""
    import json

    index = site / "search" / "search_index.json"
    if not notebook_pages or not index.is_file():
        return
    data = json.loads(index.read_text(encoding="utf-8"))
    urls = tuple(p.removesuffix("index.html") for p in notebook_pages)
    for doc in data.get("docs", []):
        if isinstance(doc, dict) and str(doc.get("location", "")).split("#")[0] in urls:
            try:
                doc["text"] = search_text(str(doc.get("text", "")))
            except Exception as exc:  # latex2mathml raises several exception types
                raise BuildError(f"search/search_index.json: a formula of {doc.get('location')!r} "
                                 f"could not be converted: {exc}") from exc
    write(index, json.dumps(data, ensure_ascii=False, separators=(",", ":")))


def run(site: Path, config: Config, *, csp: bool = True) -> int:
    """The pass over every HTML file below `site`; the number of pages it changed."""
    from sitegen import tested_with

    if not site.is_dir():
        raise BuildError(f"{site}: no such folder; build the site first")
    line = tested_with.line_for(config.root, os.environ) if "tested_with" in config.steps else None
    done, notebooks = 0, []
    for path in sorted(site.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        if text.rstrip().endswith(DONE):
            continue
        relative = path.relative_to(site).as_posix()
        if _is_notebook(text) and "notebook" in config.steps:
            notebooks.append(relative)
        try:
            done_html = page(text, relative, config, site, csp=csp, tested_with=line)
        except BuildError:
            path.unlink()  # a failed build leaves no refused page in the site
            raise
        write(path, done_html + "\n" + DONE + "\n")
        done += 1
    _reindex(site, notebooks)
    return done


def _is_notebook(page_html: str) -> bool:
    from sitegen.notebook_outputs import is_notebook

    return is_notebook(page_html)
