"""Sphinx configuration for asyncnet's documentation."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

import asyncnet

# asyncnet names its public classes asyncnet.X (for tracebacks), but autodoc
# reads "#:" field comments from the module named by __module__: point it
# back at the module that holds the source while the docs are built.
for _name, _module in asyncnet._defined_in.items():
    getattr(asyncnet, _name).__module__ = _module

project = "asyncnet"
author = "asyncnet developers"
copyright = "2026, asyncnet developers"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = False
exclude_patterns = ["_build"]
# furo: fluid width, code blocks that scroll only when a line is really too
# long, light and dark mode. A docs-only dependency (the "docs" extra).
html_theme = "furo"
html_title = "asyncnet"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
# Literal blocks written with a bare "::" are plain text (output, grammars,
# shell lines). Python is always labelled ".. code-block:: python", and
# tests/test_docs_examples.py runs every such block.
highlight_language = "none"
