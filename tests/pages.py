"""Reading the pages the way MkDocs and Sybil do, for the tests that check them."""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# An opening fence: optional indent (pages put solutions inside admonitions), then
# three or more backticks or tildes, then the info string.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)$", re.M)
_PYTHON = re.compile(r"^(python3?|py|pycon|ipython|py3)\b", re.I)
_INCLUDE = re.compile(r'^--8<-- "(?P<path>[^":]+)(?::(?P<section>[\w-]+))?"$')
_SECTION = re.compile(r"^[ \t]*# --8<-- \[(?P<kind>start|end):(?P<name>[\w-]+)\][ \t]*$", re.M)


@dataclass
class Fence:
    page: Path
    start: int  # offsets of the opening and closing lines, as Sybil's regions count them
    end: int
    line: int
    info: str
    body: str

    @property
    def is_python(self) -> bool:
        return bool(_PYTHON.match(self.info.strip()))

    @property
    def includes(self) -> list[tuple[str, str | None]]:
        """(path, section) for each --8<-- line, if the block holds only includes."""
        lines = [ln.strip() for ln in self.body.splitlines() if ln.strip()]
        found = [_INCLUDE.match(ln) for ln in lines]
        if not lines or not all(found):
            return []
        return [(m["path"], m["section"]) for m in found]

    def __str__(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line} ```{self.info}"


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def fences(page: Path) -> list[Fence]:
    text = page.read_text(encoding="utf-8")
    out = []
    pos = 0
    while m := _FENCE.search(text, pos):
        close = re.compile(rf"^{re.escape(m['indent'])}{m['fence'][0]}{{{len(m['fence'])},}}[ \t]*$", re.M)
        end = close.search(text, m.end())
        stop = end.start() if end else len(text)
        body = "\n".join(
            ln[len(m["indent"]) :] if ln.startswith(m["indent"]) else ln
            for ln in text[m.end() + 1 : stop].splitlines()
        )
        out.append(Fence(page, m.start(), stop, text.count("\n", 0, m.start()) + 1, m["info"].strip(), body))
        pos = end.end() if end else len(text)
    return out


def section(path: str, name: str | None) -> str:
    """The text that pymdownx.snippets includes for `path[:name]`."""
    text = (ROOT / path).read_text(encoding="utf-8")
    if name is None:
        return _SECTION.sub("", text)
    start = re.search(rf"^[ \t]*# --8<-- \[start:{re.escape(name)}\][ \t]*\n", text, re.M)
    end = re.search(rf"^[ \t]*# --8<-- \[end:{re.escape(name)}\]", text, re.M)
    if not start or not end or end.start() < start.end():
        raise LookupError(f"{path}: no section {name!r}")
    return _SECTION.sub("", text[start.end() : end.start()])


def expand(fence: Fence) -> str:
    """What a reader sees (and copies) in an include-only block: each --8<-- line replaced by its
    section, the blank lines between them kept, as pymdownx.snippets does."""
    lines = []
    for line in fence.body.splitlines():
        m = _INCLUDE.match(line.strip())
        lines += section(m["path"], m["section"]).splitlines() if m else [line]
    return "\n".join(lines) + "\n"


CHECKS = "snippets/checks.py"  # one section per helper; a block includes those it calls


def _names(code: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Name)}


def checks_needed(code: str) -> list[str]:
    """The sections of snippets/checks.py whose helpers `code` uses, directly or through
    another helper, in the file's order: what a block showing `code` must include."""
    text = (ROOT / CHECKS).read_text(encoding="utf-8")
    names = [m["name"] for m in _SECTION.finditer(text) if m["kind"] == "start"]
    sections = {s: section(CHECKS, s) for s in names}
    defines = {
        s: {
            t.id if isinstance(t, ast.Name) else node.name
            for node in ast.parse(body).body
            for t in (node.targets if isinstance(node, ast.Assign) else [node])
            if isinstance(t, ast.Name) or isinstance(node, (ast.FunctionDef, ast.ClassDef))
        }
        for s, body in sections.items()
    }
    need: set[str] = set()
    todo = [code]
    while todo:
        used = _names(todo.pop())
        for s in names:
            if s not in need and defines[s] & used:
                need.add(s)
                todo.append(sections[s])
    return [s for s in names if s in need]


# A chapter's opening box states its reading time, estimated from its length by this formula
# (tests/test_pages.py checks that the two agree): its prose at 200 words a minute and the lines of
# its examples at 10 a minute, rounded up to a multiple of 5 minutes. The validated definitions,
# collapsed and included from snippets/, are not counted.
WORDS_PER_MINUTE, EXAMPLE_LINES_PER_MINUTE = 200, 10
MINUTES = re.compile(r"About (\d+) minutes \(an estimate from the page's length\)")


def reading_minutes(page: Path) -> int:
    text = page.read_text(encoding="utf-8")
    code, prose, pos = 0, [], 0
    for f in fences(page):
        prose.append(text[pos : f.start])
        pos = text.find("\n", f.end) + 1 if text.find("\n", f.end) >= 0 else len(text)
        if not f.includes:
            code += len([ln for ln in f.body.splitlines() if ln.strip()])
    prose.append(text[pos:])
    words = len(re.sub(r"<!--.*?-->", " ", MINUTES.sub(" ", "".join(prose)), flags=re.S).split())
    minutes = words / WORDS_PER_MINUTE + code / EXAMPLE_LINES_PER_MINUTE
    return 5 * max(1, math.ceil(minutes / 5))


def nav_pages() -> list[str]:
    """The site path of every page in mkdocs.yml's nav, in nav order ("" is the home page).

    Read without building, so that tests can be parametrized over the pages at collection time;
    tests/test_browser.py checks that the build's sitemap lists exactly these.
    """
    nav = re.search(r"^nav:\n((?:[ \t]+-.*\n)+)", (ROOT / "mkdocs.yml").read_text(), re.M)
    if nav is None:
        raise LookupError("mkdocs.yml: no nav")
    entry = r"^[ \t]+-[ \t]+(?:.+?:[ \t]+)?\"?(\S+\.(?:md|py))\"?[ \t]*$"
    files = re.findall(entry, nav.group(1), re.M)
    out = []
    for f in files:
        stem = f.rsplit(".", 1)[0]
        out.append("" if stem == "index" else stem.removesuffix("/index") + "/")
    return out


# The width of Material's text column, in CSS px, at each window width this checks. The root
# font size is 20 px below 100em. 390: the column's side margins are .8rem each, 390 - 2 * 16.
# 1280: the grid is at most 61rem = 1220 px, less the navigation and the contents sidebars
# (12.1rem = 242 px each, both shown from 76.25em) and margins of 1.2rem each side.
# tests/test_browser.py checks these against Chromium; tests/test_figure_text.py sizes figure text from them.
COLUMN = {390: 358, 1280: 1220 - 2 * 242 - 2 * 24}
