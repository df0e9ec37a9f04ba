"""``quill events``: what the command prints of the local broker's tables."""

from __future__ import annotations

import argparse

import psycopg
import pytest

from quill.settings import Settings
from quill_tools import events as eventscli

# As the attack run found them: more than six pages of the tail's 500.
EVENTS = 3010


def _fill(settings: Settings) -> None:
    """EVENTS events, each delivered once; every delivery changed in the same instant."""
    with psycopg.connect(settings.database_url) as conn:
        conn.execute(
            "INSERT INTO broker_events (broker, event) SELECT 'quill/default', jsonb_build_object("
            "'type', 'io.quill.article.created.v1', 'source', '/quill/posts', 'id', 'e' || n) "
            "FROM generate_series(1, %s) AS n",
            (EVENTS,),
        )
        conn.execute(
            "INSERT INTO broker_deliveries (event_pk, trigger, subscriber, state, attempts, last_status, updated_at) "
            "SELECT id, 'search', 'search', 'delivered', 1, 202, now() FROM broker_events"
        )


async def test_tail_all_once_prints_every_event_and_delivery_not_just_the_first_page(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill(settings)

    await eventscli._tail(argparse.Namespace(once=True, all=True))

    lines = capsys.readouterr().out.splitlines()
    printed_events = [line for line in lines if line.startswith("event ")]
    printed_deliveries = [line for line in lines if line.startswith("delivery ")]
    assert len(printed_events) == EVENTS
    assert len(set(printed_events)) == EVENTS
    assert printed_events[-1].endswith(f"id=e{EVENTS}")
    assert len(printed_deliveries) == EVENTS
    assert len(set(printed_deliveries)) == EVENTS
    assert all(line.endswith("-> search: delivered (attempts 1, HTTP 202)") for line in printed_deliveries)
