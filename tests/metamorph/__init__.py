"""Metamorphic and mutation testing of vpcheck, black-box.

The modules here rewrite C source with tree-sitter (never through
``analyzer``): ``csrc`` reads a tree and finds the code the analysis can see,
``transforms`` holds behaviour-preserving rewrites, ``mutations`` injects bugs
of each sink kind and re-derives their counterexamples with plain arithmetic,
``oracle`` runs ``vpcheck check --format json`` in-process and compares.
"""
