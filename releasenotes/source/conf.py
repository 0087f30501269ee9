"""Sphinx configuration for poolmgr's release notes (reno)."""

project = "poolmgr release notes"
copyright = "poolmgr contributors"
extensions = ["reno.sphinxext"]
html_theme = "alabaster"
exclude_patterns = ["_build"]
