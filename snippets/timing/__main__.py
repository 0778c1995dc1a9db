"""``python -m snippets.timing``: see ``snippets.timing.cli``."""

import sys

from snippets.timing.cli import main

if __name__ == "__main__":
    sys.exit(main(reuse_freed_memory=True))
