"""A Content-Security-Policy on every page, with hashes of its inline code.

Each HTML page gets a `<meta http-equiv="Content-Security-Policy">` right after its
`<meta charset>` (which has to stay within the first 1024 bytes, so it goes first), before any
script, style sheet or image. The policy lets the page load scripts, style sheets, images,
fonts, the search index and the search worker from the site's own origin only, images also
from `data:` URLs (Material's icons in its CSS, the notebook's figures), and nothing else:
`default-src 'none'`, no plugins (`object-src 'none'`), no `<base>` elsewhere, forms submit
to the site only. `frame-ancestors` has no effect in a `<meta>` policy, so it is left out.

Inline scripts are allowed by hash from an allow-list that this module reads from the installed
templates of the theme and the notebook plugin (`ALLOWED_SOURCES`): the `<script>` elements
written in Material's templates (its palette and local-storage set-up) and in mkdocs-jupyter's
notebook template (the copy button, with the script file it includes). Two of Material's
scripts hold the page's `base_url`; that value is filled in for each page, and a template
expression this module does not know keeps its script off the list. A script found in a page is
never hashed for being there: an inline script the browser would run that is not on the list
fails the build, naming the page. Data blocks (`<script type="application/json">`, the notebook
widgets' state) are not run, so they need no hash; any other `type` counts as a script.

Every `<style>` element (the notebook's style sheets) and every `style="..."` attribute value
(table column alignment) is hashed from the page. Style attributes need `'unsafe-hashes'` next
to their hashes: that allows exactly those declarations, not any inline style. Nothing is
`'unsafe-inline'`.

An inline event handler (`onclick="..."`) or a `javascript:` URL would be blocked by this policy,
so the build stops naming the page instead of shipping a page that silently breaks.

The page is read with html5lib, a parser that follows the HTML standard as browsers do (so a
CDATA section outside SVG and MathML hides nothing), and an iframe's `srcdoc` is read as the
document it is: its scripts, handlers and styles count as the page's, since the frame inherits
the page's policy.

`mkdocs serve` injects its own inline live-reload script into each page it serves, after this
pass has run; a policy would block it, so pages built for `serve` carry none. `mkdocs build`
(and so the site that is deployed and tested) always has it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

import html5lib

from sitegen import BuildError

# Script types that the browser does not run (data blocks); any other type counts as a script.
DATA_TYPES = {"application/json", "application/vnd.jupyter.widget-state+json",
              "application/vnd.jupyter.widget-view+json"}
# Templates whose inline <script> elements are allowed: (package, path inside it).
ALLOWED_SOURCES = [
    ("material", "templates/base.html"),
    *[("material", f"templates/partials/javascripts/{n}.html")
      for n in ("base", "palette", "content", "announce", "outdated", "consent")],
    ("mkdocs_jupyter", "templates/mkdocs_html/notebook.html.j2"),
]
# Script files that a template puts inline, as nbconvert's `resources.include_js` writes them.
INCLUDED_JS = [("mkdocs_jupyter", "templates/mkdocs_html/assets/clipboard.umd.js")]
# Template expressions inside an allowed script, and the page value each one stands for.
_HOLES = {"config.extra.scope | d(base_url)": "scope", "base_url": "base_url"}
_TEMPLATE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)
_EXPRESSION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_CHARSET = re.compile(r"<meta\s+charset=[^>]*>", re.I)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href"}

def _read(package: str, path: str) -> str:
    return (resources.files(package) / path).read_text(encoding="utf-8")


def allowed_scripts(base_url: str, scope: str | None = None) -> set[str]:
    """The text of every inline script the templates write, for a page whose base_url is given."""
    values = {"base_url": base_url, "scope": scope or base_url}
    allowed = {"\n" + _read(package, path) for package, path in INCLUDED_JS}
    for package, path in ALLOWED_SOURCES:
        for body in _TEMPLATE_SCRIPT.findall(_read(package, path)):
            if "{%" in body or "{#" in body:
                continue  # a script built by template logic is not on the list
            parts = _EXPRESSION.split(body)  # odd items are expressions
            if all(parts[i] in _HOLES for i in range(1, len(parts), 2)):
                allowed.add("".join(values[_HOLES[p]] if i % 2 else p for i, p in enumerate(parts)))
    return allowed


def sha256(text: str) -> str:
    """A CSP hash source for `text` as the browser sees it (its parser turns CR LF and CR into LF)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode("ascii") + "'"


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()  # html5lib names SVG and MathML tags {namespace}tag


def _browser_url(value: str) -> str:
    """A URL as the browser reads it: no tab or newline anywhere, no leading C0 or space."""
    return re.sub(r"[\t\n\r]", "", value).lstrip("".join(map(chr, range(0x21)))).lower()


MAX_SRCDOC_DEPTH = 3  # an iframe's srcdoc inside an iframe's srcdoc ...: refused deeper than this


class _Inline:
    """Collects what a page runs or styles inline, from the page as html5lib reads it (a parser
    that follows the HTML standard as browsers do: a CDATA section outside SVG and MathML ends at
    the first `>`, Python's html.parser read it to `]]>` and missed a script behind it). An
    iframe's `srcdoc` is read the same way, as the document it is, and counted with the page: the
    frame inherits the page's policy."""

    def __init__(self) -> None:
        self.scripts: list[tuple[str, str]] = []  # (text, where on the page)
        self.styles: list[str] = []
        self.style_attrs: list[str] = []
        self.refused: list[str] = []

    def read(self, page_html: str, inside: str = "", depth: int = 0) -> None:
        parser = html5lib.HTMLParser(tree=html5lib.getTreeBuilder("etree"), namespaceHTMLElements=False)
        for element in parser.parse(page_html, scripting=True).iter():
            if not isinstance(element.tag, str):  # a comment
                continue
            tag = _local(element.tag)
            attrs = {_local(k): v for k, v in element.attrib.items()}
            for name, value in attrs.items():
                if name.startswith("on"):
                    self.refused.append(f"an inline event handler <{tag} {name}=...>{inside}")
                elif name in _URL_ATTRS and _browser_url(value).startswith("javascript:"):
                    self.refused.append(f"a javascript: URL in <{tag} {name}=...>{inside}")
                elif name == "style" and value:
                    self.style_attrs.append(value)
                elif name == "srcdoc":
                    if depth >= MAX_SRCDOC_DEPTH:
                        self.refused.append(f"an iframe's srcdoc nested more than {MAX_SRCDOC_DEPTH} deep")
                    else:
                        self.read(value, f" in the srcdoc of <{tag}>{inside}", depth + 1)
            if tag == "meta" and attrs.get("http-equiv", "").strip().lower() == "refresh":
                self.refused.append("a <meta http-equiv=refresh>, which can send the reader to another "
                                   f"host{inside}")
            if tag == "script" and not {"src", "href"} & attrs.keys() and \
                    attrs.get("type", "").strip().lower() not in DATA_TYPES:
                self.scripts.append(("".join(element.itertext()), inside))
            elif tag == "style":
                self.styles.append("".join(element.itertext()))


def policy(page_html: str, where: str, base_url: str = ".", scope: str | None = None) -> str:
    """The Content-Security-Policy for `page_html`; `where` names the page in an error.

    `base_url` (and Material's `extra.scope`, if set) are the page's values in the templates."""
    found = _Inline()
    found.read(page_html)
    if found.refused:
        raise BuildError(
            f"Content-Security-Policy: {where} has {found.refused[0]}, which the site does not "
            "allow; use a script file from the site instead"
        )
    allowed = {sha256(s) for s in allowed_scripts(base_url, scope)}
    for script, inside in found.scripts:
        if sha256(script) not in allowed:
            raise BuildError(
                f"Content-Security-Policy: {where} has an inline script{inside} that no template of the "
                f"theme or the notebook plugin writes, starting {script.strip()[:60]!r}; the site runs no "
                "other inline script (sitegen/csp.py, ALLOWED_SOURCES)"
            )
    script_hashes = sorted({sha256(s) for s, _ in found.scripts})
    style_hashes = sorted({sha256(s) for s in found.styles})
    attr_hashes = sorted({sha256(s) for s in found.style_attrs} - set(style_hashes))
    style_src = ["'self'", *style_hashes]
    if found.style_attrs:
        style_src += ["'unsafe-hashes'", *attr_hashes]
    directives = [
        "default-src 'none'",
        " ".join(["script-src", "'self'", *script_hashes]),
        " ".join(["style-src", *style_src]),
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",  # the search index
        "worker-src 'self'",  # the search worker
        "manifest-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
    ]
    return "; ".join(directives)


def with_policy(page_html: str, where: str, base_url: str = ".", scope: str | None = None) -> str:
    """`page_html` with its policy as a `<meta>` element first in `<head>`, after `<meta charset>`."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy(page_html, where, base_url, scope)}">'
    anchor = _CHARSET.search(page_html) or _HEAD.search(page_html)
    if anchor is None:
        raise BuildError(f"Content-Security-Policy: {where} has no <head> to put the policy in")
    return page_html[: anchor.end()] + "\n    " + meta + page_html[anchor.end() :]
