"""The pre-build step: files made from code and data, written where the builder reads them.

* `figures`: each drawing of `snippets.figures.FIGURES` as `docs/figures/NAME.svg` (the light
  palette's copy) and `NAME-dark.svg` (`sitegen.palettes`);
* `timing`: the plots of the committed results as `docs/appendix/plots/*.svg` (both palettes),
  and the Markdown the pages include as `build/sitegen/timing/*.md` (`sitegen.timing`);
* `social`: the link-preview image, `docs/assets/social.png` (`sitegen.social`);
* `notebook`: the downloads of the chapters' notebooks, `docs/notebooks/NN-topic.ipynb`, and of
  all of them in one, `docs/notebook.ipynb` (`sitegen.notebook_links`), and the check of every
  notebook source in `docs/` (`sitegen.notebook_outputs.check_outputs`):
  its Markdown cells and any outputs it stores. The outputs the build's own execution makes are
  checked in the finished page (`sitegen.post`).

Every path written is git-ignored (`.gitignore`, `GENERATED`); nothing is committed, and every
build makes them from the code as it is.
"""

from __future__ import annotations

from sitegen import BuildError
from sitegen.config import Config
from sitegen.files import write

# What the step writes, below the project's root (`.gitignore` lists each).
GENERATED = ("docs/figures/", "docs/appendix/plots/", "docs/assets/social.png", "docs/notebook.ipynb",
             "docs/notebooks/*.ipynb", "build/sitegen/")


def figures(config: Config) -> list[str]:
    from sitegen.palettes import dark_name, palette_copies
    from snippets.figures import FIGURES

    for name, draw in FIGURES.items():
        copies = palette_copies(draw())
        write(config.docs_dir / "figures" / f"{name}.svg", copies["light"])
        write(config.docs_dir / "figures" / dark_name(f"{name}.svg"), copies["dark"])
    return []


def timing(config: Config) -> list[str]:
    from sitegen.palettes import dark_name, palette_copies
    from sitegen.timing import INCLUDES, generate

    markdown, plots, warnings = generate(config.docs_dir)
    for name, text in markdown.items():
        write(config.root / INCLUDES / f"{name}.md", text + "\n")
    for path, svg in plots.items():
        copies = palette_copies(svg)
        write(config.docs_dir / path, copies["light"])
        write(config.docs_dir / dark_name(path), copies["dark"])
    return warnings


def social(config: Config) -> list[str]:
    from sitegen.social import IMAGE, draw

    write(config.docs_dir / IMAGE, draw(config.site_name, config.site_description))
    return []


def notebook(config: Config) -> list[str]:
    import jupytext

    from sitegen.notebook_links import IPYNB, NOTEBOOKS, chapter_notebooks, combined_ipynb, pinned_commit, to_ipynb
    from sitegen.notebook_outputs import check_outputs

    def check(path) -> None:
        try:
            nb = jupytext.read(path)
        except Exception as exc:  # jupytext and nbformat raise many types
            raise BuildError(f"{path.relative_to(config.root)}: cannot be read as a notebook: {exc}") from None
        check_outputs(nb, str(path.relative_to(config.root)))

    sources = chapter_notebooks(config.docs_dir)
    for path in sources:  # first, so that a refusal names the source, not a download made from it
        check(path)
    if sources:
        # Unpinned (the head of the default branch) where no commit holds these files as they
        # are; the deploy workflow refuses to publish such a notebook.
        commit = pinned_commit(config.root)
        texts = {str(p.relative_to(config.root)): p.read_text(encoding="utf-8") for p in sources}
        for path, (name, text) in zip(sources, texts.items()):
            write(path.with_suffix(".ipynb"), to_ipynb(text, config.repo_url, commit, name))
        write(config.docs_dir / IPYNB, combined_ipynb(texts, config.repo_url, commit))
    for stale in (config.docs_dir / NOTEBOOKS).glob("*.ipynb"):  # a download whose source is gone
        if not stale.with_suffix(".py").is_file():
            stale.unlink()
    for path in sorted(config.docs_dir.rglob("*.ipynb")):
        check(path)
    return []


STEPS = {"figures": figures, "timing": timing, "social": social, "notebook": notebook}


def run(config: Config) -> list[str]:
    """Run the steps `config` names, in order; the warnings they give (a strict build does not fail on them)."""
    warnings: list[str] = []
    for name, step in STEPS.items():
        if name in config.steps:
            if name == "timing" and not (config.docs_dir / "appendix" / "results").is_dir():
                raise BuildError(f"{config.docs_dir}/appendix/results: no such folder; the timing step needs it")
            warnings += step(config)
    return warnings
