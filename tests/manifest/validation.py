"""Offline validation of rendered manifests against the real upstream schemas.

Knative and Istio objects are checked against the CRDs in ../shared/schemas, made strict
as the schemas README says (and stricter: a node that declares its properties is closed
even where the CRD keeps unknown fields, with the one experimental field we use allowed
by name). Core kinds are checked by kubernetes-validate in strict mode, and every
object's metadata as an ObjectMeta.
"""

from __future__ import annotations

import copy
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

from tests.conftest import SHARED

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = SHARED / "schemas"
KUBERNETES_VERSION = "1.31.0"

# Fields the CRDs leave open that Quill uses on purpose: Knative's delivery timeout (the
# `delivery-timeout` feature, on by default) on a Broker or Trigger.
ALLOWED_EXTRA = {("delivery", "timeout")}

# Kinds whose CRDs are not in ../shared/schemas: checked by hand in the tests instead.
UNSCHEMED = {
    ("monitoring.coreos.com", "PodMonitor"),
    ("monitoring.coreos.com", "PrometheusRule"),
    ("postgresql.cnpg.io", "Cluster"),
    ("argoproj.io", "Application"),
}


class _NoTimestamps(yaml.SafeLoader):
    """YAML as kubectl reads it: an unquoted timestamp stays a string."""


_NoTimestamps.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_all(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.load_all(text, Loader=_NoTimestamps) if doc]


def render(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return load_all(result.stdout)


@cache
def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(SCHEMAS.glob("*/*.yaml")):
        for doc in load_all(path.read_text()):
            if doc.get("kind") == "CustomResourceDefinition":
                found[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = doc
    return found


# A Go (RE2) pattern may set inline flags after its anchor (``^(?i)(abort|warn)?$`` in the
# PrometheusRule CRD); Python only takes them at the very start, where they mean the same.
_LATE_FLAGS = re.compile(r"^\^\((\?[a-zA-Z]+)\)")


def _strict(node: Any, parent_key: str = "", open_parent: bool = False) -> Any:
    if isinstance(node, list):
        return [_strict(item, parent_key) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if isinstance(node.get("pattern"), str):
        node["pattern"] = _LATE_FLAGS.sub(r"(\1)^", node["pattern"])
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        del node["nullable"]
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    properties = node.get("properties")
    if isinstance(properties, dict):
        node["properties"] = {key: _strict(value, key, preserve) for key, value in properties.items()}
        if "additionalProperties" not in node:
            allowed = {extra for owner, extra in ALLOWED_EXTRA if owner == parent_key}
            if allowed:
                node["properties"].update({name: {} for name in allowed})
            node["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _strict(node[key], parent_key)
    for key in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(key), list):
            node[key] = [_strict(item, parent_key) for item in node[key]]
    return node


@cache
def _schema(group: str, kind: str, version: str) -> dict[str, Any]:
    crd = _crds()[(group, kind)]
    served = {v["name"]: v for v in crd["spec"]["versions"] if v.get("served")}
    assert version in served, f"{group}/{kind} does not serve {version}"
    schema = copy.deepcopy(served[version]["schema"]["openAPIV3Schema"])
    strict: dict[str, Any] = _strict(schema)
    strict["properties"].update({"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {}})
    return strict


def _check_metadata(obj: dict[str, Any]) -> None:
    carrier = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata", {})}
    kubernetes_validate.validate(carrier, KUBERNETES_VERSION, strict=True)


def validate(obj: dict[str, Any]) -> str:
    """Validate one object; return how ("crd", "core" or "unschemed")."""
    group, _, version = obj["apiVersion"].rpartition("/")
    kind = obj["kind"]
    _check_metadata(obj)
    if (group, kind) in _crds():
        jsonschema.validate(obj, _schema(group, kind, version))
        return "crd"
    if (group, kind) in UNSCHEMED:
        return "unschemed"
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    return "core"
