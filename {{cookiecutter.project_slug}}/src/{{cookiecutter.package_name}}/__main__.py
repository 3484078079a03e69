"""Lets ``python -m {{ cookiecutter.package_name }} ...`` work like the ``{{ cookiecutter.project_slug }}`` command."""

from {{ cookiecutter.package_name }}.cli import main

if __name__ == "__main__":
    main()
