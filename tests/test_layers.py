"""Imports follow the data flow: each package imports only the packages before it in `LAYERS`.

``foundation`` (domain, configuration, specs, MQTT helpers) imports none of the others; the
composition root ``liaowang`` (CLI, wiring, HTTP API, roles) may import all of them. A module that
imported "upwards" would make the shared base depend on the wiring, the knot issue 15 undid.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["foundation", "simulators", "ingest", "rules", "alerting", "earlywarning", "liaowang"]
# Which earlier layers each layer may use; a stage never imports a sibling stage it does not feed from.
ALLOWED = {
    "foundation": set(),
    "simulators": {"foundation"},
    "ingest": {"foundation"},
    "rules": {"foundation"},
    "alerting": {"foundation", "rules"},
    "earlywarning": {"foundation", "alerting"},
    "liaowang": set(LAYERS) - {"liaowang"},
}


def imported_packages(path: Path) -> set[str]:
    """The top-level packages of this project that one module imports (absolute imports only)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names & set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_what_it_may(layer: str) -> None:
    wrong = {
        str(path.relative_to(ROOT)): sorted(imported_packages(path) - ALLOWED[layer] - {layer})
        for path in sorted((ROOT / layer).rglob("*.py"))
    }
    assert {module: bad for module, bad in wrong.items() if bad} == {}


def test_the_check_sees_an_upward_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from liaowang.cli import main\nimport rules.engine\nfrom . import sibling\n", encoding="utf-8")
    assert imported_packages(module) == {"liaowang", "rules"}
