"""The built site as a reader's browser shows it: Debian's Chromium, driven by Playwright.

The site (the test session's one build, `built_site` in tests/building.py) is
served by a stdlib HTTP server on 127.0.0.1 and visited page by page, in the light
and in the dark palette (the pages of mkdocs.yml's nav, which must be those of the
sitemap). Each visit is made once and checked by every test parametrized by it;
under pytest-xdist, different visits run on different workers. Every request to another
host is recorded and refused, so a page that needs the network fails here as it
would offline. Every visit records the page's Content-Security-Policy violations
(`securitypolicyviolation` events; Chromium also logs each as a console error) and
runs axe-core (axe-playwright-python, which ships it: nothing is downloaded). A
full-page screenshot of every page, light and dark, goes to a temporary folder
(or $SCREENSHOT_DIR) that the run's summary names: look at them.

Without /usr/bin/chromium these tests are skipped, except under CI=true, where
they fail: CI must run them.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import sys
import re
import threading
import urllib.request
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urldefrag, urlsplit

import pytest

from tests.pages import nav_pages

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# axe-core impacts that fail the accessibility test (the others are "moderate" and "minor").
AXE_FAILING = ("serious", "critical")

# Records the page's CSP violations from before its first script runs.
CSP_WATCH_JS = """window.__csp_violations = [];
document.addEventListener("securitypolicyviolation", e => window.__csp_violations.push(
  `${e.violatedDirective} blocked ${e.blockedURI || "inline"} (${(e.sample || "").slice(0, 60)})`));"""

# TeX that MathML conversion should have consumed; looked for outside code only.
RAW_TEX = re.compile(
    r"\$\$|\\\(|\\\)|\\\[|\\\]|\\(?:frac|sum|text|operatorname|begin|end|infty|dots|le|ge|cdot|mathrm|sqrt)\b"
    r"|(?<![\w$])\$[^$\s][^$\n]*\$"
)

# Text of the page a reader can see, outside <pre>/<code> and MathML.
VISIBLE_PROSE_JS = """() => {
  const skip = new Set(["PRE", "CODE", "SCRIPT", "STYLE", "MATH", "NOSCRIPT", "TEXTAREA"]);
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    let el = node.parentElement, ok = true;
    for (let a = el; a; a = a.parentElement) {
      if (skip.has(a.tagName.toUpperCase())) { ok = false; break; }
    }
    if (ok && el.checkVisibility()) out.push(node.textContent);
  }
  return out.join(" ");
}"""

PAGE_FACTS_JS = """() => ({
  images: [...document.querySelectorAll("img")].map(i => ({
    src: i.getAttribute("src"), alt: i.getAttribute("alt") || "",
    loaded: i.complete && i.naturalWidth > 0, content: !!i.closest(".md-content"),
  })),
  codeBlocks: [...document.querySelectorAll(".md-content pre > code")].map(c => ({
    text: c.textContent.slice(0, 60),
    copy: !!c.parentElement.querySelector("button[data-md-type='copy'], button.md-clipboard"),
  })),
  notebookCells: [...document.querySelectorAll(".jp-CodeCell .jp-InputArea")].map(c => ({
    text: c.textContent.trim().slice(0, 60),
    copy: !!c.querySelector("clipboard-copy"),
  })),
  links: [...document.querySelectorAll("a[href]")].map(a => a.href),
  ids: [...document.querySelectorAll("[id]")].map(e => e.id),
  scheme: document.body.getAttribute("data-md-color-scheme"),
  csp: document.querySelector("meta[http-equiv='Content-Security-Policy']")?.content || "",
  mathml: document.querySelectorAll("math").length,
})"""


@dataclass
class Visit:
    path: str
    scheme: str
    status: int | None
    console_errors: list[str]
    offsite: list[str]  # requests to other hosts, refused
    facts: dict
    prose: str
    screenshot: Path
    csp_violations: list[str]
    axe: dict | None  # axe-core's results, None where axe-playwright-python is not installed


# Each page in each palette is one visit, shared by the tests of that page and palette, which are
# parametrized by it. Under pytest-xdist those tests run on one worker (the scheduler in
# conftest.py), and the visits of different pages run on different workers at once.
PAGES = nav_pages()
FIGURE_PAGES = ["02-matrix-trick/", "06-learning/"]
SCHEMES = ("light", "dark")


def _visit_params(paths=PAGES, schemes=SCHEMES):
    return [
        pytest.param((path, scheme), id=f"{path or '/'}-{scheme}")
        for path in paths
        for scheme in schemes
    ]


def _axe():
    """axe-playwright-python's runner, or None where it is not installed."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        return None
    return Axe()


# axe's colour-contrast rule samples every span of highlighted code, which is most of its time on
# a page; tests/test_code_contrast.py checks every code token colour against every code
# background statically instead. So axe runs every rule but that one on the whole page, then
# that one on the whole page but highlighted code (`.highlight`: blocks and inline highlights).
_NOT_CONTRAST = {"resultTypes": ["violations"], "rules": {"color-contrast": {"enabled": False}}}
_CONTRAST = {"resultTypes": ["violations"], "runOnly": {"type": "rule", "values": ["color-contrast"]}}


def _run_axe(axe, page) -> dict:
    """axe's results for the page, with color-contrast's outside highlighted code."""
    results = axe.run(page, options=_NOT_CONTRAST).response
    contrast = axe.run(page, context={"exclude": [[".highlight"]]}, options=_CONTRAST).response
    ran = {r["id"] for kind in ("violations", "passes", "incomplete", "inapplicable") for r in contrast.get(kind, [])}
    return results | {"violations": results["violations"] + contrast["violations"],
                      "contrast_outside_code_ran": ran == {"color-contrast"}}


def _axe_or_skip() -> None:
    if _axe() is not None:
        return
    reason = "axe-playwright-python is not installed (it is in the test extra of pyproject.toml)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the accessibility tests must run, not skip")
    pytest.skip(reason)


def _chromium_or_skip() -> None:
    if CHROMIUM.exists():
        return
    reason = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true the browser tests must run, not skip")
    pytest.skip(reason)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # keep the test output readable
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # A browser that drops a connection it no longer needs (a page closed while its
        # fonts or icons load) is no error of the site's: no traceback for that.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def site(request) -> Path:
    _chromium_or_skip()  # before building, so a machine without Chromium does not build for nothing
    return request.getfixturevalue("built_site")  # the session's one build (tests/building.py)


@pytest.fixture(scope="module")
def server(site):
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    thread.join()
    httpd.server_close()


def site_pages(site: Path) -> list[str]:
    """Paths of the pages, relative to the site root, from the sitemap."""
    loc = "{http://www.sitemaps.org/schemas/sitemap/0.9}loc"
    urls = [e.text for e in ET.parse(site / "sitemap.xml").getroot().iter(loc)]
    prefix = os.path.commonprefix(urls)
    prefix = prefix[: prefix.rindex("/") + 1]
    return [u[len(prefix) :] for u in urls]


@pytest.fixture(scope="module")
def playwright_browser():
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _refuse_offsite(base: str, offsite: list[str]):
    """A route handler that lets requests to `base`'s host through, and refuses, recording them
    in `offsite`, all others."""
    local = urlsplit(base).netloc

    def route(r):
        url = r.request.url
        if urlsplit(url).netloc == local:
            r.continue_()
        else:
            offsite.append(url)
            r.abort()

    return route


def _new_context(browser, scheme: str):
    """A browser context in `scheme` whose pages record their CSP violations."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme=scheme)
    context.add_init_script(CSP_WATCH_JS)
    return context


def _context(browser, base: str, scheme: str, offsite: list[str]):
    """Such a context that also refuses, and records in `offsite`, every request that leaves
    `base`'s host."""
    context = _new_context(browser, scheme)
    context.route("**/*", _refuse_offsite(base, offsite))
    return context


def _csp_violations(page) -> list[str]:
    return page.evaluate("window.__csp_violations")


_VISITS: dict[tuple[str, str], Visit] = {}  # this worker's visits, each made once


@pytest.fixture(scope="module")
def palettes(playwright_browser):
    """One browser context per palette, for this worker's visits (they share its cache, as a
    reader's pages share the browser's); each page records its own requests to other hosts."""
    contexts = {}

    def get(scheme: str):
        if scheme not in contexts:
            contexts[scheme] = _new_context(playwright_browser, scheme)
        return contexts[scheme]

    yield get
    for context in contexts.values():
        context.close()


@pytest.fixture
def visit(request, server, palettes, shots) -> Visit:
    """The visit of one page in one palette (the parameter), made by the first test that asks."""
    path, scheme = request.param
    if (path, scheme) not in _VISITS:
        _VISITS[path, scheme] = _visit(palettes(scheme), server, shots, path, scheme)
    return _VISITS[path, scheme]


def _visit(context, base: str, shots: Path, path: str, scheme: str) -> Visit:
    offsite: list[str] = []
    page = context.new_page()
    page.route("**/*", _refuse_offsite(base, offsite))
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto(base + path, wait_until="load")
    # Material's scripts go on after "load" (the search worker fetches its index): wait for the
    # network to go quiet, so that a late request, console error or CSP violation is seen.
    page.wait_for_load_state("networkidle")
    # JPEG: encoding a full-page PNG of a long page takes about twice as long.
    shot = shots / ((path.strip("/").replace("/", "-") or "index") + f"-{scheme}.jpeg")
    shot.unlink(missing_ok=True)  # so that the file the tests find is this visit's
    page.screenshot(path=str(shot), full_page=True, type="jpeg", quality=80)
    axe = _axe()
    result = Visit(
        path=path,
        scheme=scheme,
        status=response.status if response else None,
        console_errors=errors,
        offsite=offsite,
        facts=page.evaluate(PAGE_FACTS_JS),
        prose=page.evaluate(VISIBLE_PROSE_JS),
        screenshot=shot,
        csp_violations=_csp_violations(page),  # before axe, which is no part of the page
        axe=_run_axe(axe, page) if axe else None,
    )
    page.close()
    return result


def test_the_sitemap_lists_every_built_page_and_the_nav_names_them(site):
    built = {str(p.parent.relative_to(site)) for p in site.rglob("index.html")}
    built = {"" if b == "." else b + "/" for b in built}
    assert set(site_pages(site)) == built == set(PAGES)
    assert {"", "notebook/", "notebooks/03-softmax/", "reference/", "03-softmax/"} <= built


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_the_page_loads_without_console_errors(visit):
    assert visit.status == 200
    assert not visit.console_errors, "\n".join(visit.console_errors)


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_no_request_leaves_127_0_0_1(visit):
    assert not visit.offsite, "requests to other hosts:\n" + "\n".join(sorted(set(visit.offsite)))


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_no_raw_tex_in_the_text(visit):
    bad = [
        f"raw TeX {m.group(0)!r} in …{visit.prose[max(0, m.start() - 40) : m.end() + 40]}…"
        for m in RAW_TEX.finditer(visit.prose)
    ]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("visit", _visit_params(["", "03-softmax/", "notebooks/03-softmax/"]), indirect=True)
def test_formulas_are_mathml(visit):
    assert visit.facts["mathml"] > 0, "no <math> element"


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_every_image_loads_and_has_alt_text(visit):
    bad = []
    for img in visit.facts["images"]:
        if not img["loaded"]:
            bad.append(f"image not loaded: {img['src']}")
        if img["content"] and not img["alt"].strip():
            bad.append(f"image without alt text: {img['src']}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("visit", _visit_params(FIGURE_PAGES), indirect=True)
def test_a_chapter_shows_its_figure(visit):
    """Two chapters whose figures are drawn at build time show them (every image anywhere must
    load: test_every_image_loads_and_has_alt_text)."""
    figures = [i["src"] for i in visit.facts["images"] if "figures/" in i["src"] and i["loaded"]]
    assert figures, "no figure shown"


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_every_code_block_has_a_copy_button(visit):
    blocks = visit.facts["codeBlocks"] + visit.facts["notebookCells"]
    missing = [f"no copy button on {b['text']!r}" for b in blocks if not b["copy"]]
    assert not missing, "\n".join(missing)
    if visit.path == "01-by-hand/":
        assert len(blocks) >= 5


_STATUS: dict[str, int] = {}  # internal URL -> HTTP status, fetched once per worker
_IDS: dict[str, set[str]] = {}  # site path -> the ids in its built HTML


def _ids(site: Path, path: str) -> set[str]:
    """The id attributes of the built page at `path` (a directory's index.html)."""
    if path not in _IDS:
        file = site / path.lstrip("/")
        file = file / "index.html" if path.endswith("/") else file
        _IDS[path] = set(re.findall(r"""\bid=["']?([^"'\s>]+)""", file.read_text(encoding="utf-8")))
    return _IDS[path]


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_internal_links_and_anchors_resolve(visit, server, site):
    """Every link on the page to this site answers 200, and every #fragment names an id of its
    target: on this page, as the browser shows it; on another page, in its built HTML."""
    bad, internal = [], 0
    for href in visit.facts["links"]:
        url, fragment = urldefrag(href)
        if not url.startswith(server):
            continue
        internal += 1
        if url not in _STATUS:
            try:
                with urllib.request.urlopen(url, timeout=10) as r:
                    _STATUS[url] = r.status
            except urllib.error.HTTPError as exc:
                _STATUS[url] = exc.code
        if _STATUS[url] != 200:
            bad.append(f"{href} -> HTTP {_STATUS[url]}")
            continue
        target = urlsplit(url).path
        if not fragment or not target.endswith("/"):
            continue
        ids = set(visit.facts["ids"]) if target == "/" + visit.path else _ids(site, target)
        if fragment not in ids:
            bad.append(f"{href} -> no element with id {fragment!r}")
    assert internal, "no internal link found"
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("visit", _visit_params(["reference/"], ["light"]), indirect=True)
def test_reference_documents_every_public_name(visit):
    import importlib

    ids = set(visit.facts["ids"])
    for module in ("snippets.averaging", "snippets.attention", "snippets.linear"):
        names = importlib.import_module(module).__all__
        missing = [n for n in names if f"{module}.{n}" not in ids]
        assert not missing, f"{module}: not on the reference page: {missing}"


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_the_palette_follows_the_system_scheme(visit):
    """Material follows the system's colour scheme until the reader picks one with the toggle."""
    assert visit.facts["scheme"] == {"light": "default", "dark": "slate"}[visit.scheme]


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_axe_finds_no_serious_or_critical_violation(visit):
    """axe-core on every page of the nav, in both palettes: no serious or critical violation."""
    _axe_or_skip()
    assert visit.axe["testEngine"]["name"] == "axe-core" and "violations" in visit.axe
    assert visit.axe["contrast_outside_code_ran"], "axe's color-contrast rule did not run"
    bad = []
    for v in visit.axe["violations"]:
        if v["impact"] in AXE_FAILING:
            nodes = "; ".join(" ".join(n["target"]) for n in v["nodes"][:3])
            bad.append(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes: {nodes}): {v['help']}")
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_the_page_has_a_content_security_policy_and_breaks_none_of_it(visit):
    assert visit.facts["csp"].startswith("default-src 'none';"), "no CSP"
    assert not visit.csp_violations, "\n".join(visit.csp_violations)


@pytest.mark.parametrize("visit", _visit_params(), indirect=True)
def test_a_full_page_screenshot_was_written(visit):
    assert visit.screenshot.is_file() and visit.screenshot.stat().st_size > 10_000, visit.screenshot


def test_the_policy_is_enforced_and_its_violations_are_seen(server, playwright_browser, shots):
    """The watcher that the tests above rely on sees a violation when there is one: an inline
    script that the build did not hash is refused, and does not run."""
    context = _context(playwright_browser, server, "light", [])
    page = context.new_page()
    page.goto(server + "03-softmax/", wait_until="load")
    page.evaluate("""() => { const s = document.createElement("script");
                            s.textContent = "window.__ran = true"; document.body.append(s); }""")
    page.wait_for_function("window.__csp_violations.length > 0")
    violations, ran = _csp_violations(page), page.evaluate("window.__ran === true")
    context.close()
    assert not ran and len(violations) == 1 and violations[0].startswith("script-src"), violations


def test_palette_toggle_switches_to_dark(server, playwright_browser, shots):
    context = _context(playwright_browser, server, "light", [])
    page = context.new_page()
    page.goto(server + "03-softmax/")
    assert page.get_attribute("body", "data-md-color-scheme") == "default"
    page.get_by_title("Switch to dark mode").click()
    page.wait_for_function("document.body.getAttribute('data-md-color-scheme') === 'slate'")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.screenshot(path=str(shots / "03-softmax-toggled-dark.png"))
    page.reload(wait_until="load")  # the choice is kept, by the inline palette script
    kept = page.get_attribute("body", "data-md-color-scheme")
    violations = _csp_violations(page)
    context.close()
    assert kept == "slate" and not violations, (kept, violations)
    r, g, b = (int(c) for c in re.findall(r"\d+", background)[:3])
    assert max(r, g, b) < 80, f"body background after the toggle is {background}"


def test_search_finds_softmax(server, playwright_browser, shots):
    context = _context(playwright_browser, server, "light", [])
    page = context.new_page()
    page.goto(server)
    box = page.locator("input.md-search__input")
    box.click()
    box.press_sequentially("softmax", delay=50)
    results = page.locator(".md-search-result__item")
    results.first.wait_for(timeout=15000)
    links = [a.get_attribute("href") for a in page.locator(".md-search-result__item a").all()]
    page.screenshot(path=str(shots / "search-softmax.png"))
    violations = _csp_violations(page)
    context.close()
    assert any("03-softmax/" in (h or "") for h in links), links
    assert not violations, violations


def test_notebook_page_shows_executed_outputs(server, playwright_browser, shots):
    context = _context(playwright_browser, server, "light", [])
    page = context.new_page()
    notebook = "notebooks/02-matrix-trick/"  # a notebook with a figure among its outputs
    page.goto(server + notebook)
    prompts = page.locator(".jp-InputPrompt").all_inner_texts()
    outputs = page.locator(".jp-OutputArea-output").all_inner_texts()
    errors = page.locator("[data-mime-type='application/vnd.jupyter.stderr']").count()
    figures = page.locator(".jp-OutputArea-output img[src^='data:image/svg+xml']").count()
    download = page.get_by_role("link", name="Download 02-matrix-trick.ipynb").get_attribute("href")
    colab = page.get_by_role("link", name="Open in Colab").get_attribute("href")
    page.locator("clipboard-copy").first.click()  # the notebook's own copy button: an inline script
    page.wait_for_timeout(300)
    violations = _csp_violations(page)
    context.close()
    assert not violations, violations
    executed = [p for p in prompts if re.fullmatch(r"In\s*\[\d+\]:", p.strip())]
    assert executed and len(executed) == len([p for p in prompts if p.strip()]), prompts
    assert any("tensor(" in o for o in outputs), outputs[:5]
    assert errors == 0, "the notebook printed to stderr or raised"
    assert figures >= 1, "the notebook's figure output is missing"
    assert colab.startswith("https://colab.research.google.com/github/")
    with urllib.request.urlopen(server + notebook + download, timeout=10) as r:
        assert r.status == 200 and b'"nbformat"' in r.read()


APPENDIX_JS = """() => {
  const small = parseFloat(getComputedStyle(document.querySelector('.md-typeset table:not([class])')).fontSize);
  // the palette's copy of each plot (sitegen/palettes.py): the other one is not displayed
  const plots = [...document.querySelectorAll('img[src*="plots/"]')].filter(i => i.getBoundingClientRect().width > 0).map(i => ({
    src: i.getAttribute('src'), shown: i.getBoundingClientRect().width, natural: i.naturalWidth}));
  const boxes = [...document.querySelectorAll('.scroll-table')].map(b => ({
    tabindex: b.getAttribute('tabindex'), label: b.getAttribute('aria-label'),
    scrolls: getComputedStyle(b).overflowX, inner: b.scrollWidth > b.clientWidth}));
  return {small, plots, boxes};
}"""


def test_appendix_plots_text_is_as_large_as_the_small_print_and_tables_scroll_by_keyboard(
        server, playwright_browser, site):
    """At a 1280 px window, the plots' smallest text is at least the tables' font size, and every
    wide table sits in a box that scrolls and that Tab reaches."""
    context = _context(playwright_browser, server, "light", [])
    page = context.new_page()
    page.goto(server + "appendix/timing/", wait_until="load")
    page.wait_for_load_state("networkidle")
    facts = page.evaluate(APPENDIX_JS)
    assert facts["plots"] and facts["boxes"]
    for plot in facts["plots"]:
        svg = (site / "appendix" / plot["src"].split("#")[0].removeprefix("../")).read_text(encoding="utf-8")
        width_pt = float(re.search(r'<svg[^>]*\bwidth="([\d.]+)pt"', svg).group(1))
        smallest_pt = min(float(v) for v in re.findall(r"font-size:\s*([\d.]+)px", svg))  # user units: points
        shown_px = smallest_pt * plot["shown"] / width_pt
        assert shown_px >= facts["small"] - 0.05, (plot["src"], shown_px, facts["small"])
    for box in facts["boxes"]:
        assert box["tabindex"] == "0" and box["label"] and box["scrolls"] == "auto", box
    page.set_viewport_size({"width": 400, "height": 800})  # a phone: the tables are wider than the page
    page.reload(wait_until="load")
    wide = page.evaluate("() => [...document.querySelectorAll('.scroll-table')].filter("
                         "b => b.scrollWidth > b.clientWidth).length")
    assert wide > 0
    page.locator(".scroll-table").first.focus()
    assert page.evaluate("() => document.activeElement.classList.contains('scroll-table')")
    before = page.evaluate("() => document.activeElement.scrollLeft")
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(300)
    assert page.evaluate("() => document.activeElement.scrollLeft") > before
    context.close()


# The code blocks of a page in page order: Material's (with its copy button) and the notebook's
# cells (mkdocs-jupyter's <clipboard-copy>), with what the tests need to know of each.
_CODE_BLOCKS_JS = """() => [...document.querySelectorAll('.md-content div.highlight, .md-content clipboard-copy')].map(e => ({
  notebook: e.tagName === 'CLIPBOARD-COPY',
  language: e.tagName === 'CLIPBOARD-COPY' ? 'python' : ((e.className.match(/\\blanguage-(\\S+)/) || [])[1] || ''),
  signature: e.classList.contains('doc-signature'),
  copy: e.getAttribute('data-copy'),
  code: e.tagName === 'CLIPBOARD-COPY' ? null : e.querySelector('code').textContent,
  module: e.closest('.doc-module')?.querySelector('.doc-heading')?.id || null,
}))"""
# Reads the clipboard until it holds something else than `sentinel` (a copy is asynchronous).
_READ_CLIPBOARD_JS = """async sentinel => {
  for (let i = 0; i < 100; i++) {
    const text = await navigator.clipboard.readText();
    if (text !== sentinel) return text;
    await new Promise(r => setTimeout(r, 20));
  }
  return sentinel;
}"""
_SENTINEL = "\u2063nothing copied yet"
_PYTHON = {"python", "py", "pycon"}


def _markdown_source(path: str) -> Path | None:
    """The Markdown file whose fences are a nav page's blocks; None for a chapter's notebook (made
    from docs/notebooks/NN-topic.py) and the API reference (whose blocks come from docstrings)."""
    from tests.pages import DOCS

    file = DOCS / ((path.rstrip("/") or "index") + ".md")
    return file if file.exists() and path != "reference/" else None


def _skip_reason(reason: str | None, namespace: dict) -> str | None:
    """Why Sybil's Skipper skips after `skip: start REASON` or `skip: next REASON`, evaluated as it
    does (`if(condition, reason=...)` or a plain expression); None where it runs the examples."""
    from sybil.evaluators.skip import If

    if not reason:
        return "skipped, no reason given"  # a bare directive skips without a condition
    reason = reason.lstrip()
    if reason.startswith("if"):
        return eval("if_" + reason[2:], namespace | {"if_": If(reason[2:])}) or None  # noqa: S307 (the page's own text)
    return eval(reason, dict(namespace)) or None  # noqa: S307


def _skipped_fences(source: Path) -> dict[int, str]:
    """{fence index: reason} for the fences whose examples Sybil skips on this machine: inside a
    `<!-- skip: start ... -->` ... `<!-- skip: end -->`, or the one example after a
    `<!-- skip: next ... -->`, where the condition holds in the page's setup (CUDA, TRITON)."""
    from sybil.evaluators.skip import Skipper

    from tests.pages import fences
    from tests.sybil_pages import DOCS, _setup

    setup: dict = {}
    _setup(setup)
    examples = list(DOCS.parse(source))
    ranges, opened = [], None  # (start, end, reason) of what is skipped
    for n, example in enumerate(examples):
        if not isinstance(example.region.evaluator, Skipper):
            continue
        action, reason = example.region.parsed
        if action == "start":
            opened = (example.start, _skip_reason(reason, setup))
        elif action == "end":
            ranges.append((opened[0], example.end, opened[1]))
        else:  # next: the one example after it
            ranges.append((examples[n + 1].start, examples[n + 1].end, _skip_reason(reason, setup)))
    run = [e.start for e in examples if not isinstance(e.region.evaluator, Skipper)]
    out = {}
    for i, fence in enumerate(fences(source)):
        inside = [s for s in run if fence.start <= s < fence.end]
        why = {r for s in inside for a, b, r in ranges if a <= s < b and r}
        if why:
            assert len(why) == 1 and all(any(a <= s < b and r for a, b, r in ranges) for s in inside), (
                f"{fence}: Sybil skips only some of its examples; this test runs a block whole or not")
            out[i] = why.pop()
    return out


def _copy_and_run_job(path: str, blocks: list[dict], copied: list[str]) -> tuple[dict, list[str]]:
    """The job for tests/run_copied.py (examples in page order, definitions), and what it leaves
    out and why, for one page whose blocks gave `copied`."""
    from tests.pages import CHECKS, fences

    source = _markdown_source(path)
    fence_list = fences(source) if source else []
    skipped = _skipped_fences(source) if source else {}
    if source:
        assert len(fence_list) == len(blocks), f"{path}: {len(blocks)} blocks, {len(fence_list)} fences"
    job = {"setup": "notebook" if path.startswith("notebooks/") else "sybil", "examples": [], "definitions": []}
    left_out = []
    for i, (block, text) in enumerate(zip(blocks, copied)):
        where = f"{path or '/'} block {i + 1}"
        if block["signature"]:
            left_out.append(f"{where}: a signature, not code")
        elif block["language"] not in _PYTHON:
            left_out.append(f"{where}: {block['language'] or 'no language'}, not Python")
        elif i in skipped:
            left_out.append(f"{where}: skipped as Sybil skips it: {skipped[i]}")
        elif source and fence_list[i].includes:
            name = next(n for p, n in fence_list[i].includes if n != "imports" and p != CHECKS)
            job["definitions"].append({"where": where, "code": text, "name": name})
        else:
            if source:  # the fence's language is the block's
                assert fence_list[i].info.split()[0] == block["language"], (where, fence_list[i].info)
            if not block["notebook"]:
                assert block["copy"] is not None, f"{where}: an example without data-copy"
            job["examples"].append({"where": where, "code": text, "module": block["module"],
                                    "shown": None if block["notebook"] else block["code"]})
    return job, left_out


def test_every_copy_button_gives_code_that_runs(server, playwright_browser, tmp_path):
    """On every page, a click on each code block's copy button (the collapsed ones opened first)
    puts on the clipboard the block's `data-copy` (sitegen/copy.py), else its text, without
    prompts; and what it copied runs (tests/run_copied.py, in one subprocess that runs each page
    while the browser copies the next): the page's examples in page order in one namespace, as
    Sybil runs them (a docstring's in its module's namespace, the notebook's cells in one of their
    own), each definition alone. Blocks in a region Sybil skips here are skipped with its reason;
    blocks that are not Python are only copied. tests/test_copy.py checks, block by block, that
    the copy text is what Sybil runs."""
    import json
    import subprocess

    from tests.run_copied import report_path

    log = tmp_path / "runner.log"
    with log.open("w") as out:
        runner = subprocess.Popen([sys.executable, "-m", "tests.run_copied"], stdin=subprocess.PIPE,
                                  stdout=out, stderr=subprocess.STDOUT, text=True,
                                  cwd=Path(__file__).parent.parent, env=os.environ | {"OMP_NUM_THREADS": "1"})
    context = playwright_browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    jobs = {}
    try:
        page = context.new_page()
        for path in PAGES:
            page.goto(server + path, wait_until="load")
            page.evaluate("() => document.querySelectorAll('.md-content details').forEach(d => { d.open = true; })")
            blocks = page.evaluate(_CODE_BLOCKS_JS)
            if not blocks:
                continue
            elements = page.locator(".md-content div.highlight, .md-content clipboard-copy")
            copied = []
            for i, block in enumerate(blocks):
                page.evaluate("t => navigator.clipboard.writeText(t)", _SENTINEL)
                element = elements.nth(i)
                button = element if block["notebook"] else element.locator("button.md-code__button")
                button.click()  # Playwright scrolls to it and hovers first, as a reader's pointer
                text = page.evaluate(_READ_CLIPBOARD_JS, _SENTINEL)
                where = f"{path or '/'} block {i + 1}"
                assert text != _SENTINEL, f"{where}: the copy button copied nothing"
                if not block["notebook"]:
                    expected = block["copy"] if block["copy"] is not None else block["code"]
                    assert text == expected.rstrip(), f"{where}: the button copied something else"
                assert not re.search(r"^>>> ", text, re.M), f"{where}: a prompt was copied"
                copied.append(text)
            job, left_out = _copy_and_run_job(path, blocks, copied)
            file = tmp_path / f"{path.strip('/').replace('/', '-') or 'index'}.json"
            file.write_text(json.dumps(job), encoding="utf-8")
            runner.stdin.write(f"{file}\n")
            runner.stdin.flush()
            jobs[path] = (job, left_out, file)
    finally:
        context.close()
        runner.stdin.close()
        try:
            runner.wait(timeout=600)
        finally:
            runner.kill()
    totals, summary = {"pages": 0, "examples": 0, "definitions": 0, "left out": 0}, []
    for path, (job, left_out, file) in jobs.items():
        assert report_path(file).exists(), f"{path or '/'}: no report; the runner's output:\n{log.read_text()[-3000:]}"
        report = json.loads(report_path(file).read_text(encoding="utf-8"))
        failures = "\n".join(f"{f['where']}:\n{f['error']}" for f in report["failures"])
        assert not failures, f"{path or '/'}: copied code that does not run:\n{failures}"
        assert (report["examples"], report["definitions"]) == (len(job["examples"]), len(job["definitions"]))
        totals["pages"] += 1
        totals["examples"] += report["examples"]
        totals["definitions"] += report["definitions"]
        totals["left out"] += len(left_out)
        summary += left_out
    signatures = sum(s.endswith(": a signature, not code") for s in summary)
    print(f"\ncopied and ran: {totals}, of which {signatures} signatures left out, and\n"
          + "\n".join(s for s in summary if not s.endswith(": a signature, not code")))
    # What ran is all there is, counted from the sources: every Python fence of the Markdown pages
    # (a session is an example, an include block a definition) less those Sybil skips here, every
    # code cell of the chapters' notebooks, and one example per docstring example on the API reference.
    from tests.pages import ROOT, fences

    want = {"examples": 0, "definitions": 0}
    for path in PAGES:
        source = _markdown_source(path)
        if source is None:
            continue
        skipped = _skipped_fences(source)
        for i, fence in enumerate(fences(source)):
            if fence.is_python and i not in skipped:
                want["definitions" if fence.includes else "examples"] += 1
    cells = sum(len(re.findall(r"^# %%[ \t]*$", p.read_text(encoding="utf-8"), re.M))
                for p in sorted((ROOT / "docs" / "notebooks").glob("*.py")))
    on_reference = len(jobs["reference/"][0]["examples"])
    assert on_reference >= 20 and cells >= 40 and want["definitions"] >= 20, (on_reference, cells, want)
    assert totals["examples"] == want["examples"] + cells + on_reference, (totals, want, cells, on_reference)
    assert totals["definitions"] == want["definitions"], (totals, want)


_OVERFLOWING = """() => {
  const out = [];
  for (const e of document.querySelectorAll('.math-block, .md-typeset pre > code')) {
    if (e.closest('details:not([open])') || e.scrollWidth <= e.clientWidth + 1) continue;
    const s = getComputedStyle(e);
    out.push({what: e.className || e.outerHTML.slice(0, 60), overflow: s.overflowX, right: e.getBoundingClientRect().right,
              cue: s.backgroundImage.includes('gradient'), focusable: e.tabIndex >= 0});
  }
  return {boxes: out, page: document.documentElement.scrollWidth, viewport: innerWidth};
}"""


def test_on_a_phone_wide_formulas_and_code_scroll_in_their_box_with_a_cue(server, playwright_browser):
    """At 390 px nothing widens the page: a wider formula or code line scrolls inside its box,
    which the keyboard can reach and which shows shadows at the edge where there is more."""
    context = playwright_browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        seen = 0
        for path in PAGES:
            page.goto(server + path)
            found = page.evaluate(_OVERFLOWING)
            assert found["page"] <= found["viewport"], f"{path or '/'}: the page scrolls sideways"
            for box in found["boxes"]:
                seen += 1
                assert box["overflow"] in ("auto", "scroll"), (path, box)
                assert box["right"] <= found["viewport"] + 0.5 and box["cue"] and box["focusable"], (path, box)
        assert seen, "no formula or code line is wider than a phone: the test would check nothing"
    finally:
        context.close()


@contextlib.contextmanager
def _widget(playwright_browser, server, path: str, name: str):
    """The widget `name` of page `path`, built by the script (the static figure hidden), checked
    for console errors once the test has driven it."""
    context = playwright_browser.new_context()
    errors = []
    try:
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(server + path)
        root = page.locator(f'[data-widget="{name}"]')
        assert root.locator(".widget-static").is_hidden() and root.locator(".widget-live").is_visible()
        yield page, root
        assert not errors, errors
    finally:
        context.close()


def _widget_reference(scores, query, mask, scale):
    """What chapter 3's widget must show, computed with torch (float64)."""
    import torch

    s = torch.tensor(scores, dtype=torch.float64) * {"1": 1.0, "sqrt": 0.25, "8": 8.0}[scale]
    future = torch.arange(len(scores)) > query
    if mask == "inf-before":
        return torch.softmax(s.masked_fill(future, float("-inf")), dim=-1)
    if mask == "1e9-float16":  # the additive mask in float16: -1e9 is -inf there, 0 * -inf is nan
        fill = torch.tensor(-1e9, dtype=torch.float16)
        return torch.softmax((s.half() + future.half() * fill).double(), dim=-1)
    w = torch.softmax(s, dim=-1).masked_fill(future, 0.0)
    return w / w.sum() if mask == "renorm-after" else w


def test_the_scores_to_weights_widget_matches_torch_driven_by_keyboard(server, playwright_browser):
    import torch

    from snippets.figures import WIDGET_QUERY, WIDGET_SCORES

    with _widget(playwright_browser, server, "03-softmax/", "scores-to-weights") as (page, root):
        assert [float(v) for v in root.get_attribute("data-scores").split()] == list(WIDGET_SCORES)
        assert int(root.get_attribute("data-query")) == WIDGET_QUERY
        scores = list(WIDGET_SCORES)

        def shown():
            return [float(t.get_attribute("data-weight")) for t in root.locator("text[data-weight]").all()]

        def check(mask, scale):
            want = _widget_reference(scores, WIDGET_QUERY, mask, scale)
            got = torch.tensor(shown(), dtype=torch.float64)
            torch.testing.assert_close(got, want, atol=1e-4, rtol=0, equal_nan=True)
            assert root.locator(".widget-out").get_attribute("aria-live") == "polite"
            return root.locator(".widget-out").inner_text()

        check("inf-before", "1")
        first = root.locator('input[data-key="0"]')
        first.focus()
        page.keyboard.press("Control+A")
        page.keyboard.type("4")
        page.keyboard.press("Tab")
        scores[0] = 4.0
        assert "sum 1.0000" in check("inf-before", "1")
        mask = root.locator('select[data-control="mask"]')
        mask.focus()
        for name in ("zero-after", "renorm-after", "1e9-float16"):
            page.keyboard.press("ArrowDown")
            assert mask.input_value() == name
            text = check(name, "1")
        assert "nan" in text
        mask.focus()
        for _ in range(3):
            page.keyboard.press("ArrowUp")
        assert mask.input_value() == "inf-before"
        scale = root.locator('select[data-control="scale"]')
        scale.focus()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("ArrowDown")
        assert scale.input_value() == "8"
        first.focus()
        page.keyboard.press("Control+A")
        page.keyboard.type("12")  # x 8 = 96: exp(96) is inf in float32
        page.keyboard.press("Tab")
        scores[0] = 12.0
        assert "would overflow" in check("inf-before", "8")


WIDGET_PAGES = {"scores-to-weights": "03-softmax/", "online-softmax": "09-streaming/",
                "who-sees-whom": "11-inference/", "kv-cache": "11-inference/"}


def test_without_javascript_every_widget_shows_its_static_figure(server, playwright_browser):
    context = playwright_browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        for name, path in WIDGET_PAGES.items():
            page.goto(server + path)
            root = page.locator(f'[data-widget="{name}"]')
            assert root.locator(".widget-static img").first.is_visible(), name
            assert root.locator(".widget-live").count() == 0, name
    finally:
        context.close()


def test_the_who_sees_whom_widget_draws_the_masks_torch_uses(server, playwright_browser):
    """Its lower-right grid is causal_lower_right's mask, its top-left grid is_causal=True's."""
    import torch
    import torch.nn.functional as F
    from torch.nn.attention.bias import causal_lower_right

    def attend(q, k, v, **mask):
        return F.scaled_dot_product_attention(q, k, v, **mask)

    with _widget(playwright_browser, server, "11-inference/", "who-sees-whom") as (page, root):
        T = int(root.get_attribute("data-tokens"))

        def grid(name, Tq):
            cells = root.locator(f'svg[data-grid="{name}"] rect')
            got = torch.zeros(Tq, T, dtype=torch.bool)
            for c in cells.all():
                got[int(c.get_attribute("data-q")), int(c.get_attribute("data-k"))] = c.get_attribute("data-allowed") == "1"
            assert cells.count() == Tq * T
            return got

        cached = root.locator('input[data-control="cached"]')
        for n in (0, 2, 5, 3):
            cached.focus()
            page.keyboard.press("Control+A")
            page.keyboard.type(str(n))
            page.keyboard.press("Tab")
            Tq = T - n
            q, k, v = torch.randn(Tq, 4), torch.randn(T, 4), torch.randn(T, 4)
            lower_right = grid("lower-right", Tq)
            torch.testing.assert_close(attend(q, k, v, attn_mask=lower_right),
                                       attend(q, k, v, attn_mask=causal_lower_right(Tq, T)))
            if n:
                top_left = grid("top-left", Tq)
                torch.testing.assert_close(attend(q, k, v, attn_mask=top_left), attend(q, k, v, is_causal=True))
                assert not torch.equal(top_left, lower_right)
            else:
                assert root.locator('svg[data-grid="top-left"]').count() == 0
        row = root.locator('input[data-control="row"]')
        row.focus()
        page.keyboard.press("Control+A")
        page.keyboard.type("1")
        page.keyboard.press("Tab")
        said = root.locator(".widget-out").inner_text()
        assert said.startswith("Query row 1 is token 4; it averages the rows 0, 1, 2, 3, 4 of x.")
        assert "would read only 0, 1." in said
        kind = root.locator('select[data-control="kind"]')
        kind.focus()
        page.keyboard.press("ArrowDown")
        assert kind.input_value() == "encoder" and bool(grid("lower-right", T - 3).all())


def test_the_online_softmax_stepper_shows_the_running_state_torch_computes(server, playwright_browser):
    """Step by step, m, l and acc equal their closed forms over the keys so far (float64), and the
    last step's acc / l is online_causal_attention's output for that query."""
    import math

    import torch

    from snippets.figures import STEPPER_SCORES, STEPPER_VALUES
    from snippets.streaming import online_causal_attention

    with _widget(playwright_browser, server, "09-streaming/", "online-softmax") as (page, root):
        preset, nxt = root.locator('select[data-control="preset"]'), root.locator('button[data-control="next"]')
        v = torch.tensor(STEPPER_VALUES, dtype=torch.float64)
        for index, (name, scores) in enumerate(STEPPER_SCORES.items()):
            preset.focus()
            if index:
                page.keyboard.press("ArrowDown")
            assert preset.input_value() == name
            s = torch.tensor(scores, dtype=torch.float64)
            for j in range(len(scores)):
                if j:
                    nxt.focus()
                    page.keyboard.press("Enter")
                row = root.locator(f'tr[data-step="{j}"]')
                got = {c.get_attribute("data-name"): float(c.get_attribute("data-value")) for c in row.locator("td").all()}
                m = s[: j + 1].max()
                w = torch.exp(s[: j + 1] - m)
                want = {"m": m.item(), "l": w.sum().item(), "acc": (w @ v[: j + 1]).item()}
                for key, value in want.items():
                    assert math.isclose(got[key], value, rel_tol=1e-5, abs_tol=1e-5), (name, j, key, got[key], value)
                assert (got["naive"] == math.inf) == (scores[j] > 88.72)
            assert nxt.is_disabled()
            q = torch.tensor([[0.0], [0.0], [1.0]])  # the last query: scores q . k = s against all keys
            k = torch.tensor(scores, dtype=torch.float32)[:, None]
            expected = online_causal_attention(q, k, v.float()[:, None])[-1, 0].item()
            said = root.locator(".widget-out").inner_text()
            shown = float(re.search(r"Output acc / l = ([0-9]+\.[0-9]+)", said)[1])
            assert math.isclose(shown, expected, rel_tol=1e-4), (said, expected)
            assert ("nan (inf / inf)" in said) == (max(scores) > 88.72)


def _numbers(text: str) -> list[float]:
    return [float(n) for n in re.findall(r"-?\d+\.\d+", text)]


def test_the_kv_cache_stepper_shows_what_torch_computes_and_counts_what_it_multiplies(server, playwright_browser):
    """Chapter 11's stepper, driven by the keyboard alone in both palettes, step by step: the cache
    holds rows 0..t of the keys and values that the layer's projection makes for all the tokens at
    once, the weights are torch.softmax's, their average of the values is what the layer's full
    forward outputs (through proj), and the multiply-adds shown are PyTorch's FLOP counter's for
    the step with the cache and for the whole forward without it (2 FLOPs per multiply-add), not
    decode_macs's formula. Shown text and data-value agree to the 2 decimals shown. The new row's
    flash is off under reduced motion; axe finds nothing serious in the stepped widget; no
    console error, no CSP violation."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from snippets.attention import MultiHeadAttention
    from snippets.figures import KV_STEPPER
    from snippets.inference import KVCache

    T, C = KV_STEPPER["T"], KV_STEPPER["n_embd"]
    with torch.random.fork_rng(devices=[]):  # the layer and tokens the trace decodes
        torch.manual_seed(KV_STEPPER["seed"])
        layer = MultiHeadAttention(C, 1, block_size=T)
        x = torch.randn(1, T, C)

    def macs(f) -> int:
        with FlopCounterMode(display=False) as counter:
            f()
        return counter.get_total_flops() // 2

    with torch.no_grad():
        q, k, v = layer.qkv(x)[0].split(C, dim=1)  # (T, C) each: every token at once, no cache
        full = layer(x)[0]  # (T, C)
        without = [macs(lambda t=t: layer(x[:, : t + 1])) for t in range(T)]
        with_cache = []
        for t in range(T):
            cache = KVCache()
            if t:
                layer(x[:, :t], cache)
            with_cache.append(macs(lambda t=t, cache=cache: layer(x[:, t : t + 1], cache)))

    def values(locator) -> torch.Tensor:
        """Its data-value, checked against its shown text (2 decimals)."""
        got = torch.tensor([float(n) for n in locator.get_attribute("data-value").split()])
        shown = torch.tensor(_numbers(locator.inner_text()))
        torch.testing.assert_close(shown, got, atol=0.005 + 1e-6, rtol=0)
        return got

    axe = _axe()
    for scheme in SCHEMES:
        context = _new_context(playwright_browser, scheme)
        errors: list[str] = []
        try:
            page = context.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(server + "11-inference/", wait_until="load")
            root = page.locator('[data-widget="kv-cache"]')
            assert root.locator(".widget-static").is_hidden() and root.locator(".widget-live").is_visible()
            prev, nxt = root.locator('button[data-control="previous"]'), root.locator('button[data-control="next"]')
            out = root.locator(".widget-out")
            assert out.get_attribute("aria-live") == "polite" and prev.is_disabled()
            nxt.focus()
            order = list(range(T)) + [T - 2]  # to the end, and one step back
            for n, t in enumerate(order):
                if n:
                    page.keyboard.press("Enter")
                active = page.evaluate("document.activeElement.getAttribute('data-control')")
                # at the last step "next" is disabled and hands the focus to "previous"
                assert active == ("previous" if n >= T - 1 else "next"), (t, active)
                rows = root.locator("tr[data-row]")
                assert rows.count() == t + 1
                torch.testing.assert_close(values(root.locator(".widget-query")), q[t], atol=1e-5, rtol=0)
                w = torch.softmax(q[t] @ k[: t + 1].T / C**0.5, dim=0)
                got_w = torch.stack([values(rows.nth(j).locator('[data-name="w"]'))[0] for j in range(t + 1)])
                torch.testing.assert_close(got_w, w, atol=1e-5, rtol=0)
                for j in range(t + 1):
                    torch.testing.assert_close(values(rows.nth(j).locator('[data-name="k"]')), k[j], atol=1e-5, rtol=0)
                    torch.testing.assert_close(values(rows.nth(j).locator('[data-name="v"]')), v[j], atol=1e-5, rtol=0)
                avg = values(root.locator('[data-name="avg"]'))
                torch.testing.assert_close(avg, w @ v[: t + 1], atol=1e-5, rtol=0)
                torch.testing.assert_close(layer.proj(avg), full[t], atol=1e-5, rtol=0)
                said = out.inner_text()
                assert re.search(rf"the cache holds {t + 1} rows?;", said), said
                m = re.search(r"Multiply-adds of this step: (\d+) with the cache, (\d+) without; steps 0 to \d+: (\d+) and (\d+)\.", said)
                assert m and [int(g) for g in m.groups()] == [with_cache[t], without[t], sum(with_cache[: t + 1]), sum(without[: t + 1])], (said, with_cache, without)
                bars = {(b.get_attribute("data-macs"), int(b.get_attribute("data-step"))): int(b.text_content())
                        for b in root.locator("text[data-macs]").all()}
                assert bars == {**{("with", j): with_cache[j] for j in range(t + 1)},
                                **{("without", j): without[j] for j in range(t + 1)}}, bars
                if t == T - 1:
                    assert nxt.is_disabled()
            page.keyboard.press("Tab")  # to "next", enabled again one step before the end
            assert page.evaluate("document.activeElement.getAttribute('data-control')") == "next"
            page.keyboard.press("Tab")  # then the table, which scrolls by keyboard where it is wider
            assert page.evaluate("document.activeElement.getAttribute('aria-label')") == "The cache"
            assert root.locator("tr.current").evaluate("e => getComputedStyle(e).animationName") == "widget-arrive"
            page.emulate_media(reduced_motion="reduce")
            assert root.locator("tr.current").evaluate("e => getComputedStyle(e).animationName") == "none"
            if axe is not None:
                found = axe.run(page, context='[data-widget="kv-cache"]', options={"resultTypes": ["violations"]}).response
                assert found["testEngine"]["name"] == "axe-core" and found["passes"], "axe checked nothing"
                bad = [f"{v['id']} ({v['impact']}): {v['help']}" for v in found["violations"] if v["impact"] in AXE_FAILING]
                assert not bad, (scheme, bad)
            assert not _csp_violations(page), _csp_violations(page)
            assert not errors, errors
        finally:
            context.close()
    _axe_or_skip()


_FIGURES_SHOWN = """() => [...document.querySelectorAll('.md-content img[src*="figures/"]')]
  .filter(i => i.getBoundingClientRect().width > 0)
  .map(i => ({src: i.currentSrc, width: i.getBoundingClientRect().width, natural: i.naturalWidth}))"""


def test_figures_get_the_column_widths_their_text_test_assumes(server, playwright_browser):
    """tests/test_figure_text.py sizes each figure's text from Material's text column at 390
    and 1280 px (COLUMN): here Chromium shows that column, each figure at most that wide, and the
    stacked copy where a figure has one on a phone only."""
    from snippets.figures import FIGURES, NARROW
    from tests.pages import COLUMN

    for window, column in COLUMN.items():
        context = playwright_browser.new_context(viewport={"width": window, "height": 900})
        try:
            page = context.new_page()
            seen = 0
            for path in PAGES:
                page.goto(server + path, wait_until="load")
                inner = page.evaluate("() => { const e = document.querySelector('.md-content__inner');"
                                      " const s = getComputedStyle(e); return e.clientWidth"
                                      " - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight); }")
                assert abs(inner - column) <= 1, (window, path, inner)
                for shown in page.evaluate(_FIGURES_SHOWN):
                    seen += 1
                    file = shown["src"].split("#")[0].rsplit("/", 1)[1]  # the img's or its source's
                    name = file.removesuffix(".svg").removesuffix("-dark")
                    assert shown["width"] <= column + 0.5, (window, path, shown)
                    narrow = name.endswith(NARROW)
                    has_copy = (name if narrow else name + NARROW) in FIGURES
                    assert narrow == (has_copy and window < 600), (window, path, shown)
            assert seen, window
        finally:
            context.close()
