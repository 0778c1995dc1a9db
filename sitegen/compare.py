"""What differs between two builds of the site: `python -m sitegen compare REFERENCE OTHER`.

For the builders' check (`.ci/builders.sh`), which builds the site with MkDocs (the reference),
ProperDocs and Zensical. It lists, for OTHER against REFERENCE:

* pages: the HTML files only one of them has;
* figures: the drawings (`figures/`, `appendix/plots/`) only one has, and each `<img>` of a page
  whose file is missing from its own site;
* CSP: the pages without a Content-Security-Policy `<meta>`, and those whose policy's directives
  (hashes left out) differ;
* the notebook pages: how many, their cells, how many ran (`In [1]:`), the `.ipynb` downloads and
  the Colab links;
* the "tested with" line: the pages without it;
* the pages whose HTML differs in anything else, after leaving out what changes at every build
  (hashes, cell ids, the generator tag).

It reports; it decides nothing. Its exit status is 0 however much differs.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_CSP = re.compile(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">')
_IMG = re.compile(r'<img\b[^>]*\bsrc="([^"#?]+)')
_NOISE = [re.compile(p) for p in (r"'sha256-[^']*'", r'cell-id=[0-9a-f-]+', r'<meta name="generator"[^>]*>',
                                  r"built with torch [^ ]+ on \d{4}-\d{2}-\d{2}")]


def _pages(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text(encoding="utf-8", errors="replace")
            for p in sorted(site.rglob("*.html"))}


def _drawings(site: Path) -> set[str]:
    return {p.relative_to(site).as_posix() for folder in ("figures", "appendix/plots")
            for p in (site / folder).glob("*.svg")} if site.is_dir() else set()


def _broken_images(site: Path, pages: dict[str, str]) -> list[str]:
    broken = []
    for name, text in pages.items():
        for src in _IMG.findall(text):
            if src.startswith(("data:", "http:", "https:", "//")):
                continue
            target = (site / src.lstrip("/")) if src.startswith("/") else (site / name).parent / src
            if not target.resolve().is_file():
                broken.append(f"{name}: {src}")
    return broken


def _directives(policy: str) -> frozenset[str]:
    return frozenset(" ".join(w for w in d.split() if not w.startswith("'sha256-")) for d in policy.split(";"))


def _notebook(site: Path, pages: dict[str, str]) -> str:
    shown = {name: text for name, text in pages.items() if name.startswith("notebooks/")}
    if not shown:
        copied = sorted(p.name for p in (site / "notebooks").glob("*.py")) if (site / "notebooks").is_dir() else []
        return "no notebooks/*/index.html" + (f" ({len(copied)} notebook sources copied as files)" if copied else "")
    cells = sum(text.count('class="jp-Cell ') for text in shown.values())
    ran = sum(bool(re.search(r"In\s\[1\]:", text)) for text in shown.values())
    downloads = len(list((site / "notebooks").glob("*.ipynb")))
    colab = sum("colab.research.google.com" in text for text in shown.values())
    return (f"{len(shown)} notebook pages, {cells} cells, {ran} executed, {downloads} downloads in notebooks/, "
            f"{'with' if (site / 'notebook.ipynb').is_file() else 'without'} notebook.ipynb, "
            f"{colab} with the Colab link")


def _normalised(text: str) -> str:
    for pattern in _NOISE:
        text = pattern.sub("", text)
    return text


def compare(reference: Path, other: Path) -> list[str]:
    """One line per finding, the first lines the counts."""
    ref, oth = _pages(reference), _pages(other)
    out = [f"pages: {len(oth)} (reference {len(ref)}); only in reference: {sorted(set(ref) - set(oth)) or 'none'}; "
           f"only here: {sorted(set(oth) - set(ref)) or 'none'}"]
    ref_d, oth_d = _drawings(reference), _drawings(other)
    broken = _broken_images(other, oth)
    out.append(f"drawings: {len(oth_d)} (reference {len(ref_d)}); missing: {len(ref_d - oth_d)}; "
               f"images whose file is missing: {len(broken)}" + (f", e.g. {broken[:3]}" if broken else ""))
    no_csp = [n for n, t in oth.items() if not _CSP.search(t)]
    differing = [n for n in set(ref) & set(oth) if _CSP.search(ref[n]) and _CSP.search(oth[n])
                 and _directives(_CSP.search(ref[n]).group(1)) != _directives(_CSP.search(oth[n]).group(1))]
    out.append(f"CSP: {len(oth) - len(no_csp)} of {len(oth)} pages have one; without: {no_csp[:5] or 'none'}"
               f"{' ...' if len(no_csp) > 5 else ''}; directives differ from the reference's: {sorted(differing) or 'none'}")
    out.append(f"notebook: {_notebook(other, oth)} (reference: {_notebook(reference, ref)})")
    no_line = [n for n, t in oth.items() if '<p class="tested-with"><small>' not in t and n != "404.html"]
    out.append(f"tested-with line: missing on {len(no_line)} pages" + (f", e.g. {no_line[:3]}" if no_line else ""))
    changed = sorted(n for n in set(ref) & set(oth) if _normalised(ref[n]) != _normalised(oth[n]))
    out.append(f"HTML otherwise different: {len(changed)} of {len(set(ref) & set(oth))} common pages"
               + (f": {changed[:8]}" if changed else ""))
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m sitegen.compare REFERENCE_SITE OTHER_SITE", file=sys.stderr)
        return 2
    for line in compare(Path(argv[0]), Path(argv[1])):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
