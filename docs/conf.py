"""Sphinx configuration for the Concert documentation.

Build the HTML pages and run the examples with::

    sphinx-build -W -b html docs docs/_build/html
    sphinx-build -W -b doctest docs docs/_build/doctest
"""

import os
import sys

# Make ``import concert`` work from a plain checkout, without installing it.
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
sys.path.insert(0, ROOT)

import concert  # noqa: E402

project = "Concert"
author = "The Concert developers"
copyright = "The Concert developers"
version = concert.__version__
release = concert.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
]

exclude_patterns = ["_build"]
language = "en"

# -- autodoc ---------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
# Show only what Concert itself documents (not, e.g., nose's Plugin docstrings).
autodoc_inherit_docstrings = False

# -- doctest ---------------------------------------------------------------------
# Every example runs with asynchronous execution on, whatever the environment
# says, and ends with it on again, so that one page cannot change the next.
# Progress bars stay off: they would draw on standard error during the build.
doctest_global_setup = """
from concert import config as _doc_config
_doc_config.DISABLE_ASYNC = False
_doc_config.PROGRESS_BAR = False
"""
doctest_global_cleanup = """
_doc_config.DISABLE_ASYNC = False
_doc_config.PROGRESS_BAR = False
"""

# -- HTML --------------------------------------------------------------------------
html_theme = "alabaster"
html_title = f"Concert {release}"
html_theme_options = {
    "description": "Drive laboratory and beamline hardware from Python",
    "fixed_sidebar": True,
}
