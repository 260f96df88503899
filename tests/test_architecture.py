"""Data flows one way: config → model → layout → cost / compiled step → benchmark rows → report.

Between packages: `zoo` imports none of the others; `layouts` and `checkpoints` never import `cli`.
Inside `layouts`: the core (its top-level modules) imports none of `cost`, `compiled` or `bench`;
`cost` (the analytical model) never imports `compiled` (jax-heavy programs) or `bench`; `compiled`
imports neither `cost` nor `bench`; everything may import the core."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Importer (a package or subpackage, by module prefix) -> module prefixes it must not import.
FORBIDDEN = {
    "zoo": ("layouts", "checkpoints", "cli"),
    "checkpoints": ("cli",),
    "layouts": ("cli", "checkpoints"),
    "layouts.core": ("layouts.cost", "layouts.compiled", "layouts.bench"),
    "layouts.cost": ("layouts.compiled", "layouts.bench"),
    "layouts.compiled": ("layouts.bench", "layouts.cost"),
}
LAYOUT_PARTS = ("cost", "compiled", "bench")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def files_of(importer: str) -> list[Path]:
    if importer == "layouts.core":
        return sorted((ROOT / "layouts").glob("*.py"))
    return sorted((ROOT / importer.replace(".", "/")).rglob("*.py"))


def _matches(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@pytest.mark.parametrize("importer", sorted(FORBIDDEN))
def test_imports_flow_one_way(importer):
    files = files_of(importer)
    assert files, importer
    for path in files:
        wrong = sorted(module for module in imported_modules(path) if any(_matches(module, prefix) for prefix in FORBIDDEN[importer]))
        assert not wrong, f"{path.relative_to(ROOT)} imports {wrong}"


def test_the_layout_parts_are_the_subpackages():
    assert sorted(path.name for path in (ROOT / "layouts").iterdir() if (path / "__init__.py").exists()) == sorted(LAYOUT_PARTS)


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from layouts.bench.cell import Cell\nimport layouts.compiled.aot\n")
    found = imported_modules(module)
    assert any(_matches(name, "layouts.bench") for name in found) and any(_matches(name, "layouts.compiled") for name in found)
