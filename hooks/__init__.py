"""Build steps for the site: MkDocs hooks (loaded by path) and the MathML Markdown extension."""
