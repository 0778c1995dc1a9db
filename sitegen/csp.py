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

`mkdocs serve` injects its own inline live-reload script into each page it serves, after this
pass has run; a policy would block it, so pages built for `serve` carry none. `mkdocs build`
(and so the site that is deployed and tested) always has it.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import re
from importlib import resources

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


class _Inline(html.parser.HTMLParser):
    """Collects what a page runs or styles inline."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.style_attrs: list[str] = []
        self.refused: list[str] = []
        self._open: str | None = None  # "script" or "style" while inside one that is collected
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.refused.append(f"an inline event handler <{tag} {name}=...>")
            elif name in _URL_ATTRS and (value or "").strip().lower().startswith("javascript:"):
                self.refused.append(f"a javascript: URL in <{tag} {name}=...>")
            elif name == "style" and value:
                self.style_attrs.append(value)
        if tag == "meta" and (names.get("http-equiv") or "").strip().lower() == "refresh":
            self.refused.append("a <meta http-equiv=refresh>, which can send the reader to another host")
        if tag == "script" and "src" not in names and (names.get("type") or "").strip().lower() not in DATA_TYPES:
            self._open, self._text = "script", []
        elif tag == "style":
            self._open, self._text = "style", []

    def handle_data(self, data):
        if self._open:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == self._open:
            (self.scripts if tag == "script" else self.styles).append("".join(self._text))
            self._open = None


def policy(page_html: str, where: str, base_url: str = ".", scope: str | None = None) -> str:
    """The Content-Security-Policy for `page_html`; `where` names the page in an error.

    `base_url` (and Material's `extra.scope`, if set) are the page's values in the templates."""
    found = _Inline()
    found.feed(page_html)
    found.close()
    if found.refused:
        raise BuildError(
            f"Content-Security-Policy: {where} has {found.refused[0]}, which the site does not "
            "allow; use a script file from the site instead"
        )
    allowed = {sha256(s) for s in allowed_scripts(base_url, scope)}
    for script in found.scripts:
        if sha256(script) not in allowed:
            raise BuildError(
                f"Content-Security-Policy: {where} has an inline script that no template of the theme "
                f"or the notebook plugin writes, starting {script.strip()[:60]!r}; the site runs no "
                "other inline script (sitegen/csp.py, ALLOWED_SOURCES)"
            )
    script_hashes = sorted({sha256(s) for s in found.scripts})
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
