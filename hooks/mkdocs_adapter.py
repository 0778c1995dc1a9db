"""MkDocs hook: the site's build steps (`sitegen`) run by `mkdocs build` and `mkdocs serve`.

The one hook of the site, and only an adapter: the steps live in `sitegen/`, which imports no
MkDocs and which any builder can run as `python -m sitegen pre` and `python -m sitegen post site/`.

* `on_config`: the TeX-to-MathML Markdown extension (`sitegen.mathml`), added to
  `markdown_extensions` (before mkdocstrings reads them for the docstrings it renders);
* `on_pre_build`: `sitegen.pre`, which writes the generated files before MkDocs reads `docs/`;
* `on_post_build`: `sitegen.post` over the site folder; without the Content-Security-Policy under
  `mkdocs serve`, whose live-reload script it would block.

MkDocs loads a hook by its path, with nothing of this repository on `sys.path`: the hook puts
the repository first (`_on_path`), so that `sitegen`, `snippets` and `bench` are this checkout's. A step's
refusal (`sitegen.BuildError`) fails the build with its message; stale timing results are a
warning outside the "mkdocs" logger tree, so a strict build does not fail on them.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parent.parent


def _on_path() -> None:
    """The repository first on `sys.path`: at load, and again at each event, since a builder may
    restore `sys.path` after loading a hook (ProperDocs does) while the steps import lazily."""
    if not sys.path or sys.path[0] != str(ROOT):
        sys.path.insert(0, str(ROOT))


_on_path()

from sitegen import BuildError, config as configuration, post, pre  # noqa: E402
from sitegen.mathml import MathMLExtension  # noqa: E402

log = logging.getLogger("attention_trick.sitegen")
_serving = False


def _config(config) -> configuration.Config:
    _on_path()
    try:
        return configuration.load(Path(config.config_file_path))
    except BuildError as exc:
        raise PluginError(str(exc)) from None


def on_startup(command, dirty):
    global _serving
    _serving = command == "serve"


@event_priority(100)
def on_config(config):
    _on_path()
    if not any(isinstance(ext, MathMLExtension) for ext in config.markdown_extensions):
        config.markdown_extensions.append(MathMLExtension())
    return config


def on_pre_build(config):
    try:
        for warning in pre.run(_config(config)):
            log.warning(warning)
    except BuildError as exc:
        raise PluginError(str(exc)) from None


@event_priority(-100)  # after every other plugin has written its files
def on_post_build(config):
    try:
        post.run(Path(config.site_dir), _config(config), csp=not _serving)
    except BuildError as exc:
        raise PluginError(str(exc)) from None
