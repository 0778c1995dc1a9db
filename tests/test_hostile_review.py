"""Routes a fresh hostile review found past the first round of hardening (issue 23), each refused.

- a `<meta http-equiv=refresh>` on a Markdown page sent the reader to another host;
- the same inside a `<select>` of a notebook output, which html5lib drops and Chromium keeps;
- a notebook output nested 50,000 elements deep crashed the build (RecursionError);
- a directory named like a results file crashed it (IsADirectoryError).

And a third review (the routes of CSS, image metadata, srcdoc and CDATA are in
tests/test_notebook_routes.py's list):
- an output 50,000 elements deep took html5lib about 95 s to parse before the depth was refused;
- a Markdown cell of 2,000 backticks, or of many `![` or `[`, stalled the notebook check;
- a results file with `"schema": 3.0` (or `true`, or `"3"`) was read as the current version.
"""

from __future__ import annotations

import json
import time

import pytest

from bench.schema import ResultsError
from bench.validate import load, parse
from tests.pages import DOCS
from tests.scripts import load_file

pytest.importorskip("mkdocs", reason="the site's builder is not installed", exc_type=ImportError)
csp = load_file("sitegen/csp.py")
outputs = load_file("sitegen/notebook_outputs.py")
from sitegen import BuildError


@pytest.mark.parametrize("meta", ['<meta http-equiv="refresh" content="1;url=https://evil.example/">',
                                  "<META HTTP-EQUIV=Refresh content=0;url=//evil.example>"])
def test_a_page_that_refreshes_to_elsewhere_fails_the_build_naming_it(meta):
    page = f"<html><head><meta charset='utf-8'></head><body><p>hi</p>{meta}</body></html>"
    with pytest.raises(BuildError, match=r"chapter\.md has a <meta http-equiv=refresh>"):
        csp.policy(page, "chapter.md")
    assert csp.policy(page.replace(meta, ""), "chapter.md")  # the same page without it passes


def test_a_select_in_a_notebook_output_is_refused():
    refresh = '<select><meta http-equiv="refresh" content="1;url=https://evil.example/"></select>'
    assert "<select>" in outputs.markup_problem(refresh)
    assert outputs.markup_problem("<p>a <b>plain</b> output</p>") is None


def test_markup_nested_too_deep_is_refused_not_crashed_on():
    deep = "<div>" * (outputs.MAX_NESTING + 10) + "x" + "</div>" * (outputs.MAX_NESTING + 10)
    assert outputs.markup_problem(deep) == outputs.TOO_DEEP
    below = "<div>" * 200 + '<img src="https://evil.example/x.png">' + "</div>" * 200
    assert "another host" in outputs.markup_problem(below)  # still checked below the limit


def test_a_directory_named_like_a_results_file_is_refused_naming_it(tmp_path):
    (tmp_path / "cpu-zz.json").mkdir()
    with pytest.raises(ResultsError, match=r"cpu-zz\.json: \$: not a regular file"):
        load(tmp_path / "cpu-zz.json")


def _refused_quickly(check, text: str) -> str:
    start = time.monotonic()
    problem = check(text)
    took = time.monotonic() - start
    assert took < 1, f"{took:.1f} s to refuse {len(text):,} characters"
    return problem


@pytest.mark.parametrize("deep", [
    "<div>" * 50_000,  # more tags than MAX_TAGS: refused before it is parsed
    "<div>" * (outputs.MAX_TAGS - 10),  # fewer: html5lib's stack of open elements stops at MAX_NESTING
    "<b>" * (outputs.MAX_TAGS - 10),  # formatting elements, which html5lib reopens
    "<svg>" + "<g>" * (outputs.MAX_TAGS - 10),
], ids=["50,000 divs", "just under the tag limit", "formatting elements", "SVG groups"])
def test_markup_nested_too_deep_is_refused_in_under_a_second(deep):
    problem = _refused_quickly(outputs.markup_problem, deep)
    assert problem == outputs.TOO_DEEP or f"more than {outputs.MAX_TAGS:,}" in problem, problem


def test_an_output_over_the_size_or_tag_limit_is_refused_naming_the_cell():
    nbformat = pytest.importorskip("nbformat", exc_type=ImportError)
    big = "<p>x</p>" * (outputs.MAX_TAGS // 2 + 1)
    for text, reason in [(big, f"tags (counted as '<'), more than {outputs.MAX_TAGS:,}"),
                         ("x" * (outputs.MAX_MARKUP + 1), f"characters of markup, more than {outputs.MAX_MARKUP:,}")]:
        cell = nbformat.v4.new_code_cell("show()  # the big cell")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": text})]
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("# A notebook"), cell]
        start = time.monotonic()
        with pytest.raises(BuildError, match=r"nb\.ipynb: cell 1 .* which starts 'show\(\)  # the big cell'") as raised:
            outputs.check_outputs(nb, "nb.ipynb")
        assert reason in str(raised.value) and time.monotonic() - start < 1
    half = "<p>x</p>" * (outputs.MAX_TAGS // 4 + 1)  # two outputs under the limit, over it together
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": half}) for _ in range(2)]
    with pytest.raises(BuildError, match="its outputs read together: .* more than"):
        outputs.check_outputs(nb, "nb.ipynb")


@pytest.mark.parametrize("markdown", [
    "`" * 2_000 + "a", "``a" * 300_000, "![" * 500_000, "![a]" * 250_000, "\n[" * 500_000, "```x" * 250_000,
], ids=["2,000 backticks", "backtick pairs", "image openers", "image references", "label openers", "fence openers"])
def test_markdown_that_stalled_the_check_is_read_in_under_a_second(markdown):
    assert _refused_quickly(outputs.markdown_problem, markdown) is None  # nothing to refuse, and quickly


@pytest.mark.parametrize("markdown, url", [
    ("![a [b] c](https://h.example/p.png)", "https://h.example/p.png"),  # brackets in the alt text
    ("`a` ![x][p] ``b`c``\n\n[p]: //h.example/p.png", "//h.example/p.png"),
])
def test_markdown_images_from_other_hosts_are_still_found(markdown, url):
    assert f"an image from {url!r}" in outputs.markdown_problem(markdown)
    assert "raw HTML" in outputs.markdown_problem("``<i>` and `x` <b>bold</b>")  # an unclosed run is text


@pytest.mark.parametrize("version", [3.0, True, "3", 2.0, None])
def test_a_schema_version_that_is_not_exactly_the_integer_is_refused(version):
    (valid,) = (DOCS / "appendix" / "results").glob("cpu-*.json")
    doc = json.loads(valid.read_text(encoding="utf-8"))
    assert parse(doc, "cpu-x.json").schema == 3
    doc["schema"] = version
    with pytest.raises(ResultsError) as raised:
        parse(doc, "cpu-x.json")
    assert str(raised.value).startswith(f"cpu-x.json: $.schema: expected the integer 3, got {version!r}"), raised.value
    assert "\n" not in str(raised.value)
