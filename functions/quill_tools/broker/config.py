"""Reading ``eventing/base/*.yaml``: the Broker's delivery spec and every Trigger.

Only what the local broker needs is read, and anything it cannot honour (a CESQL
filter, a subscriber given as a URI to another cluster) is an error at start, so a
local run never silently differs from the cluster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from quill.routing import FUNCTIONS_DIR

__all__ = ["EVENTING_DIR", "BrokerConfig", "Delivery", "TriggerConfig", "load", "parse_duration"]

EVENTING_DIR = FUNCTIONS_DIR.parent / "eventing" / "base"

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def parse_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as ``PT0.5S`` or ``PT1M30S`` (no years or months)."""
    found = _DURATION.match(text)
    if found is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    parts: dict[str, float] = {name: float(value) for name, value in found.groupdict().items() if value}
    seconds = parts.get("seconds", 0.0)
    return parts.get("days", 0.0) * 86400 + parts.get("hours", 0.0) * 3600 + parts.get("minutes", 0.0) * 60 + seconds


@dataclass(frozen=True)
class Delivery:
    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay: float = 0.0
    timeout: float = 10.0
    dead_letter_service: str | None = None

    def backoff(self, retries_so_far: int) -> float:
        """Seconds before retry number ``retries_so_far + 1``, as Knative computes it."""
        if self.backoff_policy == "linear":
            return self.backoff_delay * (retries_so_far + 1)
        return self.backoff_delay * float(2 ** (retries_so_far + 1))


@dataclass(frozen=True)
class TriggerConfig:
    name: str
    subscriber: str  # a Knative Service name
    filter_attributes: dict[str, str] = field(default_factory=dict)
    filters: list[dict[str, Any]] = field(default_factory=list)
    delivery: Delivery | None = None  # None: the Broker's


@dataclass(frozen=True)
class BrokerConfig:
    namespace: str
    name: str
    delivery: Delivery
    triggers: list[TriggerConfig]


def _service(ref_holder: dict[str, Any], where: str) -> str:
    ref = ref_holder.get("ref")
    if not ref or ref.get("kind") != "Service" or ref.get("apiVersion") != "serving.knative.dev/v1":
        raise ValueError(f"{where}: only a ref to a Knative Service (serving.knative.dev/v1) can run locally")
    return str(ref["name"])


def _delivery(spec: dict[str, Any] | None, base: Delivery, where: str) -> Delivery:
    if not spec:
        return base
    changes: dict[str, Any] = {}
    if "retry" in spec:
        changes["retry"] = int(spec["retry"])
    if "backoffPolicy" in spec:
        if spec["backoffPolicy"] not in ("linear", "exponential"):
            raise ValueError(f"{where}: backoffPolicy must be linear or exponential")
        changes["backoff_policy"] = spec["backoffPolicy"]
    if "backoffDelay" in spec:
        changes["backoff_delay"] = parse_duration(spec["backoffDelay"])
    if "timeout" in spec:
        changes["timeout"] = parse_duration(spec["timeout"])
    if "deadLetterSink" in spec:
        changes["dead_letter_service"] = _service(spec["deadLetterSink"], f"{where}.deadLetterSink")
    return replace(base, **changes)


def _check_filters(filters: list[dict[str, Any]], where: str) -> None:
    for item in filters:
        if len(item) != 1:
            raise ValueError(f"{where}: each filter has exactly one dialect")
        dialect, value = next(iter(item.items()))
        if dialect in ("all", "any"):
            _check_filters(value, f"{where}.{dialect}")
        elif dialect == "not":
            _check_filters([value], f"{where}.not")
        elif dialect not in ("exact", "prefix", "suffix"):
            raise ValueError(f"{where}: the {dialect!r} filter dialect is not supported locally")


def load(folder: Path = EVENTING_DIR) -> BrokerConfig:
    documents: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    brokers = [doc for doc in documents if doc.get("kind") == "Broker"]
    if len(brokers) != 1:
        raise ValueError(f"{folder}: expected exactly one Broker, found {len(brokers)}")
    broker = brokers[0]
    name, namespace = broker["metadata"]["name"], broker["metadata"].get("namespace", "default")
    delivery = _delivery(broker.get("spec", {}).get("delivery"), Delivery(), f"Broker {name}")
    triggers = []
    for doc in documents:
        if doc.get("kind") != "Trigger" or doc["spec"].get("broker") != name:
            continue
        spec, trigger_name = doc["spec"], doc["metadata"]["name"]
        where = f"Trigger {trigger_name}"
        filters = spec.get("filters", [])
        _check_filters(filters, where)
        triggers.append(
            TriggerConfig(
                name=trigger_name,
                subscriber=_service(spec["subscriber"], f"{where}.subscriber"),
                filter_attributes={} if filters else dict(spec.get("filter", {}).get("attributes", {})),
                filters=filters,
                # As in Knative, a Trigger's own delivery replaces the Broker's entirely.
                delivery=_delivery(spec["delivery"], Delivery(), where) if spec.get("delivery") else None,
            )
        )
    return BrokerConfig(namespace, name, delivery, triggers)
