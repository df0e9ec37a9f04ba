"""The event catalog at run time: each type's ``data`` JSON Schema, checked before a handler runs.

The schemas are read from ``eventing/`` beside the package, as ``knative/routing.yaml`` is
(the image copies ``eventing/`` to ``/app/eventing``): ``eventing/catalog.yaml`` maps each
type to its schema file, so the consumers, the catalog tests and the docs share one copy.

Nothing here runs at import. The catalog is read on the first event, and a type's validator
is compiled on the first event of that type, once: an event function's cold start pays for
neither yaml nor the validator. The validator is ``jsonschema-rs``: one wheel with no
dependencies that imports in ~20 ms, where the pure-Python ``jsonschema`` and its four
dependencies take ~100 ms on the same machine.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quill.routing import FUNCTIONS_DIR

if TYPE_CHECKING:
    import jsonschema_rs

__all__ = ["CATALOG_FILE", "find_data_errors"]

CATALOG_FILE = FUNCTIONS_DIR.parent / "eventing" / "catalog.yaml"
# Messages quote the offending value; a 200 kB body must not come back whole.
_MESSAGE_CHARS = 160


@cache
def _schema_files() -> dict[str, Path]:
    import yaml

    document = yaml.safe_load(CATALOG_FILE.read_text(encoding="utf-8"))
    return {entry["type"]: CATALOG_FILE.parent / entry["schema"] for entry in document["types"]}


@cache
def _validator(event_type: str) -> jsonschema_rs.Validator:
    import jsonschema_rs

    path = _schema_files().get(event_type)
    if path is None:
        raise LookupError(f"{event_type} is not in {CATALOG_FILE}")
    return jsonschema_rs.validator_for(json.loads(path.read_text(encoding="utf-8")))


def find_data_errors(event_type: str, data: Any) -> dict[str, list[str]]:
    """What keeps ``data`` from matching the type's schema, by field path (``data`` for the
    whole); empty when it matches. ``LookupError`` for a type the catalog does not list."""
    validator = _validator(event_type)
    if isinstance(data, bytes | bytearray):  # a body that was not JSON
        return {"data": ["is not JSON"]}
    errors: dict[str, list[str]] = {}
    for error in validator.iter_errors(data):
        field = ".".join(str(part) for part in error.instance_path) or "data"
        message = error.message
        errors.setdefault(field, []).append(
            message if len(message) <= _MESSAGE_CHARS else message[: _MESSAGE_CHARS - 1] + "…"
        )
    return errors
