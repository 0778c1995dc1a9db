"""sitegen/mathml.py as a Python-Markdown extension: TeX becomes MathML under any Python-Markdown builder."""

from __future__ import annotations

import markdown
import pytest

EXTENSIONS = ["pymdownx.arithmatex", "sitegen.mathml"]
CONFIG = {"pymdownx.arithmatex": {"generic": True}}


def _render(text: str) -> str:
    return markdown.markdown(text, extensions=EXTENSIONS, extension_configs=CONFIG)


def test_inline_and_display_math_become_mathml():
    html = _render("Row $t$ gets $\\frac{1}{t+1}$.\n\n$$\nW_{ts} < 1\n$$\n")
    assert "arithmatex" not in html and "\\frac" not in html
    assert html.count("<math") == 3 and html.count('display="block"') == 1
    assert '<span class="math-inline">' in html and '<span class="math-block">' in html
    assert "<mo>&#x0003C;</mo>" in html  # the < reached TeX as <, and MathML as an escaped entity


def test_code_is_left_alone():
    html = _render("Use `$HOME` here.\n\n```\necho $x $y\n```\n")
    assert "<math" not in html and "$HOME" in html and "echo $x $y" in html


def test_a_formula_that_cannot_be_converted_fails_naming_it():
    with pytest.raises(ValueError, match=r"could not be converted to MathML"):
        _render("Broken: $\\frac{1}{$ here.")
