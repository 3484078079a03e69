"""A Jinja filter for the template: answers typed by the user become string literals, never code.

cookiecutter loads this file through ``_extensions`` in cookiecutter.json (its "local extensions").
``{{ cookiecutter.description | quoted }}`` renders a double-quoted string that Python, TOML and
JSON all read back as exactly the text typed: quotes, backslashes (C:\\Users\\me), three quotes in a
row, new lines and emoji included. (Jinja's own ``tojson`` escapes emoji as UTF-16 pairs, which
TOML refuses, and writes é as \\u00e9, which a beginner then reads in their code.)
"""

from __future__ import annotations

import json

from cookiecutter.utils import simple_filter


@simple_filter
def quoted(value: object) -> str:
    """``value`` as a double-quoted string literal for Python, TOML and JSON."""
    # JSON escapes quotes, backslashes and control characters; TOML also wants DEL escaped.
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")
