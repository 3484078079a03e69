"""The package's imports point one way: the recipe on top imports the subpackages, never the reverse,
and nothing imports itself round in a circle. Importing a module changes no process-wide setting.

The imports are read from the source with ``ast`` (those inside functions too), so a circle cannot
hide behind an import that only runs later.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from .conftest import package_layout

PACKAGE = Path(__file__).parents[1] / "src" / "{{ cookiecutter.package_name }}"
NAME = PACKAGE.name
# Each subpackage may import only those before it.
SUBPACKAGES = ("dataset", "training", "run_folder", "reporting", "sharing", "review")
# The recipe and the command line: what the README's layout lists at the top level, but the subpackages.
RECIPE = {entry.removesuffix("/").removesuffix(".py") for entry in package_layout() if "/" not in entry.rstrip("/")}
RECIPE = RECIPE - set(SUBPACKAGES) - {"errors"} | {"__main__"}
# Files that export copies into a bundle: they run there without the package, so they import none of it.
STANDALONE = {"sharing.bundle_predict", "sharing.space_app"}


def module_names() -> dict[str, Path]:
    """'train' -> src/pkg/train.py, 'dataset.folders' -> src/pkg/dataset/folders.py, ..."""
    names = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports, wherever in the file the import statement is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # "from pkg.training import processes" imports the module pkg.training.processes
            targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if target == NAME or target.startswith(NAME + "."):
                inner = target.removeprefix(NAME).removeprefix(".")
                if inner in known and inner != name:
                    found.add(inner)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = module_names()
    return {name: imports_of(name, path, set(modules)) for name, path in modules.items()}


def test_the_imports_are_read_correctly() -> None:
    """The walk finds what train.py and the check-data module import (else the tests below prove nothing)."""
    graph = import_graph()
    assert {"config", "model", "model.network", "dataset.folders"} <= graph["train"]
    assert {"dataset.folders", "dataset.parallel", "dataset.problems"} <= graph["dataset.check_data"]
    assert graph["cli.commands"] >= {"config", "train", "predict"}  # imports inside functions count
    assert "sharing.export" in graph["cli.commands"]


def test_there_is_no_import_circle() -> None:
    """Following imports from any module never leads back to it."""
    graph = import_graph()
    finished: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(name):] + [name]))
        if name not in finished:
            for other in sorted(graph[name]):
                visit(other, path + [name])
            finished.add(name)

    for name in graph:
        visit(name, [])


def layer(name: str) -> int:
    """0: errors.py (imports nothing); 1 to 6: the subpackages in order; 7: the recipe and the command line."""
    top = name.split(".")[0]
    if top == "errors" or name == "":
        return 0
    if top in SUBPACKAGES:
        return 1 + SUBPACKAGES.index(top)
    assert top in RECIPE, f"{name}.py sits at the top level but is not part of the recipe"
    return 1 + len(SUBPACKAGES)


def test_imports_point_from_the_recipe_down_to_the_subpackages() -> None:
    """A subpackage never imports the recipe (config.py, model/, train.py, ...) nor a later subpackage:
    dataset <- training <- run_folder <- reporting <- sharing <- review <- the recipe. errors.py, which
    imports nothing, may be used anywhere."""
    wrong = [f"{name} imports {other}" for name, others in import_graph().items() for other in others
             if layer(other) > layer(name)]
    assert not wrong, wrong
    assert not import_graph()["errors"]


def reachable(graph: dict[str, set[str]], name: str) -> set[str]:
    """Every module that importing ``name`` imports, directly or through others."""
    seen, todo = set(), [name]
    while todo:
        for other in graph[todo.pop()] - seen:
            seen.add(other)
            todo.append(other)
    return seen


def test_the_model_imports_nothing_from_the_machinery() -> None:
    """model/ (the network and how it learns) stands on its own: it imports no subpackage and no part of
    the command line, and nothing it imports leads to training/, sharing/ or cli/ either. Only
    errors.py and data.py (the augmentation and normalisation it runs on the device) are used."""
    graph = import_graph()
    model = [name for name in graph if name == "model" or name.startswith("model.")]
    direct = {other for name in model for other in graph[name]}
    assert direct - set(model) <= {"errors", "data"}, direct
    through = {other for name in model for other in reachable(graph, name)}
    assert not [other for other in through if other.split(".")[0] in ("training", "sharing", "cli", "train")]


def test_bundle_files_import_nothing_of_the_package() -> None:
    for name in STANDALONE:
        assert not import_graph()[name], name


def libraries_imported_on_import() -> list[str]:
    """The other packages the package's modules import at their top (torch, lightning, PIL, ...)."""
    found = set()
    for name, path in module_names().items():
        if name in STANDALONE:
            continue
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return sorted(lib for lib in found if lib.split(".")[0] not in (NAME, "__future__"))


def test_importing_the_package_changes_no_process_wide_setting() -> None:
    """Importing every module leaves warning filters, log levels, environment variables and the Hub's
    offline switch as they were: tests, benchmarks and notebooks that import the project keep theirs.

    The libraries the package uses are imported first, so what they do themselves is not counted."""
    modules = [f"{NAME}.{name}" if name else NAME for name in module_names() if name not in STANDALONE]
    code = """
import importlib, json, logging, os, warnings
import huggingface_hub.constants as hub
for name in LIBRARIES:
    importlib.import_module(name)

def state():
    levels = {n: l.level for n, l in logging.root.manager.loggerDict.items() if isinstance(l, logging.Logger)}
    return [str(warnings.filters), str(sorted(os.environ.items())), str(hub.HF_HUB_OFFLINE), levels]

before = state()
for name in MODULES:
    importlib.import_module(name)
after = state()
after[3] = {n: level for n, level in after[3].items() if n in before[3]}  # loggers created on import are new
print(json.dumps([str(b) == str(a) for b, a in zip(before, after)]))
""".replace("LIBRARIES", repr(libraries_imported_on_import())).replace("MODULES", repr(modules))
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    same = json.loads(done.stdout.strip().splitlines()[-1])
    assert all(same), dict(zip(["warnings", "environment", "HF_HUB_OFFLINE", "log levels"], same, strict=True))


def test_check_data_and_the_command_line_start_without_pytorch() -> None:
    """``check-data`` and ``--help`` answer at once: neither imports torch (seconds on a laptop)."""
    code = ("import sys, {{ cookiecutter.package_name }}.cli, {{ cookiecutter.package_name }}.dataset.check_data; "
            "print('torch' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


# Import names that differ from the names pip installs them by.
DISTRIBUTIONS = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn"}


def declared_packages() -> set[str]:
    """Every package pyproject.toml declares, in the main list or an extra, by its normalised name."""
    text = (PACKAGE.parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("\ndependencies = [", 1)[1].split("\n[project.scripts]", 1)[0]
    names = re.findall(r'"([A-Za-z0-9][\w.-]*)\s*(?:\[[^\]]*\])?\s*[<>=!~;"]', section)
    return {re.sub(r"[-_.]+", "-", name).lower() for name in names}


def test_every_package_the_code_imports_is_declared() -> None:
    """A package imported anywhere in the code (inside functions too, and through ``require``) is declared in
    pyproject.toml, so `pip install -e ".[all]"` brings it and the floors CI run tests its lowest version."""
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        if path.name in ("serving.py", "space_app.py") and not (PACKAGE / "sharing" / "demo.py").exists():
            continue  # without the demo they only run in an exported Space, whose requirements.txt has gradio
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Call) and getattr(node.func, "id", "") == "require" and node.args:
                imported.add(ast.literal_eval(node.args[0]).split(".")[0])  # require("onnx", "export")
    # The bundle's own files import each other by plain name (space_app.py: `import serving`).
    own = {path.stem for path in PACKAGE.rglob("*.py")}
    libraries = imported - set(sys.stdlib_module_names) - own - {NAME, "__future__"}
    assert {"torch", "PIL", "onnx", "huggingface_hub"} <= libraries  # the walk sees imports of every kind
    undeclared = {lib for lib in libraries
                  if re.sub(r"[-_.]+", "-", DISTRIBUTIONS.get(lib, lib)).lower() not in declared_packages()}
    assert not undeclared, f"imported but not declared in pyproject.toml: {sorted(undeclared)}"
