"""`python -m sitegen pre` and `python -m sitegen post [SITE]`: the two passes, for any builder.

    python -m sitegen pre                 # before the build: figures, timing, preview, notebook
    python -m sitegen post site/          # after it: the pass over the finished HTML
    python -m sitegen post site/ --serve  # ... without the Content-Security-Policy

`-f FILE` names the configuration (default `mkdocs.yml` here). The exit status is 1 with the
reason on one line when a step refuses its input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sitegen import BuildError, config as configuration, post, pre


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sitegen", description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--config-file", type=Path, default=Path("mkdocs.yml"))
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("pre", help="make the generated files the builder reads")
    post_parser = sub.add_parser("post", help="the pass over the built HTML")
    post_parser.add_argument("site", type=Path, nargs="?", help="the built site (default: site_dir)")
    post_parser.add_argument("--serve", action="store_true", help="no Content-Security-Policy")
    args = parser.parse_args(argv)
    try:
        config = configuration.load(args.config_file)
        if args.command == "pre":
            for warning in pre.run(config):
                print(f"sitegen: warning: {warning}", file=sys.stderr)
        else:
            count = post.run(args.site or config.site_dir, config, csp=not args.serve)
            print(f"sitegen: {count} pages done", file=sys.stderr)
    except BuildError as exc:
        print(f"sitegen: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
