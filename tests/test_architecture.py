"""The import direction of the layers (README, Architecture): ``core`` at the bottom, the sandbox importing
nothing of ours and imported only by the demo and the tests. Read from the source with ``ast``, so a new
import that breaks the picture fails here, not in a review."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

OURS = {"core", "security", "connectors", "planner", "flight_server", "clients", "sandbox", "demo", "perf"}
ALLOWED = {
    "core": set(),
    "security": {"core"},
    "connectors": {"core"},
    "planner": {"core", "connectors", "security"},
    "flight_server": {"core", "connectors", "planner", "security"},
    "clients": {"core", "flight_server", "demo"},
    "sandbox": set(),
    "demo": {"core", "connectors", "flight_server", "security", "sandbox"},
    "perf": {"core", "flight_server", "planner", "security", "demo"},
}


def imports_of(package: str) -> dict[str, set[str]]:
    """Our top-level packages each module of ``package`` imports (lazy imports inside functions included)."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        if "proto" in path.parts:
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = (names & OURS) - {package}
    return found


def test_every_layer_imports_only_what_is_below_it() -> None:
    violations = {module: sorted(used - ALLOWED[package])
                  for package in ALLOWED for module, used in imports_of(package).items() if used - ALLOWED[package]}
    assert violations == {}


def test_the_sandbox_is_imported_only_by_the_demo_and_the_tests() -> None:
    importers = {module for package in ALLOWED if package not in ("demo", "sandbox")
                 for module, used in imports_of(package).items() if "sandbox" in used}
    assert importers == set()


def test_the_product_wheel_leaves_out_the_sandbox_and_the_demo() -> None:
    text = Path(ROOT / "pyproject.toml").read_text()
    include = next(line for line in text.splitlines() if line.startswith("include = "))
    assert "sandbox" not in include.split("#")[0] and "demo" not in include.split("#")[0]
    assert "COPY sandbox" not in (ROOT / "Dockerfile").read_text()
