"""Validate the answers before anything is written.

Cookiecutter renders this file with Jinja, then runs it. The answers are inserted with
``| tojson`` so that they are Python string literals: a project name containing quotes,
backslashes or code is read as data, never executed.
"""

import keyword
import re
import sys

PROJECT_SLUG = {{ cookiecutter.project_slug | tojson }}
PACKAGE_NAME = {{ cookiecutter.package_name | tojson }}
IMAGE_SIZE = {{ cookiecutter.image_size | tojson }}

# Import names that would shadow a library the generated project depends on.
TAKEN_NAMES = {
    "torch", "torchvision", "timm", "lightning", "pytorch_lightning", "torchmetrics",
    "tensorboard", "numpy", "PIL", "yaml", "rich", "gradio", "onnx", "onnxruntime",
    "huggingface_hub", "safetensors", "matplotlib", "sklearn", "test", "tests", "src",
}


def problem(slug: str, package: str, image_size: str) -> str | None:
    """Return a one-line description of what is wrong with the answers, or None."""
    if not re.fullmatch(r"[a-z][a-z0-9]*(-[a-z0-9]+)*", slug):
        return (
            f"project_slug {slug!r} must start with a letter and use only lowercase letters, "
            "digits and single dashes, e.g. 'pet-classifier'."
        )
    if not package.isidentifier() or not package.isascii():
        return (
            f"package_name {package!r} is not a valid Python import name: use letters, digits "
            "and underscores, starting with a letter, e.g. 'pet_classifier'."
        )
    if keyword.iskeyword(package):
        return f"package_name {package!r} is a Python keyword; choose another name."
    if package in TAKEN_NAMES or package in sys.stdlib_module_names:
        return f"package_name {package!r} would shadow the library of the same name; choose another name."
    if not image_size.isdigit() or not 32 <= int(image_size) <= 1024:
        return f"image_size {image_size!r} must be a whole number of pixels between 32 and 1024, e.g. 224."
    return None


if __name__ == "__main__":
    message = problem(PROJECT_SLUG, PACKAGE_NAME, IMAGE_SIZE)
    if message:
        print(f"ERROR: {message}", file=sys.stderr)
        sys.exit(1)
