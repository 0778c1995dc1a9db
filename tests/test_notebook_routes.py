"""Every known route by which a notebook could put script or a fetch from another host on the built
site, and the build's refusal of each, naming the cell (sitegen/notebook_outputs.py, sitegen/mathml.py,
sitegen/csp.py). The list of routes is kept here: add a route when a review finds one."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest

REASON = "a site-building tool, absent where only the CUDA tests run (python3 -m bench.gpu)"
nbformat = pytest.importorskip("nbformat", reason=REASON, exc_type=ImportError)
pytest.importorskip("html5lib", reason=REASON, exc_type=ImportError)
nbconvert2 = pytest.importorskip("mkdocs_jupyter.nbconvert2", reason=REASON, exc_type=ImportError)

from sitegen import BuildError
from tests.pages import ROOT
from tests.scripts import load_file

notebook_outputs = load_file("sitegen/notebook_outputs.py")
math_hook = load_file("sitegen/mathml.py")
notebook_links = load_file("sitegen/notebook_links.py")

SCRIPT = "<img src=x onerror=alert(1)>"
TEX_SCRIPT = "<img/src/onerror=alert(1)>"  # in \text{}, latex2mathml turns spaces into &#xA0;


def _out(mime: str, value: str, metadata: dict | None = None):
    return nbformat.v4.new_output("display_data", data={mime: value}, metadata=metadata or {})


def _code(*outputs):
    cell = nbformat.v4.new_code_cell("show()  # the hostile cell")
    cell.outputs = list(outputs)
    return cell


# name: (the hostile cell, what the notebook check says, what the final-page check says).
# The hostile cell is cell 2 of the notebook (after a heading and a harmless code cell).
# None for the final-page check: the route is defused before the page is final (see its comment).
ROUTES = {
    # A TeX \text{...} holding markup: the MathML step used to unescape it after the output check.
    "TeX \\text in a Markdown output": (_code(_out("text/markdown", f"$\\text{{{TEX_SCRIPT}}}$")),
                                        "raw HTML ('<img/src/onerror", None),  # MathML keeps it text
    "TeX \\text in an HTML output": (
        _code(_out("text/html", r'<span class="arithmatex">\(\text{&lt;img/src/onerror=alert(1)&gt;}\)</span>')),
        None, None),  # no markup in the output; MathML keeps it text (test below)
    "raw HTML in a Markdown cell": (nbformat.v4.new_markdown_cell(f"Some text {SCRIPT}"),
                                    "its Markdown: raw HTML", "<img onerror=...> runs script"),
    "an HTML comment opened in one output and closed in the next": (
        _code(_out("text/html", "<p>a</p><!--"), _out("text/html", "--><p>b</p>")),
        "eof-in-comment", None),  # the page shows nbconvert's markup inside a comment: nothing runs
    "a Markdown output holding raw HTML": (_code(_out("text/markdown", f"# Out\n\n{SCRIPT}")),
                                           "text/markdown: raw HTML", "<img onerror=...> runs script"),
    "a tab inside javascript:": (_code(_out("text/html", '<a href="java&#9;script:alert(1)">x</a>')),
                                 "runs script", "<a href='java\\tscript:alert(1)'> runs script"),
    "a tab inside https:": (_code(_out("text/html", '<img src="ht&#9;tps://h.example/x.png">')),
                            "<img src='https://h.example/x.png'> loads from another host",
                            "<img src='https://h.example/x.png'> loads from another host"),
    "a CSS escape in url(": (_code(_out("text/html", r'<p style="background: u\72l(https://h.example/x)">x</p>')),
                             "<p style=...> loads 'https://h.example/x'", "<p style=...> loads 'https://h.example/x'"),
    "a CSS escape in @import": (_code(_out("text/html", r'<style>@\69mport "https://h.example/x.css";</style>')),
                                "<style> has an @import", "<style> has an @import"),
    "PNG metadata width carrying srcset=": (
        _code(_out("image/png", "iVBORw0KGgo=", {"image/png": {"width": "1 srcset=https://h.example/x"}})),
        "image/png metadata width='1 srcset=https://h.example/x' is not a number",
        "<img srcset='https://h.example/x'> loads from another host"),
    "PNG metadata with a URL as its file name": (
        _code(_out("image/png", "iVBORw0KGgo=", {"filenames": {"image/png": "https://h.example/x.png"}})),
        "output metadata names the file 'https://h.example/x.png'",
        "<img src='https://h.example/x.png'> loads from another host"),
    "a Markdown image from another host": (nbformat.v4.new_markdown_cell("![a plot](https://h.example/p.png)"),
                                           "an image from 'https://h.example/p.png'",
                                           "<img src='https://h.example/p.png'> loads from another host"),
    "a Markdown image by reference from another host": (
        nbformat.v4.new_markdown_cell("![a plot][p]\n\n[p]: //h.example/p.png"),
        "an image from '//h.example/p.png'", "<img src='//h.example/p.png'> loads from another host"),
    "a <!--> comment, read differently by Python's parser": (
        _code(_out("text/html", f"<!-->{SCRIPT}-->")), "<img onerror=...> runs script", "<img onerror=...> runs script"),
    "an SVG image from another host": (_code(_out("image/svg+xml", '<svg><image href="https://h.example/i.png"/></svg>')),
                                       "<image href='https://h.example/i.png'>", None),  # nbconvert shows SVG as a data: <img>
    "markup that <noscript> hides from a parser that runs no script": (
        _code(_out("text/html", '<noscript><p title="</noscript><img src=x onerror=alert(1)>"></noscript>')),
        "<noscript>", "<noscript>"),
    "an SVG animation that sets a link to javascript:": (
        _code(_out("image/svg+xml", '<svg><a><animate attributeName="href" values="javascript:alert(1)"/>'
                                    '<text>x</text></a></svg>')), "could set a link or a script", None),
    "an SVG animation in HTML that sets an event handler": (
        _code(_out("text/html", '<svg><set attributeName="onmouseover" to="alert(1)"/></svg>')),
        "could set a link or a script", "could set a link or a script"),
    "MathML with a javascript: link": (_code(_out("text/html", '<math href="javascript:alert(1)"><mi>x</mi></math>')),
                                       "runs script", "<math href='javascript:alert(1)'> runs script"),
    # Round three (issue 23's second hostile review).
    "a string URL in CSS image-set()": (
        _code(_out("text/html", '<p style="background: image-set(\'a.png\' 1x, \'https://h.example/b.png\' 2x)">x</p>')),
        "<p style=...> loads 'https://h.example/b.png'", "<p style=...> loads 'https://h.example/b.png'"),
    "-webkit-image-set() with a CSS escape and a comment": (
        _code(_out("text/html", r'<style>p { background: -webkit-image-set("a.png" 1x,/**/"\68ttps://h.example/b.png" 2x) }</style>')),
        "<style> loads 'https://h.example/b.png'", "<style> loads 'https://h.example/b.png'"),
    "an escaped quote that hides the next string of image-set() from a naive reading": (
        _code(_out("text/html", r'<style>p { background: image-set("a\"" 1x, "//h.example/b.png" 2x) }</style>')),
        "<style> loads '//h.example/b.png'", "<style> loads '//h.example/b.png'"),
    "PNG metadata width carrying a quote and onerror=": (
        _code(_out("image/png", "iVBORw0KGgo=", {"image/png": {"width": '10" onerror="alert(1)'}})),
        "image/png metadata width='10\" onerror=\"alert(1)' is not a number", "<img onerror=...> runs script"),
    "top-level output metadata width carrying onerror=": (
        _code(_out("image/png", "iVBORw0KGgo=", {"width": "10 onerror=alert(1)"})),
        "output metadata width='10 onerror=alert(1)' is not a number", "<img onerror=...> runs script"),
    "top-level output metadata height carrying srcset= on a JPEG": (
        _code(_out("image/jpeg", "/9j/4AAQ", {"height": "1 srcset=//h.example/x"})),
        "output metadata height='1 srcset=//h.example/x' is not a number",
        "<img srcset='//h.example/x'> loads from another host"),
    "an iframe whose srcdoc holds a script": (
        _code(_out("text/html", '<iframe srcdoc="<script>alert(1)</script>"></iframe>')),
        "<iframe> loads a frame", "<iframe> loads a frame"),
    "a CDATA section in HTML, which Python's parser reads to ]]> and a browser to the first >": (
        _code(_out("text/html", "<![CDATA[ x ><script>alert(1)</script> ]]>")), "<script> runs script",
        "<script> runs script"),
    "a CDATA section in SVG that hides </svg>, so that an <img> breaks out of the SVG": (
        _code(_out("text/html", "<svg><![CDATA[</svg>]]><img src=x onerror=alert(1)></svg>")),
        "<img onerror=...> runs script", "<img onerror=...> runs script"),
    # Round four (a third hostile review).
    "an SVG attribute that takes url() from another host": (
        _code(_out("text/html", '<svg><rect width="9" height="9" cursor="url(https://h.example/c.png), auto"/></svg>')),
        "<rect cursor=...> loads 'https://h.example/c.png'", "<rect cursor=...> loads 'https://h.example/c.png'"),
    "attributionsrc, which a browser fetches": (
        _code(_out("text/html", '<img src="a.png" attributionsrc="https://h.example/r">')),
        "<img attributionsrc='https://h.example/r'> loads from another host",
        "<img attributionsrc='https://h.example/r'> loads from another host"),
    "<plaintext>, which turns the rest of the page into text": (
        _code(_out("text/html", "<p>a</p><plaintext>")), "<plaintext> cannot be closed",
        "<plaintext> cannot be closed"),
    "a raw cell, written into the page as it is": (
        nbformat.v4.new_raw_cell("<style>.md-typeset { outline: 9px solid red }</style>"), "a raw cell",
        None),  # a <style> of the site's own origin: nothing runs or loads, but it restyles the page
    "a heading with escaped markup, which mkdocs-jupyter puts in <title> unescaped": (
        nbformat.v4.new_markdown_cell("# Title &lt;/title&gt;&lt;style&gt;.md-content{display:none}&lt;/style&gt;"),
        "a heading with <, > or &", None),  # not the first heading here: the next test plants it first
}


def test_a_first_heading_that_breaks_out_of_the_title_is_refused_on_the_final_page():
    page = ("<!doctype html><html><head><title>Notebook 1 </title><style>.md-content{display:none}</style>"
            "<title> - site</title></head><body><p>x</p></body></html>")
    assert notebook_outputs.page_problem(page) == (None, "", "2 <title> elements where the theme writes one")
    assert notebook_outputs.page_problem(page.replace("</title><style>.md-content{display:none}</style><title>", "")) is None


def test_a_notebook_name_is_shown_on_one_line_without_terminal_escapes():
    nb = _notebook(nbformat.v4.new_raw_cell("x"))
    with pytest.raises(BuildError) as raised:
        notebook_outputs.check_outputs(nb, "docs/notebooks/99-a\nfake: ok\x1b[31mRED.py")
    message = str(raised.value)
    assert "\n" not in message and "\x1b" not in message and message.startswith("docs/notebooks/99-a\\nfake"), message


def _notebook(hostile) -> nbformat.NotebookNode:
    harmless = nbformat.v4.new_code_cell("x = 1")
    harmless.outputs = [nbformat.v4.new_output("stream", text="fine\n")]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A notebook"), harmless, hostile]
    return nb


@pytest.mark.parametrize("route", ROUTES)
def test_the_notebook_check_refuses_each_route_naming_the_cell(route):
    hostile, reason, _ = ROUTES[route]
    if reason is None:
        notebook_outputs.check_outputs(_notebook(hostile), "docs/nb.ipynb")  # nothing to see before MathML
        return
    with pytest.raises(BuildError) as raised:
        notebook_outputs.check_outputs(_notebook(hostile), "docs/nb.ipynb")
    message = str(raised.value)
    assert message.startswith("docs/nb.ipynb: cell 2 (counting from 0, markdown cells included), which starts "), message
    assert reason in message, message


def _final_page(tmp_path, nb, *, tex_to_mathml=None, monkeypatch=None) -> str:
    """The notebook page as the post-build pass leaves it: nbconvert's HTML (unchecked), without the
    scripts from other hosts (sitegen/notebook_links.py), then MathML."""
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    body = notebook_links.strip_remote_scripts(nbconvert2.nb2html(str(path)))
    if tex_to_mathml is not None:
        monkeypatch.setattr(math_hook, "tex_to_mathml", tex_to_mathml)
    return f"<!doctype html><html><head></head><body>{math_hook.render_notebook_math(body)}</body></html>"


@pytest.mark.parametrize("route", ROUTES)
def test_the_final_page_check_refuses_each_route_that_reaches_the_page_naming_the_cell(route, tmp_path):
    """Without the notebook check, the final HTML is read as the browser reads it."""
    hostile, _, reason = ROUTES[route]
    found = notebook_outputs.page_problem(_final_page(tmp_path, _notebook(hostile)))
    if reason is None:
        assert found is None, found
    else:
        assert found is not None and found[0] == 2 and reason in found[2], found


def test_tex_text_stays_text_and_the_final_check_would_catch_it_if_not(tmp_path, monkeypatch):
    hostile, _, _ = ROUTES["TeX \\text in an HTML output"]
    page = _final_page(tmp_path, _notebook(hostile))
    assert "<mtext>&lt;img" in page and "<mtext><img" not in page
    from latex2mathml.converter import convert  # latex2mathml's own output unescapes \text

    def unescaping(tex, *, display):
        import html
        return convert(html.unescape(tex).strip())

    page = _final_page(tmp_path, _notebook(hostile), tex_to_mathml=unescaping, monkeypatch=monkeypatch)
    assert notebook_outputs.page_problem(page) == (2, "show()  # the hostile cell", "<img onerror=...> runs script")


def test_the_real_notebook_pages_pass_both_checks(built_site):
    pages = sorted((built_site / "notebooks").glob("*/index.html"))
    assert len(pages) >= 10, pages
    for path in pages:
        page = path.read_text(encoding="utf-8")
        assert page.count('class="jp-Cell ') > 4 and notebook_outputs.page_problem(page) is None, path


@pytest.mark.slow
@pytest.mark.parametrize("route", [r for r in ROUTES if ROUTES[r][1] or ROUTES[r][2]])
def test_a_strict_build_with_each_route_fails_naming_the_cell(route, tmp_path):
    """A strict build of a small site with the theme and the project's adapter hook, the notebook's
    outputs stored in it (not executed): refused by the pre-build check of the stored outputs, or
    by the post-build check of the final page."""
    hostile, source_reason, final_reason = ROUTES[route]
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("# Home\n", encoding="utf-8")
    nbformat.write(_notebook(hostile), tmp_path / "docs" / "nb.ipynb")
    (tmp_path / "mkdocs.yml").write_text(textwrap.dedent(f"""\
        site_name: planted
        site_url: https://example.org/planted/
        theme:
          name: material
        plugins:
          - mkdocs-jupyter:
              include: ["nb.ipynb"]
              execute: false
        extra:
          sitegen:
            steps: [notebook, csp]
        hooks:
          - {ROOT / "hooks" / "mkdocs_adapter.py"}
        """), encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "out")],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0, f"the build passed with {route}"
    assert re.search(r"cell 2 \(counting from 0, markdown cells included\), which starts ", result.stderr), \
        result.stderr[-3000:]
    assert (source_reason or final_reason) in result.stderr, result.stderr[-3000:]
