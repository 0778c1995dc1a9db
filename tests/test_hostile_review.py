"""Routes a fresh hostile review found past the first round of hardening (issue 23), each refused.

- a `<meta http-equiv=refresh>` on a Markdown page sent the reader to another host;
- the same inside a `<select>` of a notebook output, which html5lib drops and Chromium keeps;
- a notebook output nested 50,000 elements deep crashed the build (RecursionError);
- a directory named like a results file crashed it (IsADirectoryError).
"""

from __future__ import annotations

import pytest

from bench.schema import ResultsError
from bench.validate import load
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
