"""The site's one MkDocs hook, `mkdocs_adapter.py` (loaded by path), which runs `sitegen`."""
