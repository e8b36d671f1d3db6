"""The C front end: tree-sitter parsing, per-file facts, preprocessor branches, guards.

tree-sitter is imported on the first parse (``c.parse``), not by this package.
"""
