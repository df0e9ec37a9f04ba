"""The image holds the runtime package and the function entries, not ``quill_tools``: nothing
they import may come from the tooling (the reverse is fine)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from quill.routing import FUNCTIONS_DIR

RUNTIME = FUNCTIONS_DIR / "quill"
ENTRIES = sorted(path.parent.name for path in FUNCTIONS_DIR.glob("*/main.py") if path.parent.name != "quill_tools")


def _tooling_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        where = f"{path.relative_to(FUNCTIONS_DIR)}:{node.lineno}"
        found += [f"{where} {name}" for name in names if name.split(".")[0] == "quill_tools"]
    return found


def test_the_runtime_source_never_imports_the_tooling() -> None:
    sources = [*RUNTIME.rglob("*.py"), *(FUNCTIONS_DIR / name / "main.py" for name in ENTRIES)]
    assert len(sources) > 40
    assert [found for path in sources for found in _tooling_imports(path)] == []


def test_the_entry_points_and_every_function_load_without_the_tooling() -> None:
    """What ``quill serve`` and functions-framework load, in a fresh interpreter: the static
    check above misses an import built at run time (importlib, a plugin table)."""
    code = f"""
import json, sys
import quill.cli, quill.serving
from quill.routing import load_module
for name in {ENTRIES!r}:
    load_module(name)
print(json.dumps(sorted(name for name in sys.modules if name.split(".")[0] == "quill_tools")))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(done.stdout.splitlines()[-1]) == []
    assert len(ENTRIES) == 9
