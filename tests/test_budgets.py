"""Each chapter's main path stays short, measured on the built pages (MAINTAINING.md, "Budgets").

The main path is what a reader sees without opening anything: the page's article minus every
collapsed block (a `<details>` without `open`: the validated versions, the solutions, the
engineering asides). On it a chapter has at most PROSE_WORDS words of prose and CODE_LINES
non-blank lines of code. And no definition (a top-level `def NAME` or `class NAME` line in a
code block, collapsed or not) is shown twice on the whole site, counting every page: the notebooks
too, and the API reference, whose entries are signatures without `def` or `class` (mkdocstrings'
`show_source: false`), so they show no definition and count for nothing. One exception: a block
included from `snippets/` (its title names the file) shows its first definition and carries
after it what that one calls, helpers of `snippets/checks.py` or another definition of the
package, so that the block can be copied alone (tests/test_pages.py,
test_shown_block_works_alone); what it carries does not count as shown.

`python -m tests.test_budgets SITE` prints the table for a site built into SITE.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest


PROSE_WORDS, CODE_LINES = 1500, 150
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# A top-level definition: at the start of a line, or right after a doctest prompt (a method is
# part of its class).
_DEFINITION = re.compile(r"^(?:>>> |\.\.\. )?(?:async\s+def|def|class)\s+([A-Za-z_]\w*)", re.M)


class _Article(HTMLParser):
    """The text of a page's <article>: prose words and code blocks, each marked collapsed or not."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, str]] = []  # (tag, role): role is what the element hides
        self.prose: list[str] = []
        self.blocks: list[tuple[bool, str, str]] = []  # (collapsed, title, text) of each <pre>
        self._pre: list[str] | None = None
        self._title: list[str] | None = None  # a code block's title (pymdownx's span.filename)
        self._last_title = ""

    def _role(self, tag: str, attrs: dict[str, str | None]) -> str:
        classes = (attrs.get("class") or "").split()
        if tag == "article" and "md-content__inner" in classes:
            return "article"
        if tag == "details" and "open" not in attrs:
            return "collapsed"
        if tag == "pre":
            return "pre"
        if tag == "span" and "filename" in classes:
            return "title"
        if tag in ("math", "svg", "script", "style") or "headerlink" in classes:
            return "hidden"  # formulas, drawings, and the permalink's pilcrow are no words
        if "md-content__button" in classes or "tested-with" in classes or "notebook-links" in classes:
            return "hidden"  # the edit button, the build footer and the notebook's buttons are no prose
        return ""

    def _in(self, role: str) -> bool:
        return any(r == role for _, r in self.stack)

    def handle_starttag(self, tag, attrs):
        if tag in _VOID:
            return
        role = self._role(tag, dict(attrs))
        self.stack.append((tag, role))
        if role == "pre":
            self._pre = []
        elif role == "title":
            self._title = []

    def handle_endtag(self, tag):
        if tag in _VOID:
            return
        while self.stack:  # html.parser does not close what the author left open; close up to tag
            open_tag, role = self.stack.pop()
            if role == "pre" and self._pre is not None:
                self.blocks.append((self._in("collapsed"), self._last_title, "".join(self._pre)))
                self._pre, self._last_title = None, ""
            elif role == "title" and self._title is not None:
                self._last_title, self._title = "".join(self._title), None
            if open_tag == tag:
                break

    def handle_data(self, data):
        if not self._in("article"):
            return
        if self._pre is not None:
            self._pre.append(data)
        elif self._title is not None:
            self._title.append(data)
        elif not (self._in("collapsed") or self._in("hidden")):
            self.prose.append(data)


def read(page: Path) -> _Article:
    parser = _Article()
    parser.feed(page.read_text(encoding="utf-8"))
    parser.close()
    return parser


def measure(site: Path) -> list[tuple[str, int, int, int]]:
    """(chapter, prose words, code lines shown, code lines collapsed) for every chapter."""
    rows = []
    for page in sorted(site.glob("[0-9][0-9]-*/index.html")):
        article = read(page)
        lines = {True: 0, False: 0}
        for collapsed, _, text in article.blocks:
            lines[collapsed] += sum(1 for line in text.splitlines() if line.strip())
        words = len(" ".join(article.prose).split())
        rows.append((page.parent.name, words, lines[False], lines[True]))
    return rows


def table(rows) -> str:
    out = [f"{'chapter':<22} {'prose words':>11} {'code shown':>10} {'collapsed':>9}"]
    out += [f"{name:<22} {w:>11,} {c:>10} {h:>9}" for name, w, c, h in rows]
    return "\n".join(out)


def definitions(site: Path) -> Counter:
    """How many times each `def`/`class` name is shown in a code block anywhere on the site: every
    top-level definition of a typed block, the first of a block included from snippets/."""
    shown: Counter = Counter()
    for page in sorted(site.rglob("*.html")):
        where = page.parent.relative_to(site).as_posix() or "home"
        for _, title, text in read(page).blocks:
            names = [m[1] for m in _DEFINITION.finditer(text)]
            if title.startswith("snippets/"):
                names = names[:1]  # the rest is carried so that the block runs alone
            shown.update((name, where) for name in names)
    return shown


def test_the_parser_sees_collapsed_code_and_prose_apart(tmp_path):
    page = tmp_path / "01-x" / "index.html"
    page.parent.mkdir()
    page.write_text(
        '<html><body><a class="md-content__button">Edit</a><article class="md-content__inner md-typeset">'
        '<h1>One two<a class="headerlink" href="#">&para;</a></h1><p>three <code>four</code>'
        '<math><mi>x</mi></math></p><pre><code>a = 1\n\nb = 2\n</code></pre>'
        '<details class="example"><summary>six</summary><pre><code>def f():\n    pass\n</code></pre></details>'
        '<div class="highlight"><span class="filename">snippets/x.py</span><pre><code>def h(): pass\n'
        'def f(): pass\n</code></pre></div>'
        '<details class="note" open><summary>five</summary><pre><code>class G: pass\n</code></pre></details>'
        '<p class="tested-with"><small>build</small></p><p class="notebook-links"><a href="n/">Its notebook</a></p>'
        '</article><p>outside</p></body></html>',
        encoding="utf-8",
    )
    assert measure(tmp_path) == [("01-x", 5, 5, 2)]
    assert definitions(tmp_path) == Counter({("f", "01-x"): 1, ("G", "01-x"): 1, ("h", "01-x"): 1})


def test_each_chapter_keeps_to_its_budget(built_site):
    rows = measure(built_site)
    print("\n" + table(rows))
    assert len(rows) >= 12, rows
    over = [f"{name}: {w} words (at most {PROSE_WORDS}), {c} lines of code shown (at most {CODE_LINES})"
            for name, w, c, _ in rows if w > PROSE_WORDS or c > CODE_LINES]
    assert not over, "over budget (move the engineering to an appendix):\n" + "\n".join(over) + "\n" + table(rows)


def test_no_definition_is_shown_twice(built_site):
    shown = definitions(built_site)
    pages: dict[str, list[str]] = {}
    for (name, page), n in shown.items():
        pages.setdefault(name, []).extend([page] * n)
    assert {"causal_attention", "Head", "prefix_mean_matmul"} <= set(pages), "the scan found too little"
    twice = {name: where for name, where in pages.items() if len(where) > 1}
    assert not twice, "shown more than once (show it once, link to it elsewhere): " + repr(twice)


if __name__ == "__main__":
    site = Path(sys.argv[1])
    print(table(measure(site)))
    counts: dict[str, list[str]] = {}
    for (name, page), n in definitions(site).items():
        counts.setdefault(name, []).extend([page] * n)
    for name, where in sorted(counts.items()):
        if len(where) > 1:
            print(f"shown {len(where)} times: {name}: {where}")
