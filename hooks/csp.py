"""MkDocs hook: a Content-Security-Policy on every page, with hashes of its inline code.

Each HTML page gets a `<meta http-equiv="Content-Security-Policy">` right after its
`<meta charset>` (which has to stay within the first 1024 bytes, so it goes first), before any
script, style sheet or image. The policy lets the page load scripts, style sheets, images,
fonts, the search index and the search worker from the site's own origin only, images also
from `data:` URLs (Material's icons in its CSS, the notebook's figures), and nothing else:
`default-src 'none'`, no plugins (`object-src 'none'`), no `<base>` elsewhere, forms submit
to the site only. `frame-ancestors` has no effect in a `<meta>` policy, so it is left out.

Inline code is allowed by hash, computed here from the final HTML of each page: every inline
`<script>` the browser runs (Material's palette and search set-up, the notebook's copy button),
every `<style>` element (the notebook's style sheets) and every `style="..."` attribute value
(table column alignment). Style attributes need `'unsafe-hashes'` next to their hashes: that
allows exactly those declarations, not any inline style. Nothing is `'unsafe-inline'`.

An inline event handler (`onclick="..."`) or a `javascript:` URL would be blocked by this policy,
so the build stops naming the page instead of shipping a page that silently breaks.

`mkdocs serve` injects its own inline live-reload script into each page it serves, after this
hook has run; a policy would block it, so pages built for `serve` carry none. `mkdocs build`
(and so the site that is deployed and tested) always has it.
"""

from __future__ import annotations

import base64
import hashlib
import html.parser
import re

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

# Script types that the browser runs; any other type (application/json, ...) is a data block.
_JS_TYPES = {"", "text/javascript", "application/javascript", "text/ecmascript", "application/ecmascript", "module"}
_CHARSET = re.compile(r"<meta\s+charset=[^>]*>", re.I)
_HEAD = re.compile(r"<head\b[^>]*>", re.I)
_URL_ATTRS = {"href", "src", "action", "formaction", "xlink:href"}

_serving = False  # set by on_startup: `mkdocs serve` or `mkdocs build`


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
        if tag == "script" and "src" not in names and (names.get("type") or "").strip().lower() in _JS_TYPES:
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


def policy(page_html: str, where: str) -> str:
    """The Content-Security-Policy for `page_html`; `where` names the page in an error."""
    found = _Inline()
    found.feed(page_html)
    found.close()
    if found.refused:
        raise PluginError(
            f"Content-Security-Policy: {where} has {found.refused[0]}, which the policy would block; "
            "use a script file from the site instead"
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


def with_policy(page_html: str, where: str) -> str:
    """`page_html` with its policy as a `<meta>` element first in `<head>`, after `<meta charset>`."""
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy(page_html, where)}">'
    anchor = _CHARSET.search(page_html) or _HEAD.search(page_html)
    if anchor is None:
        raise PluginError(f"Content-Security-Policy: {where} has no <head> to put the policy in")
    return page_html[: anchor.end()] + "\n    " + meta + page_html[anchor.end() :]


def on_startup(command, dirty):
    global _serving
    _serving = command == "serve"


@event_priority(-100)  # last: after every other hook and plugin has changed the page
def on_post_page(output, page, config):
    return output if _serving else with_policy(output, page.file.src_uri)


@event_priority(-100)
def on_post_template(output_content, template_name, config):
    # 404.html is a template of the theme, not a page; sitemap.xml is no HTML.
    if _serving or not template_name.endswith(".html"):
        return output_content
    return with_policy(output_content, template_name)
