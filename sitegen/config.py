"""What the build steps read from `mkdocs.yml`: the settings every builder of this site shares.

Both MkDocs and its successors (ProperDocs, Zensical) read `mkdocs.yml`, so the steps read it
too, with only the YAML tags it uses (`!ENV`, as MkDocs reads it: the first variable that is
set, else the last item). `extra.sitegen.steps` lists the steps to run (every step if absent):
the small test sites of `tests/building.py` run a few.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from sitegen import BuildError

PRE_STEPS = ("figures", "timing", "social", "notebook")
POST_STEPS = ("notebook", "palettes", "copy", "widgets", "a11y", "tested_with", "csp")


class _Loader(yaml.SafeLoader):
    pass


def _env(loader: yaml.SafeLoader, node: yaml.Node):
    items = loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode) else [loader.construct_scalar(node)]
    *names, default = items if len(items) > 1 else (*items, None)
    for name in names:
        if name in os.environ:
            return os.environ[name]
    return default


_Loader.add_constructor("!ENV", _env)
# Tags of plugins' own (`!!python/name:`) are no setting these steps read: kept as their text.
_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: f"!!python/{suffix}")


@dataclass(frozen=True)
class Config:
    root: Path
    docs_dir: Path
    site_dir: Path
    site_name: str = ""
    site_description: str = ""
    site_url: str | None = None
    repo_url: str | None = None
    scope: str | None = None
    steps: frozenset[str] = field(default_factory=lambda: frozenset(PRE_STEPS + POST_STEPS))


def load(config_file: Path) -> Config:
    """The settings in `config_file`; a missing or malformed file is refused naming it."""
    try:
        data = yaml.load(config_file.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise BuildError(f"{config_file}: cannot be read as the site's configuration: {exc}") from None
    if not isinstance(data, dict):
        raise BuildError(f"{config_file}: expected a mapping of settings, got {type(data).__name__}")
    root = config_file.resolve().parent
    extra = data.get("extra") or {}
    steps = (extra.get("sitegen") or {}).get("steps") if isinstance(extra, dict) else None
    known = set(PRE_STEPS + POST_STEPS)
    if steps is not None and (not isinstance(steps, list) or not set(steps) <= known):
        raise BuildError(f"{config_file}: extra.sitegen.steps must be a list of {sorted(known)}, got {steps!r}")
    return Config(
        root=root,
        docs_dir=root / str(data.get("docs_dir") or "docs"),
        site_dir=root / str(data.get("site_dir") or "site"),
        site_name=str(data.get("site_name") or ""),
        site_description=str(data.get("site_description") or ""),
        site_url=data.get("site_url"),
        repo_url=data.get("repo_url"),
        scope=extra.get("scope") if isinstance(extra, dict) else None,
        steps=frozenset(known if steps is None else steps),
    )
