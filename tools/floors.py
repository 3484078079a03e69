"""Print a pip constraints file that pins every direct dependency of a project to its declared floor.

    python tools/floors.py build/deps/pet-classifier/pyproject.toml --keep torch torchvision > floors.txt
    pip install -c floors.txt -e "build/deps/pet-classifier[all,dev]"

`make test-floors` runs it on a freshly baked project, so the floors tested are the ones the generated
pyproject.toml declares, never a copy that drifts. Every direct dependency (the main list and every extra)
must have a `>=` floor, and one floor only: a package declared twice with different floors would leave the
lower one untested. `--keep NAME...` pins those to the version installed here instead of their floor
(torch and torchvision: the one pair this machine serves, several gigabytes each).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import re
import sys
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10: the template's dev extra installs tomli
    import tomli as tomllib

# name, optional [extras], the version specifiers, an optional "; marker"
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*([^;]*?)\s*(;.*)?$")
FLOOR = re.compile(r">=\s*([0-9][^,\s]*)")


def canonical(name: str) -> str:
    """PEP 503's normal form: `PyYAML`, `pyyaml` and `py_yaml` are one package."""
    return re.sub(r"[-_.]+", "-", name).lower()


def floors(pyproject: Path) -> dict[str, tuple[str, str]]:
    """{canonical name: (floor version, marker)} for every direct dependency, the extras' included."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    own = canonical(project["name"])
    lines = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        lines += extra
    found: dict[str, tuple[str, str]] = {}
    for line in lines:
        match = REQUIREMENT.match(line)
        if match is None:
            sys.exit(f"floors.py: cannot read the requirement {line!r} in {pyproject}")
        name, _, specifiers, marker = match.groups()
        if canonical(name) == own:  # `all = ["pet-classifier[export,demo]"]`: the project itself
            continue
        floor = FLOOR.search(specifiers)
        if floor is None:
            sys.exit(f"floors.py: {name} in {pyproject} has no '>=' floor; declare the lowest version that works.")
        earlier = found.get(canonical(name))
        if earlier is not None and earlier[0] != floor.group(1):
            sys.exit(f"floors.py: {name} is declared with two floors ({earlier[0]} and {floor.group(1)}) in "
                     f"{pyproject}; give it one.")
        found[canonical(name)] = (floor.group(1), (marker or "").strip())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pyproject", type=Path)
    parser.add_argument("--keep", nargs="*", default=[], metavar="NAME",
                        help="pin these to the version installed here instead of their floor")
    args = parser.parse_args()
    pins = floors(args.pyproject)
    for name in args.keep:
        version = importlib.metadata.version(name).split("+")[0]  # 2.14.1+cpu -> 2.14.1 (matches any local build)
        pins[canonical(name)] = (version, "")
    for name, (version, marker) in sorted(pins.items()):
        print(f"{name}=={version} {marker}".rstrip())


if __name__ == "__main__":
    main()
