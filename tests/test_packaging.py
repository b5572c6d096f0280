"""The running code needs only the project's dependencies: `scripts/demo` installs them without the dev group
(`uv sync --no-dev`), so a module of the product that imports a test-only package fails there (as `manage.py
simulate` did with httpx)."""

import ast
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ["apps", "project", "consumers", "device_gateway", "smtp_ingress", "asgi.py", "manage.py"]
LOCAL = {"apps", "project", "consumers", "device_gateway", "smtp_ingress", "asgi"}


def runtime_distributions() -> set[str]:
    """The project's dependencies and, installed, everything they require on this Python (extras included)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(line) for line in project["dependencies"]]
    seen: set[tuple[str, str]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        for extra in {""} | requirement.extras:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for line in metadata.requires(name) or []:
                needed = Requirement(line)
                if needed.marker is None or needed.marker.evaluate({"extra": extra}):
                    todo.append(needed)
    return {name for name, _ in seen}


def imported_top_level_modules() -> dict[str, str]:
    """Third-party top-level modules the product imports, each with one file that does."""
    found: dict[str, str] = {}
    for entry in PRODUCT:
        path = ROOT / entry
        for source in [path] if path.is_file() else path.rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(), str(source))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in LOCAL:
                        found.setdefault(top, str(source.relative_to(ROOT)))
    return found


def test_every_package_the_product_imports_is_a_runtime_dependency():
    runtime = runtime_distributions()
    providers = metadata.packages_distributions()
    missing = {
        module: where
        for module, where in imported_top_level_modules().items()
        if not any(canonicalize_name(dist) in runtime for dist in providers.get(module, [module]))
    }
    assert not missing, f"imported by the product but only a dev dependency (or none): {missing}"
