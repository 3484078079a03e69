"""Remove the files of options that were not chosen, and nothing else."""

from pathlib import Path

INCLUDE_DEMO = {{ cookiecutter.include_demo | tojson }}
LICENSE = {{ cookiecutter.license | tojson }}
PACKAGE_NAME = {{ cookiecutter.package_name | tojson }}


def files_to_remove(include_demo: str, license_name: str, package: str) -> list[Path]:
    """The paths, relative to the project root, that belong to options not chosen."""
    remove = []
    if include_demo != "yes":
        remove += [Path("src", package, "sharing", "demo.py"), Path("tests", "sharing", "test_demo.py")]
    if license_name == "none":
        remove.append(Path("LICENSE"))
    return remove


if __name__ == "__main__":
    for path in files_to_remove(INCLUDE_DEMO, LICENSE, PACKAGE_NAME):
        if path.exists():
            path.unlink()
