"""Sphinx configuration of the interactvlm_ros documentation: Markdown pages (MyST), the
Python API from its docstrings (autodoc, Google style), built offline.

    make docs        # regenerates docs/reference/, then builds docs/_build/html (-W: warnings fail)

The same sources build with rosdoc2 (Sphinx + MyST), as docs.ros.org does.
"""

import sys
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
# autodoc documents this checkout's library, not another install of it.
sys.path.insert(0, str(REPOSITORY / "interactvlm_ros"))

project = "interactvlm_ros"
author = "interactvlm_ros contributors"
copyright = "interactvlm_ros contributors"

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.napoleon"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build"]
root_doc = "index"

# Links to headings ([text](page.md#a-heading)) are checked like any cross-reference.
myst_heading_anchors = 4
myst_enable_extensions = ["colon_fence"]

napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" as a field list of the class (autodoc documents the dataclass fields themselves)
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}

html_theme = "furo"
html_title = "interactvlm_ros"
html_static_path = []
