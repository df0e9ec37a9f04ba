"""Quill's OpenAPI document: the RealWorld routes unchanged, every served route documented,
and the limits it states are exactly the ones the code enforces."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from quill.domain import fields
from quill.routing import load_module
from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
OURS: dict[str, Any] = yaml.safe_load((ROOT / "docs" / "openapi.yml").read_text())
UPSTREAM: dict[str, Any] = yaml.safe_load((SHARED / "api" / "openapi.yml").read_text())
METHODS = {"get", "post", "put", "delete"}


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    found = set()
    for path, item in document["paths"].items():
        prefix = "" if "servers" in item else "/api"
        for method in item.keys() & METHODS:
            found.add((method.upper(), prefix + re.sub(r"\{[^}]+\}", "{}", path)))
    return found


def _served() -> set[tuple[str, str]]:
    served = set()
    for name in ("login", "profile", "posts"):
        for endpoint in load_module(name).FUNCTION.endpoints:
            served.add((endpoint.method, re.sub(r"\{[^}]+\}", "{}", endpoint.path)))
    return served


def test_every_realworld_operation_is_kept() -> None:
    assert _operations(UPSTREAM) <= _operations(OURS)
    for path, item in UPSTREAM["paths"].items():
        for method in item.keys() & METHODS:
            assert OURS["paths"][path][method]["operationId"] == item[method]["operationId"]
            assert set(item[method]["responses"]) <= set(OURS["paths"][path][method]["responses"])


def test_every_served_route_is_documented_and_every_documented_route_is_served() -> None:
    assert _operations(OURS) == _served()


def _patterns(node: Any) -> set[str]:
    if isinstance(node, dict):
        own = {node["pattern"]} if "pattern" in node else set()
        return own.union(*(_patterns(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_patterns(value) for value in node))
    return set()


def test_documented_patterns_are_the_ones_the_code_enforces() -> None:
    assert _patterns(OURS) == {fields.NO_NUL, fields.TEXT, fields.TAG, fields.USERNAME, fields.EMAIL}
    schemas = OURS["components"]["schemas"]
    assert schemas["NewUser"]["properties"]["username"]["pattern"] == fields.USERNAME
    assert schemas["NewUser"]["properties"]["email"]["pattern"] == fields.EMAIL
    assert schemas["NewArticle"]["properties"]["tagList"]["items"]["pattern"] == fields.TAG


def test_every_published_pattern_reads_the_same_in_javascript() -> None:
    """OpenAPI patterns are ECMA-262 regular expressions: a Python-only escape such as
    ``\\U0001d173`` compiles there into something else, or not at all."""
    node = shutil.which("node")
    assert node is not None, "node is needed to check the patterns as JavaScript reads them"
    samples = ["alice", "bob_2", "Ünïcödé", "a b", "a/b", "x\u200b", "tag", "dragons", "a@b.co", ""]
    script = (
        "const [patterns, samples] = JSON.parse(process.argv[1]);"
        "console.log(JSON.stringify(patterns.map(p => samples.map(s => new RegExp(p, 'u').test(s)))));"
    )
    patterns = sorted(_patterns(OURS))
    done = subprocess.run(
        [node, "-e", script, json.dumps([patterns, samples])], capture_output=True, text=True, check=True, timeout=30
    )
    in_javascript = json.loads(done.stdout)
    in_python = [[re.search(pattern, sample) is not None for sample in samples] for pattern in patterns]
    assert in_javascript == in_python
