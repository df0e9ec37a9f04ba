"""Events the broker could not deliver, kept until a person replays them. Owns ``dead_letters``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.conversion import to_dict
from cloudevents.http import CloudEvent
from psycopg.types.json import Jsonb

from quill.db import Connection

__all__ = ["DeadLetter", "list_parked", "mark_replayed", "park", "to_event", "unmark_replayed"]

_PARK = """
INSERT INTO dead_letters (event, error_code, error_data, error_dest)
VALUES (%(event)s, %(code)s, %(data)s, %(dest)s)
ON CONFLICT ((event ->> 'source'), (event ->> 'id'), (error_dest)) DO UPDATE
SET error_code = EXCLUDED.error_code, error_data = EXCLUDED.error_data,
    received_at = clock_timestamp(), replayed_at = NULL
"""
_LIST = """
SELECT id, event, error_code, error_data, error_dest, received_at, replayed_at, replay_count
FROM dead_letters
WHERE (%(all)s OR replayed_at IS NULL) AND (%(id)s::bigint IS NULL OR id = %(id)s)
ORDER BY id
"""
_REPLAYED = "UPDATE dead_letters SET replayed_at = clock_timestamp(), replay_count = replay_count + 1 WHERE id = %s"
_UNREPLAYED = "UPDATE dead_letters SET replayed_at = NULL, replay_count = replay_count - 1 WHERE id = %s"

# Extension attributes the dead-letter step adds: not part of the original event.
_ERROR_ATTRIBUTES = ("knativeerrorcode", "knativeerrordata", "knativeerrordest")


@dataclass(frozen=True)
class DeadLetter:
    """An event that could not be delivered, parked where an operator can see and replay it."""

    id: int
    event: dict[str, Any]
    error_code: str | None
    error_data: str | None
    error_dest: str | None
    received_at: datetime
    replayed_at: datetime | None
    replay_count: int


async def park(conn: Connection, event: CloudEvent) -> None:
    attributes = event.get_attributes()
    original = {key: value for key, value in to_dict(event).items() if key not in _ERROR_ATTRIBUTES}
    await conn.execute(
        _PARK,
        {
            "event": Jsonb(original),
            "code": attributes.get("knativeerrorcode"),
            "data": attributes.get("knativeerrordata"),
            "dest": attributes.get("knativeerrordest") or "",
        },
    )


async def list_parked(
    conn: Connection, *, include_replayed: bool = False, letter_id: int | None = None
) -> list[DeadLetter]:
    rows = await (await conn.execute(_LIST, {"all": include_replayed, "id": letter_id})).fetchall()
    return [DeadLetter(**row) for row in rows]


async def mark_replayed(conn: Connection, letter_id: int) -> None:
    await conn.execute(_REPLAYED, (letter_id,))


async def unmark_replayed(conn: Connection, letter_id: int) -> None:
    await conn.execute(_UNREPLAYED, (letter_id,))


def to_event(letter: DeadLetter) -> CloudEvent:
    """The original event, as it was first sent (same id: consumers still de-duplicate it)."""
    attributes = {key: value for key, value in letter.event.items() if key not in ("data", "data_base64")}
    return CloudEvent(attributes, letter.event.get("data"))
