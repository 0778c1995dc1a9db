"""The build refuses a notebook that would run script or load from another host.

The notebook plugin (mkdocs-jupyter, through nbconvert) puts some outputs of the executed notebook
into the page as they are: `text/html`, `image/svg+xml`, the HTML inside `text/markdown` and
`text/vnd.mermaid`, and `application/javascript` as a `<script>`; the raw HTML of Markdown cells
passes too. Such markup could run code on the site or make the reader's browser fetch from
another host (an `<iframe src="https://...">`, a style sheet from `//host`), which the site
promises not to do. The Content-Security-Policy (sitegen/csp.py) would block most of it in the
browser; this check stops the build first, naming the cell.

It looks twice, without reaching into the notebook plugin. Before the build (`sitegen pre`),
`check_outputs` reads each notebook source as a notebook: it refuses raw HTML and images from
other hosts in Markdown cells, and in the outputs a notebook file stores, a JavaScript output
or widget, image metadata that is not a number or a plain file name, and markup outputs that
would run script or load from another host, or that leave a comment, tag or text-only element
open at their end (the next output, or nbconvert's own markup, would be read inside it); the
outputs of a cell are also read joined, as the page shows them. After the build (`sitegen
post`), `check_page` reads each notebook page's final HTML, the outputs of the build's own
execution included, after every other step (the TeX-to-MathML conversion included), with
html5lib, a parser that follows the HTML standard as browsers do, and refuses what the browser
would run or fetch, naming the cell: that is what the reader's browser gets.

Refused markup: a `<script>` (inline scripts outside the cells are judged by sitegen/csp.py's
allow-list), a frame, a plugin (`<object>`, `<embed>`), `<base>`, `<meta>`, an inline event
handler (`onload=`), a `javascript:` URL, a URL to another host where the browser would fetch it
(`src`, `srcset`, `href` outside a link, `data`, `poster`, `action`, `url(...)` in CSS, every
string inside CSS `image-set(...)` and `image(...)`) and any CSS `@import`. URLs are read as a
browser reads them (tabs and newlines removed, `\\` as `/`), CSS by its tokens, after its escapes
(`u\\72l(`) and comments. A link (`<a href>`) to another host is fine: nothing is fetched until
the reader follows it. Image `width` and `height` metadata, which nbconvert writes into the
`<img>` tag unquoted, must be plain numbers.

An output (or a cell's outputs together) of more than MAX_MARKUP characters or MAX_TAGS tags is
refused before it is parsed, and markup nested deeper than MAX_NESTING stops the parser, so a
hostile output costs seconds at most, not minutes.
"""

from __future__ import annotations

import collections
import math
import re

import html5lib

from bench.safe_read import shown
from sitegen import BuildError

# Outputs that run script, or need a script from another host, whatever they hold.
SCRIPT_TYPES = {
    "application/javascript": "a JavaScript output runs script",
    "text/javascript": "a JavaScript output runs script",
    "application/vnd.jupyter.widget-view+json": "a Jupyter widget needs its script from another host",
}
# Outputs whose text reaches the page as markup.
MARKUP_TYPES = ("text/html", "image/svg+xml", "text/markdown", "text/vnd.mermaid")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "image/svg+xml")

_REFUSED_TAGS = {
    "script": "runs script",
    "iframe": "loads a frame",
    "frame": "loads a frame",
    "frameset": "loads frames",
    "object": "loads a plugin",
    "embed": "loads a plugin",
    "applet": "loads a plugin",
    "portal": "loads a page",
    "fencedframe": "loads a frame",
    "noscript": "is read as markup or as text depending on whether script runs",
    "base": "changes where the page's links point",
    "meta": "can redirect or change the page's policy",
    # html5lib drops what a <select> holds, a browser with customizable selects keeps it: what
    # this check cannot see, it refuses
    "select": "is read differently by this check's parser and by current browsers",
    "plaintext": "cannot be closed: the rest of the page would show as text",
}
# Attributes whose URL the browser fetches (href only outside <a> and <area>: links are followed, not fetched).
_FETCHED = {"src", "srcset", "data", "poster", "background", "action", "formaction", "ping", "manifest",
            "codebase", "archive", "lowsrc", "dynsrc", "imagesrcset", "longdesc", "icon", "cite",
            "attributionsrc"}
_LINKS = {"a", "area"}
# After normalising: an absolute URL (a scheme other than data:, or //host); relative URLs and data: stay.
_OTHER_HOST = re.compile(r"^(?:(?!data:)[a-z][a-z0-9+.-]*:|//)", re.I)
_SCRIPT_URL = re.compile(r"^(?:javascript|vbscript|livescript):", re.I)
# html5lib's parse errors for markup left open at the end of an output.
_LEFT_OPEN = re.compile(r"comment|^eof-in-|expected-named-closing-tag-but-got-eof")


def browser_url(value: str) -> str:
    """A URL as the browser reads it: no tab or newline anywhere, no leading or trailing C0 or
    space, and a backslash read as a slash."""
    value = re.sub(r"[\t\n\r]", "", value).strip("".join(map(chr, range(0x21))))
    return value.replace("\\", "/")


def _css_unescape(css: str) -> str:
    css = re.sub(r"/\*.*?(?:\*/|\Z)", "", css, flags=re.S)

    def one(m: re.Match) -> str:
        if m.group(1):
            code = int(m.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return "" if m.group(2) == "\n" else m.group(2)

    return re.sub(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n\r\f]?|(.))", one, css, flags=re.S)


_CSS_URL = re.compile(r"""(?:url|src|image|image-set|-webkit-image-set)\(\s*(['"]?)([^'")]*)""", re.I)


# CSS functions whose string arguments are URLs that the browser fetches (vendor prefixes
# removed): `url("...")`, `src("...")`, `image("...")`, `image-set("a.png" 1x, "b.png" 2x)`;
# `cross-fade(...)` holds images too.
_CSS_URL_FUNCTIONS = {"url", "src", "image", "image-set", "cross-fade"}
_CSS_NAME = re.compile(r"(?:[\w\-\u0080-\U0010ffff]|\\[0-9a-fA-F]{1,6}[ \t\n]?|\\[^\n0-9a-fA-F])+")
_CSS_ESCAPE = re.compile(r"\\(?:([0-9a-fA-F]{1,6})[ \t\n]?|(.)|\Z)", re.S)


def _css_escapes(text: str) -> str:
    """`text` with its CSS escapes read: `\\72 ` is r, an escaped newline is nothing."""

    def one(m: re.Match) -> str:
        if m.group(1):
            code = int(m.group(1), 16)
            return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
        return "" if m.group(2) in (None, "\n") else m.group(2)

    return _CSS_ESCAPE.sub(one, text)


def css_tokens(css: str):
    """(kind, value) for the tokens of CSS as the CSS Syntax standard reads them, as far as this
    check needs: "at" (an at-keyword), "function" (a name and its "("), "string", "url" (an
    unquoted url(...)), "(" and ")"; names and strings with their escapes read, comments
    skipped. Anything else is skipped a character at a time."""
    css = css.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\0", "\ufffd")
    i, n = 0, len(css)
    while i < n:
        c = css[i]
        if css.startswith("/*", i):
            end = css.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "\"'":
            j, parts = i + 1, []
            while j < n and css[j] != c and css[j] != "\n":
                if css[j] == "\\" and j + 1 < n:
                    m = _CSS_ESCAPE.match(css, j)
                    parts.append(_css_escapes(m.group(0)))
                    j = m.end()
                else:
                    parts.append(css[j] if css[j] != "\\" else "")
                    j += 1
            yield "string", "".join(parts)
            i = j + 1 if j < n and css[j] == c else j  # a newline ends a bad string
        elif c == "@" and _CSS_NAME.match(css, i + 1):
            m = _CSS_NAME.match(css, i + 1)
            yield "at", _css_escapes(m.group(0)).lower()
            i = m.end()
        elif _CSS_NAME.match(css, i):
            m = _CSS_NAME.match(css, i)
            name, i = _css_escapes(m.group(0)).lower(), m.end()
            if i < n and css[i] == "(":
                i += 1
                rest = re.match(r"[ \t\n]*", css[i:]).end()
                if name == "url" and not css[i + rest:i + rest + 1] in ("'", '"'):
                    j = i + rest  # an unquoted url(...): up to ")", escapes read
                    m = re.compile(r"(?:\\[^\n]|[^)\\])*").match(css, j)
                    yield "url", _css_escapes(m.group(0)).strip(" \t\n")
                    i = m.end() + 1
                else:
                    yield "function", name
        elif c in "()":
            yield c, c
            i += 1
        else:
            i += 1


def _css_base(name: str) -> str:
    return re.sub(r"^-(?:webkit|moz|o|ms)-", "", name)


def css_problem(css: str, where: str) -> str | None:
    """Why CSS would load from another host or run script, read as the browser reads it: its
    tokens, with their escapes, comments and whitespace (every string inside `image-set(...)`,
    `image(...)` or `url(...)` is a URL), and, to be safe, its text with every escape read and
    every comment removed."""
    text = _css_unescape(css)
    if re.search(r"@import", text, re.I):
        return f"{where} has an @import"
    if re.search(r"expression\s*\(|-moz-binding|behavior\s*:", text, re.I):
        return f"{where} runs script"
    urls = [m.group(2) for m in _CSS_URL.finditer(text)]
    opened: list[str] = []  # the functions and blocks the current token is inside
    for kind, value in css_tokens(css):
        if kind == "at" and value == "import":
            return f"{where} has an @import"
        if kind == "function" and _css_base(value) in ("expression", "-moz-binding"):
            return f"{where} runs script"
        if kind == "function" or kind == "(":
            opened.append(_css_base(value))
        elif kind == ")" and opened:
            opened.pop()
        elif kind == "url" or (kind == "string" and _CSS_URL_FUNCTIONS.intersection(opened)):
            urls.append(value)
    for url in map(browser_url, urls):
        if _OTHER_HOST.match(url) or _SCRIPT_URL.match(url):
            return f"{where} loads {url[:60]!r}"
    return None


def _local(name: str) -> str:
    return name.rsplit("}", 1)[-1].lower()  # html5lib names SVG and MathML tags {namespace}tag


_ANIMATIONS = {"animate", "set", "animatemotion", "animatetransform", "animatecolor"}


def element_problem(tag: str, attrs: dict[str, str]) -> str | None:
    """Why one element (tag and attributes as the browser parsed them) would run script or fetch."""
    if tag in _REFUSED_TAGS:
        return f"<{tag}> {_REFUSED_TAGS[tag]}"
    target = attrs.get("attributename", "").strip().lower()
    if tag in _ANIMATIONS and (target.startswith("on") or target.endswith("href")):
        return f"<{tag} attributeName={target!r}> could set a link or a script"
    for name, value in attrs.items():
        url = browser_url(value)
        if name.startswith("on"):
            return f"<{tag} {name}=...> runs script"
        if _SCRIPT_URL.match(url) or (name == "srcdoc"):
            return f"<{tag} {name}={value[:40]!r}> runs script"
        if name == "style" or "url(" in url.lower():  # SVG's fill, cursor, mask, ... take url() too
            problem = css_problem(value, f"<{tag} {name}=...>")
            if problem:
                return problem
        elif name in _FETCHED or (name == "href" and tag not in _LINKS):
            urls = [c.split()[0] for c in url.split(",") if c.split()] if "srcset" in name else [url]
            for one in urls:
                if _OTHER_HOST.match(one) or _SCRIPT_URL.match(one):
                    return f"<{tag} {name}={one[:60]!r}> loads from another host"
    return None


MAX_NESTING = 512  # elements inside one another: far more than any notebook output needs
TOO_DEEP = f"markup nested deeper than {MAX_NESTING} elements"
# Markup of one output, or of a cell's outputs together, in characters and in tags (counted as
# "<"), refused before it is parsed: html5lib reads some markup at under 10,000 tags a second, so
# the largest accepted output is checked in seconds, not minutes. A table of 60 rows and 20
# columns has about 5,000.
MAX_MARKUP = 2**20
MAX_TAGS = 20_000


class _TooDeep(ValueError):
    pass


class _Stack(list):
    """html5lib's stack of open elements, refusing to grow past MAX_NESTING (and the few elements
    above the markup: html, body): its scope checks read the whole stack at every tag, so
    markup 50,000 elements deep took minutes to parse before the walk below refused it."""

    def append(self, element):
        if len(self) >= MAX_NESTING + 4:
            raise _TooDeep(TOO_DEEP)
        super().append(element)

    def insert(self, index, element):
        if len(self) >= MAX_NESTING + 4:
            raise _TooDeep(TOO_DEEP)
        super().insert(index, element)


class _BoundedTree(html5lib.getTreeBuilder("etree")):
    def reset(self):
        super().reset()
        self.openElements = _Stack()


def _parser():
    return html5lib.HTMLParser(tree=_BoundedTree, namespaceHTMLElements=False)


def _walk(element, visit, inside=()):
    """Call visit(element, tag, attrs, ancestors) on every element below `element`, in document order.

    Without recursion; markup nested deeper than MAX_NESTING is refused (_TooDeep)."""
    stack = [(child, inside) for child in reversed(list(element))]
    while stack:
        child, above = stack.pop()
        if not isinstance(child.tag, str):  # a comment
            continue
        if len(above) >= MAX_NESTING:
            raise _TooDeep(TOO_DEEP)
        tag = _local(child.tag)
        attrs = {_local(k): v for k, v in child.attrib.items()}
        visit(child, tag, attrs, above)
        stack.extend((grandchild, (*above, child)) for grandchild in reversed(list(child)))


def markup_problem(markup: str) -> str | None:
    """Why `markup` would run script or load from another host, or None if it would not."""
    if len(markup) > MAX_MARKUP:
        return f"{len(markup):,} characters of markup, more than {MAX_MARKUP:,}"
    if markup.count("<") > MAX_TAGS:
        return f"{markup.count('<'):,} tags (counted as '<'), more than {MAX_TAGS:,}"
    parser = _parser()
    try:
        root = parser.parseFragment(markup, scripting=True)  # as a browser that runs script reads it
    except _TooDeep:
        return TOO_DEEP
    found: list[str] = []

    def visit(element, tag, attrs, inside):
        problem = element_problem(tag, attrs)
        if problem is None and tag == "style":
            problem = css_problem("".join(element.itertext()), "<style>")
        if problem:
            found.append(problem)

    try:
        _walk(root, visit)
    except _TooDeep:
        return TOO_DEEP
    if not found:
        open_ = [code for _, code, _ in parser.errors if _LEFT_OPEN.search(code)]
        if open_:
            found.append(f"it leaves a comment, tag or text-only element open or malformed ({open_[0]}), "
                         "which would swallow the markup that follows")
    return found[0] if found else None


# Markdown: raw HTML outside code, and images from other hosts. Every pattern runs in time
# linear in the text (a pattern that scans ahead from each of many starts took minutes): alt text
# holds brackets one level deep, a link label none and at most 999 characters (as CommonMark says).
_FENCED = re.compile(r"^[ \t]*(`{3,}+|~{3,}+)[^\n]*\n.*?(?:^[ \t]*\1[`~]*[ \t]*$|\Z)", re.M | re.S)
_AUTOLINK = re.compile(r"<[a-z][a-z0-9+.-]{1,31}:[^\s<>]*>", re.I)
_RAW_HTML = re.compile(r"<[a-z!?/]", re.I)
_ALT = r"((?:[^\[\]]|\[[^\[\]]*\])*)"
_LABEL = r"([^\[\]]{1,999})"
_MD_IMAGE = re.compile(r"!\[" + _ALT + r"\]\(\s*<?([^)\s>]*)")
_MD_IMAGE_REF = re.compile(r"!\[" + _ALT + r"\](?!\()(?:\[" + _LABEL + r"?\])?")
_MD_DEFINITION = re.compile(r"^ {0,3}\[" + _LABEL + r"\]:\s*<?([^\s>]+)", re.M)


def _without_code_spans(text: str) -> str:
    """`text` without its code spans: a run of backticks up to the next run of the same length
    (CommonMark), found in one pass (a regular expression took hours on 2,000 backticks)."""
    runs = [m.span() for m in re.finditer(r"`+", text)]
    by_length: dict[int, collections.deque] = collections.defaultdict(collections.deque)
    for index, (start, end) in enumerate(runs):
        by_length[end - start].append(index)
    kept, done, i = [], 0, 0
    while i < len(runs):
        start, end = runs[i]
        later = by_length[end - start]
        while later and later[0] <= i:
            later.popleft()
        if not later:  # no closing run: the backticks are text
            i += 1
            continue
        close = later.popleft()
        kept.append(text[done:start])
        done, i = runs[close][1], close + 1
    kept.append(text[done:])
    return "".join(kept)


def markdown_problem(text: str) -> str | None:
    """Why Markdown would put raw HTML on the page or an image from another host, or None."""
    if len(text) > MAX_MARKUP:
        return f"{len(text):,} characters of Markdown, more than {MAX_MARKUP:,}"
    prose = _AUTOLINK.sub("", _without_code_spans(_FENCED.sub("", text)))
    raw = _RAW_HTML.search(prose)
    if raw:
        return f"raw HTML ({prose[raw.start():raw.start() + 30]!r}) reaches the page as it is"
    labels = {(m.group(2) or m.group(1)).strip().lower() for m in _MD_IMAGE_REF.finditer(prose)}
    urls = [m.group(2) for m in _MD_IMAGE.finditer(prose)]
    urls += [m.group(2) for m in _MD_DEFINITION.finditer(prose) if m.group(1).strip().lower() in labels]
    for url in map(browser_url, urls):
        if _OTHER_HOST.match(url) or _SCRIPT_URL.match(url):
            return f"an image from {url[:60]!r} would be fetched from another host"
    return None


def _text(value) -> str:
    return value if isinstance(value, str) else "".join(value)


# Output metadata that nbconvert writes into an <img> tag without quotes (`width={{ width |
# escape_html }}`): its `get_metadata` filter reads the image type's own metadata first, then the
# output's top level. Only a plain number stays one attribute value.
_SIZE_KEYS = ("width", "height")


def _plain_number(value) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and math.isfinite(value))


def _metadata_problem(output: dict) -> str | None:
    metadata = output.get("metadata") or {}
    if not isinstance(metadata, dict):
        return f"output metadata is {type(metadata).__name__}, not an object"
    for key in _SIZE_KEYS:  # the fallback for every image type
        if key in metadata and not _plain_number(metadata[key]):
            return f"output metadata {key}={str(metadata[key])[:40]!r} is not a number"
    for mime, meta in metadata.items():
        if mime == "filenames":
            if not isinstance(meta or {}, dict):
                return f"output metadata filenames is {type(meta).__name__}, not an object"
            for name in (meta or {}).values():
                if not re.fullmatch(r"[\w][\w.-]*(?:/[\w][\w.-]*)*", str(name)):
                    return f"output metadata names the file {str(name)[:60]!r}, which is not a plain relative path"
        elif mime in IMAGE_TYPES:
            if not isinstance(meta, dict):
                return f"{mime} metadata is {type(meta).__name__}, not an object"
            for key in _SIZE_KEYS:
                value = meta.get(key)
                if value is not None and not _plain_number(value):
                    return f"{mime} metadata {key}={str(value)[:40]!r} is not a number"
    return None


def output_problem(output: dict) -> str | None:
    """Why one output of a code cell must not reach the page, or None."""
    data = output.get("data") or {}
    for mime, reason in SCRIPT_TYPES.items():
        if mime in data:
            return f"{mime}: {reason}"
    problem = _metadata_problem(output)
    if problem:
        return problem
    for mime in MARKUP_TYPES:
        if mime in data:
            text = _text(data[mime])
            problem = (markdown_problem(text) if mime == "text/markdown" else None) or markup_problem(text)
            if problem:
                return f"{mime}: {problem}"
    return None


def cell_problem(cell: dict) -> str | None:
    """Why a cell (its Markdown, each output, and its outputs read together) must not reach the page."""
    if cell.get("cell_type") == "raw":
        return "a raw cell, which nbconvert writes into the page as it is"
    if cell.get("cell_type") == "markdown":
        source = _text(cell.get("source", ""))
        heading = next((line for line in source.splitlines() if line.lstrip().startswith("#")), "")
        if re.search(r"[<>&]", heading):  # mkdocs-jupyter puts the first heading, unescaped, in <title>
            return f"a heading with <, > or & ({heading.strip()[:60]!r}), which reaches the page's <title> as markup"
        problem = markdown_problem(source)
        return f"its Markdown: {problem}" if problem else None
    outputs = cell.get("outputs", [])
    for output in outputs:
        problem = output_problem(output)
        if problem:
            return f"an output: {problem}"
    joined = "".join(_text((o.get("data") or {})[m]) for o in outputs for m in MARKUP_TYPES
                     if m in (o.get("data") or {}))
    problem = markup_problem(joined) if len([o for o in outputs if o.get("data")]) > 1 else None
    return f"its outputs read together: {problem}" if problem else None


def _where(name: str, index: int, first: str) -> str:
    return (f"{shown(name)}: cell {index} (counting from 0, markdown cells included), which starts "
            f"{first.strip()[:80]!r}")


def check_outputs(nb, name: str = "the notebook") -> None:
    """Raise BuildError naming the first cell of `nb` that must not reach the page."""
    for index, cell in enumerate(nb.get("cells", [])):
        problem = cell_problem(cell)
        if problem:
            source = _text(cell.get("source", ""))
            first = next((line for line in source.splitlines() if line.strip()), "")
            raise BuildError(
                f"{_where(name, index, first)}, has something the site refuses: {problem}. "
                "The site runs no script from a notebook and loads nothing from another host."
            )


def _first_line(cell) -> str:
    """The first line of a rendered cell's source: its code (the first <pre>), or its text."""
    pre = next((e for e in cell.iter() if isinstance(e.tag, str) and _local(e.tag) == "pre"), None)
    text = "".join((pre if pre is not None else cell).itertext())
    return next((line for line in text.splitlines() if line.strip()), "")


def page_problem(page_html: str) -> tuple[int | None, str, str] | None:
    """(cell index or None, the cell's first words, reason) for the first element of a notebook
    page's final HTML that the browser would run or fetch from another host; None if there is none."""
    parser = _parser()
    try:
        root = parser.parse(page_html, scripting=True)
    except _TooDeep:
        return (None, "", TOO_DEEP)
    titles = sum(1 for e in root.iter() if isinstance(e.tag, str) and _local(e.tag) == "title")
    if titles > 1:  # a notebook heading that closed the <title> the theme opened, and wrote on
        return (None, "", f"{titles} <title> elements where the theme writes one")
    body = next((e for e in root.iter() if isinstance(e.tag, str) and _local(e.tag) == "body"), None)
    cells: dict[int, int] = {}  # id of a cell's <div> -> its index
    found: list = []

    def visit(element, tag, attrs, inside):
        # nbconvert nests a code cell's <div class="jp-Cell ..."> in another: the outer one counts
        if tag == "div" and "jp-Cell" in attrs.get("class", "").split() and not any(id(a) in cells for a in inside):
            cells[id(element)] = len(cells)
        cell = next((a for a in reversed((*inside, element)) if id(a) in cells), None)
        if tag == "script" and cell is None:
            problem = element_problem("img", {"src": attrs["src"]}) if "src" in attrs else None
        else:
            problem = element_problem(tag, attrs)
        if problem is None and tag == "style":
            problem = css_problem("".join(element.itertext()), "<style>")
        if problem and not found:
            first = _first_line(cell) if cell is not None else ""
            found.append((cells[id(cell)] if cell is not None else None, first, problem))

    if body is not None:
        try:
            _walk(body, visit)
        except _TooDeep:
            return (None, "", TOO_DEEP)
    return found[0] if found else None


def is_notebook(html_text: str) -> bool:
    """Whether a page holds nbconvert's notebook markup."""
    return 'class="jp-Notebook' in html_text or "class='jp-Notebook" in html_text


def check_page(page_html: str, where: str) -> None:
    """Raise BuildError if a notebook page's final HTML would run script or fetch from another host."""
    found = page_problem(page_html)
    if found:
        index, first, problem = found
        place = _where(where, index, first) if index is not None else f"{where}: outside the notebook's cells"
        raise BuildError(f"{place}, the built page has {problem}. The site runs no script from a "
                         "notebook and loads nothing from another host.")
