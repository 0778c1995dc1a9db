"""The copy button copies code that runs: a session's input without prompts or output.

sitegen/copy.py puts the text to copy in ``data-copy`` at build time. Here: that text is, block
for block, exactly what Sybil runs for the page (so the page's test suite runs what a reader
pastes), a definition is copied whole (tests/test_pages.py runs each one alone), and in a
browser Material's button puts that text on the clipboard.
"""

from __future__ import annotations

import doctest
import html
import re

import pytest

from tests.pages import DOCS, expand, fences, pages
from tests.scripts import load_file

copy = load_file("sitegen/copy.py")

_BLOCK = re.compile(r'<div class="(?:language-[\w+-]+ )?highlight"(?P<attrs>[^>]*)>.*?<code[^>]*>(?P<code>.*?)</code>', re.S)


def _blocks(page_html: str) -> list[tuple[str | None, str]]:
    """(data-copy or None, the code's text) of each code block, in page order."""
    out = []
    for m in _BLOCK.finditer(page_html):
        attr = re.search(r'\bdata-copy="([^"]*)"', m["attrs"])
        out.append((html.unescape(attr[1]) if attr else None, html.unescape(re.sub(r"<[^>]*>", "", m["code"]))))
    return out


def test_a_session_loses_its_prompts_and_its_output():
    text = ">>> x = [1,\n...      2]\n>>> for i in x:\n...     print(i)\n1\n2\n>>> x\n[1, 2]\n"
    assert copy.session_input(text) == "x = [1,\n     2]\nfor i in x:\n    print(i)\nx\n"


def test_a_definition_with_examples_in_its_docstring_is_not_a_session():
    definition = 'def f(x):\n    """Twice x.\n\n    >>> f(2)\n    4\n    """\n    return 2 * x\n'
    assert copy.session_input(definition) is None
    page = f'<div class="highlight"><pre><code>{html.escape(definition)}</code></pre></div>'
    assert copy.with_copy_text(page) == page


def test_the_copied_text_is_escaped_into_the_attribute_and_read_back_whole():
    source = '>>> s = "<b>&amp;\'x\'</b>"\n>>> s\n\'<b>&amp;...\'\n'
    page = f'<div class="highlight"><pre><span></span><code>{html.escape(source)}</code></pre></div>'
    out = copy.with_copy_text(page)
    assert copy.with_copy_text(out) == out  # once only
    ((copied, code),) = _blocks(out)
    assert copied == 's = "<b>&amp;\'x\'</b>"\ns' and code == source


def test_a_block_keeps_the_language_class_it_is_given():
    page = '<div class="language-pycon highlight"><pre><code>&gt;&gt;&gt; 1 + 1\n2\n</code></pre></div>'
    assert copy.with_copy_text(page).startswith('<div class="language-pycon highlight" data-copy="1 + 1">')


def _expected(fence) -> str:
    """What the copy button must give for a Markdown fence: Sybil's sources, or the block."""
    text = expand(fence) if fence.includes else fence.body + "\n"
    if text.lstrip().startswith(">>>"):
        return "".join(e.source for e in doctest.DocTestParser().get_examples(text)).rstrip("\n")
    return text.rstrip("\n")


@pytest.mark.parametrize("page", [p.relative_to(DOCS).as_posix() for p in pages() if p.name != "reference.md"])
def test_every_block_copies_what_the_page_runs(built_site, page):
    """Block for block, the copy text equals the sources Sybil runs, or the shown definition."""
    source = DOCS / page
    url = "index.html" if page == "index.md" else page.removesuffix(".md") + "/index.html"
    blocks = _blocks((built_site / url).read_text(encoding="utf-8"))
    want = [_expected(f) for f in fences(source)]
    assert len(blocks) == len(want), f"{page}: {len(blocks)} code blocks in the HTML, {len(want)} fences"
    for i, ((copied, code), expected) in enumerate(zip(blocks, want)):
        got = copied if copied is not None else code.rstrip("\n")
        assert got == expected, f"{page}, block {i + 1}: the copy button gives something else"
        if copied is not None:
            assert ">>>" not in copied.split("\n")[0] and code.lstrip().startswith(">>>")
            compile(copied, f"{page} block {i + 1}", "exec")


def test_the_reference_page_copies_sessions_that_compile(built_site):
    blocks = _blocks((built_site / "reference" / "index.html").read_text(encoding="utf-8"))
    copied = [c for c, _ in blocks if c is not None]
    assert copied
    for i, text in enumerate(copied):
        compile(text, f"reference block {i + 1}", "exec")


def test_the_runner_of_copied_code_reports_what_does_not_run():
    """tests/run_copied.py, which runs what the browser test copied: a statement the page shows
    raising must raise that exception and the session goes on; anything else that raises stops
    the page; a definition must define its name."""
    pytest.importorskip("sybil", reason="the runner sets pages up as tests/sybil_pages.py does")
    from tests.run_copied import run

    def example(shown: str) -> dict:
        return {"where": shown.splitlines()[0], "shown": shown, "code": copy.session_input(shown).rstrip("\n")}

    job = {"setup": "sybil", "definitions": [
        {"where": "d1", "code": "def f():\n    pass\n", "name": "f"},
        {"where": "d2", "code": "def g():\n    pass\n", "name": "h"},
    ], "examples": [
        example(">>> x = 1\n>>> 1 / 0\nTraceback (most recent call last):\nZeroDivisionError: division by zero\n>>> y = x + 1\n"),
        example(">>> y\n2\n"),
        example(">>> z = 2\n>>> z + 1\nTraceback (most recent call last):\nTypeError: ...\n"),
        example(">>> never = 1\n"),
    ]}
    report = run(job)
    assert (report["examples"], report["definitions"]) == (2, 1), report
    assert [f["where"] for f in report["failures"]] == [">>> z = 2", "d2"], report
    assert "shows it raising TypeError" in report["failures"][0]["error"]
    assert "does not define h" in report["failures"][1]["error"]
