"""pygal, without the import hook it leaves behind.

pygal appends an old-style `sys.meta_path` hook (for its optional map plugins, unused here)
that Python 3.11 warns about on every later import of a module it does not know; it is taken
out again as soon as pygal is loaded.
"""

from __future__ import annotations

import sys

import pygal

sys.meta_path[:] = [f for f in sys.meta_path if type(f).__name__ != "PluginImportFixer"]

__all__ = ["pygal"]
