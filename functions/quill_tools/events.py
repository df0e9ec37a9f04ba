"""``quill events``: send an event as an outside producer would, watch the local broker,
and list or replay dead letters."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

__all__ = ["add_parser", "run"]

# The tail reads in pages, and a page that comes back full is followed by the next at
# once: ``--once`` prints everything there is, however many events the broker holds.
_PAGE = 500
_EVENTS_AFTER = """
SELECT id, event, received_at FROM broker_events WHERE id > %s ORDER BY id LIMIT %s
"""
# Keyset on (updated_at, id): rows changed in the same instant are neither skipped nor repeated.
_DELIVERIES_AFTER = """
SELECT d.id, d.event_pk, d.trigger, d.state, d.dead_lettering, d.attempts, d.last_status, d.last_error, d.updated_at
FROM broker_deliveries d
WHERE (d.updated_at, d.id) > (%s, %s) AND (d.state <> 'pending' OR d.attempts > 0)
ORDER BY d.updated_at, d.id LIMIT %s
"""


@dataclass
class _Position:
    """What the tail has printed so far."""

    event: int
    change_at: datetime
    change_id: int = 0


def add_parser(commands: Any, data: argparse.ArgumentParser) -> argparse.ArgumentParser:
    events = commands.add_parser("events", parents=[data], help="send, watch and replay CloudEvents")
    actions = events.add_subparsers(dest="action", required=True, metavar="action")

    send = actions.add_parser("send", help="publish one event to the broker (K_SINK), in binary mode")
    send.add_argument("type", help="e.g. io.quill.article.import.requested.v1")
    send.add_argument("--data", required=True, help="the event's data, as JSON")
    send.add_argument("--source", default="/quill/cli", help="the producer's URI reference")
    send.add_argument("--subject", default=None)
    send.add_argument("--id", default=None, help="event id (default: a new UUID); resend an id to test idempotency")
    send.add_argument("--sink", default=None, help="broker URL (default: K_SINK, or the running quill dev's)")

    tail = actions.add_parser("tail", help="print events and deliveries as they pass through quill dev's broker")
    tail.add_argument("--once", action="store_true", help="print what is there and stop")
    tail.add_argument("--all", action="store_true", help="start from the first event, not from now")

    letters = actions.add_parser("dead-letters", help="list events parked in the dead-letter store")
    letters.add_argument("--all", action="store_true", help="include the ones already replayed")

    replay = actions.add_parser("replay", help="send dead letters back to the broker")
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", type=int, help="a dead letter's id (see dead-letters)")
    which.add_argument("--all", action="store_true", help="every dead letter not yet replayed")
    replay.add_argument("--sink", default=None)
    return events  # type: ignore[no-any-return]


def _sink(given: str | None) -> str:
    from quill.settings import get_settings

    sink = given or get_settings().k_sink
    if not sink:
        raise SystemExit("no broker to send to: pass --sink, set K_SINK, or start quill dev")
    return sink


async def _send(args: argparse.Namespace) -> None:
    from cloudevents.http import CloudEvent

    from quill import events

    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"--data is not JSON: {exc}") from None
    attributes: dict[str, Any] = {
        "id": args.id or str(uuid.uuid4()),
        "type": args.type,
        "source": args.source,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
    }
    if args.subject:
        attributes["subject"] = args.subject
    try:
        response = await events.send(CloudEvent(attributes, data), _sink(args.sink))
    except Exception as exc:
        raise SystemExit(f"the broker did not accept the event: {exc}") from None
    finally:
        await events.aclose()
    print(f"sent {attributes['type']} id={attributes['id']} (HTTP {response.status_code})")


def _describe(event: dict[str, Any]) -> str:
    subject = f" subject={event['subject']}" if event.get("subject") else ""
    return f"{event['type']} source={event['source']} id={event['id']}{subject}"


async def _tail(args: argparse.Namespace) -> None:
    from quill.db import aclose, connection

    try:
        async with connection() as conn:
            row = await (await conn.execute("SELECT coalesce(max(id), 0) AS id FROM broker_events")).fetchone()
        position = (
            _Position(0, datetime(1970, 1, 1, tzinfo=UTC))
            if args.all
            else _Position(int(row["id"]) if row else 0, datetime.now(UTC))
        )
        while True:
            if await _print_page(position):
                continue  # a full page: more is waiting
            if args.once:
                return
            await asyncio.sleep(0.5)
    finally:
        await aclose()


async def _print_page(position: _Position) -> bool:
    """Print the next page of events and of delivery changes; True when either page was full."""
    from quill.db import connection

    async with connection() as conn:
        new_events = await (await conn.execute(_EVENTS_AFTER, (position.event, _PAGE))).fetchall()
        changes = await (
            await conn.execute(_DELIVERIES_AFTER, (position.change_at, position.change_id, _PAGE))
        ).fetchall()
    for item in new_events:
        print(f"event    #{item['id']} {_describe(item['event'])}", flush=True)
        position.event = item["id"]
    for item in changes:
        state = "dead-lettered" if item["dead_lettering"] and item["state"] == "delivered" else item["state"]
        detail = f"HTTP {item['last_status']}" if item["last_status"] else (item["last_error"] or "")
        print(
            f"delivery #{item['event_pk']} -> {item['trigger']}: {state} (attempts {item['attempts']}, {detail})",
            flush=True,
        )
        position.change_at, position.change_id = item["updated_at"], item["id"]
    return len(new_events) == _PAGE or len(changes) == _PAGE


async def _dead_letters(args: argparse.Namespace) -> None:
    from quill.db import aclose, connection
    from quill.domain import deadletters

    try:
        async with connection() as conn:
            letters = await deadletters.list_parked(conn, include_replayed=args.all)
    finally:
        await aclose()
    if not letters:
        print("no dead letters")
    for letter in letters:
        replayed = f", replayed {letter.replay_count}x" if letter.replay_count else ""
        data = json.dumps(letter.event.get("data"), ensure_ascii=False)
        print(
            f"#{letter.id} {letter.received_at:%Y-%m-%d %H:%M:%S} {_describe(letter.event)} "
            f"error={letter.error_code} dest={letter.error_dest}{replayed}\n    data={data[:200]}"
        )


async def _replay(args: argparse.Namespace) -> None:
    from quill import events
    from quill.db import aclose, connection
    from quill.domain import deadletters

    sink = _sink(args.sink)
    replayed = 0
    try:
        async with connection() as conn:
            letters = await deadletters.list_parked(conn, letter_id=None if args.all else args.id)
        if not letters:
            raise SystemExit("nothing to replay" if args.all else f"no dead letter #{args.id} waiting")
        for letter in letters:
            # Marked first: if the replay fails again at once, the new parking (which clears
            # replayed_at) lands after this mark and the letter stays listed.
            async with connection() as conn:
                await deadletters.mark_replayed(conn, letter.id)
            try:
                await events.send(deadletters.to_event(letter), sink)
            except events.SendFailed:
                async with connection() as conn:
                    await deadletters.unmark_replayed(conn, letter.id)
                raise
            replayed += 1
            print(f"replayed #{letter.id} {_describe(letter.event)}")
    finally:
        await events.aclose()
        await aclose()
    print(f"{replayed} replayed")


def run(args: argparse.Namespace) -> None:
    actions = {"send": _send, "tail": _tail, "dead-letters": _dead_letters, "replay": _replay}
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(actions[args.action](args))
