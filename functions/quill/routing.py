"""The public routing table, read from the Istio VirtualService in ``knative/routing.yaml``.

Production routes a path prefix to a function's cluster-local host; the ``bundle``
target and ``quill dev`` read the same file and call the same function in-process,
so local routing cannot drift from the cluster's.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "FUNCTIONS_DIR",
    "ROOT",
    "ROUTING_FILE",
    "Rule",
    "Target",
    "load_function",
    "load_module",
    "load_rules",
    "resolve",
]

# The files read beside the code (functions/<name>/main.py, knative/routing.yaml, eventing/)
# are the checkout's, as an editable install and the image (which keeps its layout under
# /app) have them; a wheel has no checkout, so setup.py ships a copy as quill/_tree.
_SHIPPED = Path(__file__).resolve().parent / "_tree"
ROOT = _SHIPPED if _SHIPPED.is_dir() else _SHIPPED.parents[2]
FUNCTIONS_DIR = ROOT / "functions"
ROUTING_FILE = ROOT / "knative" / "routing.yaml"

Target = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True)
class Rule:
    """One gateway rule: which function serves a path (exactly, or everything under a prefix)."""

    function: str
    kind: Literal["exact", "prefix"]
    value: str

    def matches(self, path: str) -> bool:
        return path == self.value if self.kind == "exact" else path.startswith(self.value)


def _function_of(route: dict[str, Any]) -> str:
    """``login.quill.svc.cluster.local`` -> ``login``."""
    authority = route.get("rewrite", {}).get("authority", "")
    if not authority:
        raise ValueError(f"route {route.get('name')!r} has no rewrite.authority naming its function")
    return str(authority).split(".", 1)[0]


@cache
def load_rules(path: Path = ROUTING_FILE) -> list[Rule]:
    """The rules of a VirtualService file, read once per process (callers must not change them)."""
    import yaml  # only the bundle routes by the table: one function alone never pays for yaml

    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if document.get("kind") != "VirtualService":
        raise ValueError(f"{path} is not an Istio VirtualService")
    rules: list[Rule] = []
    for route in document["spec"]["http"]:
        function = _function_of(route)
        for match in route.get("match", []):
            uri = match.get("uri", {})
            if len(match) != 1 or len(uri) != 1 or not ({"exact", "prefix"} & uri.keys()):
                raise ValueError(f"route {route.get('name')!r}: only one uri exact/prefix per match is supported")
            if "exact" in uri:
                rules.append(Rule(function, "exact", str(uri["exact"])))
            else:
                rules.append(Rule(function, "prefix", str(uri["prefix"])))
    return rules


def resolve(rules: list[Rule], path: str) -> str | None:
    """The function the first matching rule names, as Istio picks it."""
    for rule in rules:
        if rule.matches(path):
            return rule.function
    return None


@cache
def load_module(name: str) -> ModuleType:
    """Load ``functions/<name>/main.py`` the way functions-framework does, under a unique name."""
    source = FUNCTIONS_DIR / name / "main.py"
    module_name = f"quill_function_{name}"
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None or not source.is_file():
        raise LookupError(f"no function source at {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_function(name: str) -> Target:
    """The http target ``name`` defined in ``functions/<name>/main.py``."""
    target: Target = getattr(load_module(name), name)
    return target
