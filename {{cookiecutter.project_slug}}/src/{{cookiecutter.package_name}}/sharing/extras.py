"""Optional packages: the ``[export]`` and ``[demo]`` extras, or the pip line that installs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from {{ cookiecutter.package_name }}.errors import UserError


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or say in one line which pip command installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        # Quoted: zsh (macOS's shell) reads brackets in an unquoted word as a file pattern and refuses the line.
        raise UserError(f'this needs the optional package {module}: pip install -e ".[{extra}]"') from None
