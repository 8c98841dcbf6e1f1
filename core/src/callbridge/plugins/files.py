"""Plugins given as paths of single ``.py`` files (``CALLBRIDGE_PLUGINS=/path/to/plugin.py``).

A quick custom plugin needs no package: the file is imported under a name that cannot
collide with a real module (two files called ``plugin.py`` in different folders included).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path


def file_module_name(path: Path) -> str:
    """A module name for a .py file that cannot collide with a real module."""
    stem = re.sub(r"\W", "_", path.stem) or "plugin"
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return f"_callbridge_file_plugin_{stem}_{digest}"


def load_file(path: Path) -> object:
    """Import the file at ``path`` as a module (FileNotFoundError, ImportError...)."""
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    module_name = file_module_name(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    return module
