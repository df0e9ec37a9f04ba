"""Trigger filters, as Knative evaluates them.

``filters`` (a list, all must match) takes precedence over the legacy
``filter.attributes`` (exact match on each attribute; an empty value matches any).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from quill_tools.broker.config import TriggerConfig

__all__ = ["matches"]


def _text(attributes: Mapping[str, Any], name: str) -> str | None:
    value = attributes.get(name)
    return None if value is None else str(value)


_COMPARE: dict[str, Callable[[str, str], bool]] = {
    "exact": str.__eq__,
    "prefix": str.startswith,
    "suffix": str.endswith,
}


def _one(attributes: Mapping[str, Any], item: dict[str, Any]) -> bool:
    dialect, value = next(iter(item.items()))
    if dialect == "all":
        return all(_one(attributes, child) for child in value)
    if dialect == "any":
        return any(_one(attributes, child) for child in value)
    if dialect == "not":
        return not _one(attributes, value)
    for name, wanted in value.items():
        actual = _text(attributes, name)
        if actual is None or not _COMPARE[dialect](actual, str(wanted)):
            return False
    return True


def matches(trigger: TriggerConfig, attributes: Mapping[str, Any]) -> bool:
    if trigger.filters:
        return all(_one(attributes, item) for item in trigger.filters)
    for name, wanted in trigger.filter_attributes.items():
        if wanted != "" and _text(attributes, name) != wanted:
            return False
    return True
