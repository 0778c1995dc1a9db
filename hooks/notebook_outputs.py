"""MkDocs hook: the build refuses a notebook output that would run script or load from another host.

mkdocs-jupyter (through nbconvert) puts some outputs of the executed notebook into the page as
they are: `text/html`, `image/svg+xml`, the HTML inside `text/markdown` and `text/vnd.mermaid`,
and `application/javascript` as a `<script>`. Such an output could run code on the site or make
the reader's browser fetch from another host (an `<iframe src="https://...">`, a style sheet from
`//host`), which the site promises not to do. The Content-Security-Policy (hooks/csp.py) would
block most of it in the browser; this hook stops the build first, naming the cell.

Refused: an `application/javascript` output, a Jupyter widget view (its script comes from
another host), and markup with a `<script>`, a frame, a plugin (`<object>`, `<embed>`), a
`<base>` or `<meta http-equiv>`, an inline event handler (`onload=`), a `javascript:` URL, or a
URL to another host where the browser would fetch it (`src`, `srcset`, `href` outside a link,
`data`, `poster`, `action`, `url(...)` and `@import` in CSS). A link (`<a href>`) to another
host is fine: nothing is fetched until the reader follows it.

The check runs inside nbconvert, after the notebook is executed and before it becomes HTML:
`on_config` gives mkdocs-jupyter an HTML exporter that adds `CheckOutputs` as its last
preprocessor. Should a release of mkdocs-jupyter build its exporter some other way, the check
would not run; so `on_page_content` fails the build on a notebook page that was rendered
without it.
"""

from __future__ import annotations

import html.parser
import re

from mkdocs.exceptions import PluginError
from nbconvert.preprocessors import Preprocessor

# Outputs that run script, or need a script from another host, whatever they hold.
SCRIPT_TYPES = {
    "application/javascript": "a JavaScript output runs script",
    "text/javascript": "a JavaScript output runs script",
    "application/vnd.jupyter.widget-view+json": "a Jupyter widget needs its script from another host",
}
# Outputs whose text reaches the page as markup.
MARKUP_TYPES = ("text/html", "image/svg+xml", "text/markdown", "text/vnd.mermaid")

_REFUSED_TAGS = {
    "script": "runs script",
    "iframe": "loads a frame",
    "frame": "loads a frame",
    "frameset": "loads frames",
    "object": "loads a plugin",
    "embed": "loads a plugin",
    "applet": "loads a plugin",
    "portal": "loads a page",
    "base": "changes where the page's links point",
    "meta": "can redirect or change the page's policy",
}
# Attributes whose URL the browser fetches (href only outside <a> and <area>: links are followed, not fetched).
_FETCHED = {"src", "srcset", "data", "poster", "background", "action", "formaction", "ping", "manifest",
            "codebase", "archive", "lowsrc", "dynsrc", "imagesrcset"}
_LINKS = {"a", "area"}
# An absolute URL (a scheme other than data:, or //host); relative URLs and data: stay on the page.
_OTHER_HOST = re.compile(r"^\s*(?:(?!data:)[a-z][a-z0-9+.-]*:|[/\\]{2})", re.I)
_SCRIPT_URL = re.compile(r"^\s*(?:javascript|vbscript):", re.I)
_CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]*)|@import\s+['"]([^'"]*)""", re.I)


class _Markup(html.parser.HTMLParser):
    """The first reason, if any, why a piece of markup would run script or load from another host."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.reason: str | None = None
        self._in_style = False

    def _refuse(self, reason: str) -> None:
        self.reason = self.reason or reason

    def _css(self, css: str, where: str) -> None:
        for m in _CSS_URL.finditer(css):
            url = m.group(1) or m.group(2) or ""
            if _OTHER_HOST.match(url) or _SCRIPT_URL.match(url):
                self._refuse(f"{where} loads {url!r}")

    def handle_starttag(self, tag, attrs):
        if tag in _REFUSED_TAGS:
            self._refuse(f"<{tag}> {_REFUSED_TAGS[tag]}")
        for name, value in attrs:
            value = value or ""
            if name.startswith("on"):
                self._refuse(f"<{tag} {name}=...> runs script")
            elif _SCRIPT_URL.match(value) and name in _FETCHED | {"href", "xlink:href", "srcdoc"}:
                self._refuse(f"<{tag} {name}={value[:40]!r}> runs script")
            elif name == "style":
                self._css(value, f"<{tag} style=...>")
            elif name in _FETCHED or (name in ("href", "xlink:href") and tag not in _LINKS):
                urls = [c.split()[0] for c in value.split(",") if c.split()] if "srcset" in name else [value]
                for url in urls:
                    if _OTHER_HOST.match(url):
                        self._refuse(f"<{tag} {name}={url!r}> loads from another host")
        self._in_style = self._in_style or tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self._css(data, "<style>")


def markup_problem(markup: str) -> str | None:
    """Why `markup` would run script or load from another host, or None if it would not."""
    parser = _Markup()
    parser.feed(markup)
    parser.close()
    return parser.reason


def output_problem(output: dict) -> str | None:
    """Why one output of a code cell must not reach the page, or None."""
    data = output.get("data") or {}
    for mime, reason in SCRIPT_TYPES.items():
        if mime in data:
            return f"{mime}: {reason}"
    for mime in MARKUP_TYPES:
        if mime in data:
            text = data[mime]
            problem = markup_problem(text if isinstance(text, str) else "".join(text))
            if problem:
                return f"{mime}: {problem}"
    return None


def check_outputs(nb, name: str = "the notebook") -> None:
    """Raise PluginError naming the first cell of `nb` with an output that must not reach the page."""
    for index, cell in enumerate(nb.get("cells", [])):
        for output in cell.get("outputs", []):
            problem = output_problem(output)
            if problem:
                source = cell.get("source", "")
                source = source if isinstance(source, str) else "".join(source)
                first = next((line for line in source.splitlines() if line.strip()), "")
                raise PluginError(
                    f"{name}: cell {index} (counting from 0, markdown cells included), which starts "
                    f"{first.strip()[:80]!r}, has an output the site refuses: {problem}. "
                    "The site runs no script from a notebook and loads nothing from another host."
                )


_RUNS = {"checked": 0, "rendered": 0}  # notebooks checked, and notebook pages seen, this build


class CheckOutputs(Preprocessor):
    """nbconvert preprocessor: `check_outputs` on the executed notebook."""

    def preprocess(self, nb, resources):
        path = (resources.get("metadata") or {}).get("path")
        check_outputs(nb, f"notebook in {path}" if path else "the notebook")
        _RUNS["checked"] += 1
        return nb, resources


def _checked_exporter(base):
    class CheckedHTMLExporter(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.register_preprocessor(CheckOutputs, enabled=True)  # after the executing one

    return CheckedHTMLExporter


# The exporter classes that mkdocs-jupyter instantiates, by release: HTMLExporter (up to 0.26),
# NotebookHTMLExporter (0.27, a subclass defined in that module).
_EXPORTERS = ("HTMLExporter", "NotebookHTMLExporter")


def on_config(config):
    # mkdocs-jupyter looks these names up in its module at every conversion.
    from mkdocs_jupyter import nbconvert2

    _RUNS.update(checked=0, rendered=0)
    found = False
    for name in _EXPORTERS:
        exporter = getattr(nbconvert2, name, None)
        if exporter is None or not hasattr(exporter, "register_preprocessor"):
            continue
        found = True
        if not exporter.__dict__.get("_checks_outputs", False):
            checked = _checked_exporter(exporter)
            checked._checks_outputs = True
            setattr(nbconvert2, name, checked)
    if not found:
        raise PluginError("hooks/notebook_outputs.py: mkdocs_jupyter.nbconvert2 has no HTML exporter "
                          f"named {' or '.join(_EXPORTERS)}; the notebook's outputs cannot be checked")
    return config


def on_page_content(html_text: str, page, config, files) -> str:
    """Refuse a notebook page (nbconvert's markup) rendered without the output check."""
    if 'class="jp-Notebook' in html_text or "class='jp-Notebook" in html_text:
        _RUNS["rendered"] += 1
        if _RUNS["checked"] < _RUNS["rendered"]:
            raise PluginError(f"hooks/notebook_outputs.py: {page.file.src_path} was rendered by "
                              "mkdocs-jupyter without the output check; this release of mkdocs-jupyter "
                              "builds its exporter in a way the hook does not know (MAINTAINING.md)")
    return html_text
