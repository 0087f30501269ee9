"""Sphinx configuration for poolmgr's documentation.

Build with ``tox -e docs`` (``sphinx-build -W -b html doc/source
doc/build/html``); tests/unit/test_docs.py builds it the same way, so the
suite fails on any warning.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

# NOTE(checkout): the references import poolmgr; build from the checkout's
# code, not from whatever copy may be installed elsewhere.
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(HERE, "_ext"))

project = "poolmgr"
copyright = "poolmgr contributors"
author = "poolmgr contributors"

extensions = [
    "oslo_config.sphinxext",
    "oslo_config.sphinxconfiggen",
    "sphinxarg.ext",
    "poolmgr_help",
]

# The sample configuration, written by oslo-config-generator at every build
# into doc/source/_static/poolmgr.conf.sample (not committed).
config_generator_config_file = os.path.join(
    ROOT, "etc", "poolmgr", "poolmgr-config-generator.conf")
sample_config_basename = "_static/poolmgr"

exclude_patterns = ["_build"]
templates_path = []
html_theme = "alabaster"
html_theme_options = {"description": "Nova host aggregates as XenServer pools"}
html_show_sourcelink = False
# NOTE(speed): one language, no search index in other languages, no
# smartquotes rewriting `--flags` into dashes.
smartquotes = False
# NOTE(plain): literal blocks are command lines and their output, not
# Python; pages that show code say so (``code-block:: python``).
highlight_language = "none"
