"""Every colour of highlighted code reaches WCAG AA contrast (4.5:1) on every code background, in
both palettes: checked from the CSS the site ships (Material's stylesheets and
docs/stylesheets/extra.css), for every token class Material colours.

This replaces sampling code spans in a browser with axe (tests/test_browser.py keeps axe's
colour-contrast rule for everything outside highlighted code): the code colours are a fixed
set of CSS variables, so checking each one against each background is exhaustive, and takes
milliseconds. The notebook page's code takes the same variables (extra.css maps JupyterLab's).
"""

from __future__ import annotations

import colorsys
import re
from pathlib import Path

import pytest

from tests.pages import DOCS, ROOT

material = pytest.importorskip("material", reason="mkdocs-material is not installed")
STYLES = Path(material.__file__).parent / "templates" / "assets" / "stylesheets"
AA = 4.5

_RULE = re.compile(r"([^{}]+)\{([^{}]*)\}")
_COMMENT = re.compile(r"/\*.*?\*/", re.S)


def _rules(css: str) -> list[tuple[str, str]]:
    return [(sel.strip(), body) for sel, body in _RULE.findall(_COMMENT.sub("", css))]


def _declarations(body: str) -> dict[str, str]:
    out = {}
    for decl in body.split(";"):
        name, _, value = decl.partition(":")
        if name.strip().startswith("--"):
            out[name.strip()] = value.strip()
    return out


def _css(name: str) -> str:
    (path,) = STYLES.glob(f"{name}.*.min.css")
    return path.read_text(encoding="utf-8")


def palettes() -> dict[str, dict[str, str]]:
    """The custom properties of each palette: Material's, then the site's extra.css over them."""
    primary = re.search(r"primary:\s*(\S+)", (ROOT / "mkdocs.yml").read_text(encoding="utf-8")).group(1)
    scopes = {
        "default": {":root,[data-md-color-scheme=default]", "[data-md-color-scheme=default]"},
        "slate": {":root,[data-md-color-scheme=default]", "[data-md-color-scheme=slate]",
                  f"[data-md-color-scheme=slate][data-md-color-primary={primary}]"},
    }
    rules = _rules(_css("main")) + _rules(_css("palette"))
    rules += _rules((DOCS / "stylesheets" / "extra.css").read_text(encoding="utf-8"))
    out = {}
    for scheme, selectors in scopes.items():
        props: dict[str, str] = {}
        for sel, body in rules:  # in cascade order: later rules win
            if re.sub(r"[\"'\s]", "", sel) in selectors:
                props |= _declarations(body)
        out[scheme] = props
    return out


def token_colours() -> dict[str, str]:
    """CSS variable of each token class's colour in highlighted code (`.highlight .k` -> ...)."""
    out = {}
    for sel, body in _rules(_css("main")):
        m = re.fullmatch(r"\s*color:\s*var\((--[\w-]+)\)\s*", body)
        if m and sel.startswith(".highlight ."):
            for one in sel.split(","):
                if re.fullmatch(r"\.highlight \.\w+", one.strip()):
                    out[one.strip().split(" .")[1]] = m.group(1)
    return out


def resolve(value: str, props: dict[str, str], depth: int = 0) -> str:
    if depth > 20:
        raise ValueError(f"var() cycle at {value}")
    return re.sub(r"var\((--[\w-]+)\)", lambda m: resolve(props[m.group(1)], props, depth + 1), value)


def rgba(colour: str) -> tuple[float, float, float, float]:
    """(r, g, b, alpha), each in 0..1, of a CSS hex, rgb(a) or hsl(a) colour."""
    c = colour.strip().lower()
    if m := re.fullmatch(r"#([0-9a-f]{3,8})", c):
        h = m.group(1)
        if len(h) in (3, 4):
            h = "".join(ch * 2 for ch in h)
        vals = [int(h[i : i + 2], 16) / 255 for i in range(0, len(h), 2)]
        return (*vals[:3], vals[3] if len(vals) == 4 else 1.0)
    if m := re.fullmatch(r"(rgba?|hsla?)\((.*)\)", c):
        parts = [p.strip() for p in re.split(r"[,/\s]+", m.group(2)) if p.strip()]
        alpha = float(parts[3].rstrip("%")) / (100 if parts[3].endswith("%") else 1) if len(parts) > 3 else 1.0
        if m.group(1).startswith("rgb"):
            return (*(float(p) / 255 for p in parts[:3]), alpha)
        h = float(parts[0].removesuffix("deg")) / 360
        s, lightness = float(parts[1].rstrip("%")) / 100, float(parts[2].rstrip("%")) / 100
        return (*colorsys.hls_to_rgb(h, lightness, s), alpha)
    raise ValueError(f"not a colour this check reads: {colour!r}")


def over(top, bottom):
    """`top` composited over an opaque `bottom`."""
    a = top[3]
    return tuple(t * a + b * (1 - a) for t, b in zip(top[:3], bottom[:3])) + (1.0,)


def contrast(fg, bg) -> float:
    def lum(c):
        lin = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in c[:3]]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((lum(fg), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def failures(props: dict[str, str], tokens: dict[str, str]) -> list[str]:
    """Each (token, background) pair of one palette under AA, as text."""
    get = lambda name: rgba(resolve(props[name], props))  # noqa: E731
    page = get("--md-default-bg-color")
    code = over(get("--md-code-bg-color"), page)
    backgrounds = {"code": code, "highlighted line": over(get("--md-code-hl-color--light"), code)}
    colours = {"plain code": "--md-code-fg-color"} | {f".{t}": v for t, v in tokens.items()}
    out = []
    for what, var in colours.items():
        for where, bg in backgrounds.items():
            ratio = contrast(over(get(var), bg), bg)
            if ratio < AA:
                out.append(f"{what} ({var}) on {where}: {ratio:.2f}:1")
    return out


def test_material_colours_every_token_class_we_expect():
    tokens = token_colours()
    # the classes Pygments gives Python code on the pages, at least
    assert {"k", "n", "nf", "s1", "mi", "c1", "o", "p", "nb", "kn", "sd"} <= set(tokens), sorted(tokens)
    assert len(set(tokens.values())) >= 10, tokens


@pytest.mark.parametrize("scheme", ["default", "slate"])
def test_every_code_colour_reaches_aa_on_every_code_background(scheme):
    bad = failures(palettes()[scheme], token_colours())
    assert not bad, f"{scheme}: under {AA}:1\n" + "\n".join(bad)


def test_the_check_finds_a_colour_under_aa():
    props = dict(palettes()["default"]) | {"--md-code-hl-string-color": "#9e9e9e"}  # about 2.4:1 on #f5f5f5
    bad = failures(props, token_colours())
    assert bad and all("--md-code-hl-string-color" in b for b in bad), bad
    assert contrast((0, 0, 0, 1), (1, 1, 1, 1)) == pytest.approx(21)
    assert rgba("hsla(225deg, 15%, 18%, 1)")[:3] == pytest.approx((0.153, 0.165, 0.207), abs=2e-3)
