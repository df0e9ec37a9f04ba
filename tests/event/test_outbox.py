"""The transactional outbox: exactly the catalogued events, once, after commit; none lost."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from quill import events
from quill.domain import outbox
from quill.settings import Settings, use_settings
from tests.conftest import Api, free_port
from tests.event.conftest import Receiver


def outbox_rows(settings: Settings) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute("SELECT type, subject, published_at FROM outbox ORDER BY id").fetchall()


@pytest.fixture
def to_receiver(settings_factory: Any, receiver: Receiver) -> Any:
    with use_settings(settings_factory(k_sink=receiver.url("/sink"))) as chosen:
        yield chosen


async def test_each_write_route_emits_its_event_once_in_binary_mode_with_the_trace(
    api: Api, to_receiver: Settings, receiver: Receiver
) -> None:
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    token = await api.register("alice")
    response = await api.post(
        "/api/articles",
        token,
        json={"article": {"title": "Traced", "description": "d", "body": "b"}},
        headers={"traceparent": traceparent},
    )
    assert response.status_code == 201

    received = await receiver.wait_for(2)

    assert [item.event["type"] for item in received] == [events.USER_REGISTERED, events.ARTICLE_CREATED]
    created = received[1]
    assert created.headers["ce-specversion"] == "1.0"  # binary mode: attributes in headers
    assert created.headers["content-type"] == "application/json"
    assert created.event["source"] == "/quill/posts"
    assert created.event["traceparent"] == traceparent
    assert created.event.data["slug"] == "traced"
    await outbox.drain()  # the marks are written after the response, in a batch of their own
    assert all(row[2] is not None for row in outbox_rows(to_receiver))


@pytest.mark.parametrize(
    ("route", "expected"),
    [
        ("follow", [events.PROFILE_FOLLOWED]),
        ("favorite", [events.ARTICLE_FAVORITED]),
        ("comment", [events.COMMENT_CREATED]),
        ("update", [events.ARTICLE_UPDATED]),
        ("delete", [events.ARTICLE_DELETED]),
        ("user", [events.USER_UPDATED]),
    ],
)
async def test_each_route_emits_exactly_its_events(
    api: Api, settings: Settings, route: str, expected: list[str]
) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(bob))["slug"]
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM outbox")
    calls = {
        "follow": lambda: api.post("/api/profiles/bob/follow", alice),
        "favorite": lambda: api.post(f"/api/articles/{slug}/favorite", alice),
        "comment": lambda: api.post(f"/api/articles/{slug}/comments", alice, json={"comment": {"body": "x"}}),
        "update": lambda: api.put(f"/api/articles/{slug}", bob, json={"article": {"body": "new"}}),
        "delete": lambda: api.delete(f"/api/articles/{slug}", bob),
        "user": lambda: api.put("/api/user", alice, json={"user": {"bio": "new"}}),
    }

    assert (await calls[route]()).status_code < 300

    assert [row[0] for row in outbox_rows(settings)] == expected


async def test_repeating_an_idempotent_write_emits_nothing_more(api: Api, settings: Settings) -> None:
    alice = await api.register("alice")
    await api.register("bob")
    slug = (await api.create_article(alice))["slug"]
    await api.post("/api/profiles/bob/follow", alice)
    await api.post(f"/api/articles/{slug}/favorite", alice)
    before = len(outbox_rows(settings))

    await api.post("/api/profiles/bob/follow", alice)
    await api.post(f"/api/articles/{slug}/favorite", alice)
    await api.delete("/api/profiles/nobody-else/follow", alice)

    assert len(outbox_rows(settings)) == before


async def test_writes_that_fail_emit_nothing(api: Api, settings: Settings) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice))["slug"]
    before = outbox_rows(settings)

    assert (
        await api.post(
            "/api/users", json={"user": {"username": "alice", "email": "x@example.com", "password": "password123"}}
        )
    ).status_code == 409
    assert (await api.put(f"/api/articles/{slug}", bob, json={"article": {"body": "no"}})).status_code == 403
    assert (await api.put(f"/api/articles/{slug}", alice, json={"article": {"tagList": None}})).status_code == 422
    assert (await api.post("/api/articles", alice, json={"article": {"title": ""}})).status_code == 422
    assert (await api.put("/api/user", alice, json={"user": {"username": "bob"}})).status_code == 409

    assert outbox_rows(settings) == before


async def test_broker_unreachable_writes_succeed_and_the_relay_delivers_each_event_once(
    api: Api, settings_factory: Any, receiver: Receiver
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/sink"
    with use_settings(settings_factory(k_sink=closed)) as down:
        alice = await api.register("alice")
        for number in range(5):
            response = await api.post(
                "/api/articles",
                alice,
                json={"article": {"title": f"While down {number}", "description": "d", "body": "b"}},
            )
            assert response.status_code == 201
        pending = outbox_rows(down)
        assert len(pending) == 6
        assert all(row[2] is None for row in pending)
        assert await outbox.relay() == 0  # still down: nothing sent, nothing lost

    with use_settings(settings_factory(k_sink=receiver.url("/sink"), database_url=down.database_url)):
        sent_now = await outbox.relay()
        sent_again = await outbox.relay()

    assert (sent_now, sent_again) == (6, 0)
    received = await receiver.wait_for(6)
    assert len({item.event["id"] for item in received}) == 6
    assert [item.event["type"] for item in received] == [events.USER_REGISTERED] + [events.ARTICLE_CREATED] * 5
    assert [item.event.data["title"] for item in received[1:]] == [f"While down {n}" for n in range(5)]  # oldest first


_SLOW_MARKS = """
CREATE FUNCTION slow_mark() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(1); RETURN NEW; END $$;
CREATE TRIGGER slow_mark BEFORE UPDATE ON outbox FOR EACH ROW EXECUTE FUNCTION slow_mark();
"""


async def test_a_write_waits_for_its_events_to_be_sent_not_for_their_marks(
    api: Api, settings_factory: Any, receiver: Receiver
) -> None:
    """``EVENT_SEND_WAIT`` is a wait for the broker. Marking the rows sent is bookkeeping
    (batched, and the relay covers a lost mark): a write that waited for it answered a
    database round trip later, under load a batch later."""
    with use_settings(settings_factory(k_sink=receiver.url("/sink"), event_send_wait=5.0)) as chosen:
        token = await api.register("alice")
        await outbox.drain()
        with psycopg.connect(chosen.database_url, autocommit=True) as conn:
            conn.execute(_SLOW_MARKS)
        try:
            response = await api.post(
                "/api/articles", token, json={"article": {"title": "Sent", "description": "d", "body": "b"}}
            )
            marked_at_answer = [row[2] is not None for row in outbox_rows(chosen)]
            received = await receiver.wait_for(2)
            await outbox.drain()
        finally:
            with psycopg.connect(chosen.database_url, autocommit=True) as conn:
                conn.execute("DROP TRIGGER slow_mark ON outbox; DROP FUNCTION slow_mark()")

    assert response.status_code == 201
    assert received[1].event["type"] == events.ARTICLE_CREATED  # sent before the answer
    assert marked_at_answer == [True, False]  # its mark still sleeping in the trigger
    assert all(row[2] is not None for row in outbox_rows(chosen))  # then written


async def test_a_failing_sink_does_not_fail_the_request(api: Api, settings_factory: Any, receiver: Receiver) -> None:
    receiver.plans["/sink"] = [500] * 10
    with use_settings(settings_factory(k_sink=receiver.url("/sink"))) as chosen:
        token = await api.register("alice")
        assert (await api.get("/api/user", token)).status_code == 200
        await outbox.drain()  # what became of the send is recorded after the response
        with psycopg.connect(chosen.database_url) as conn:
            row = conn.execute("SELECT published_at, attempts, last_error FROM outbox").fetchone()
    assert row is not None
    assert row[0] is None
    assert row[1] == 1
    assert "500" in row[2]


async def test_concurrent_relays_send_each_event_once(api: Api, settings_factory: Any, receiver: Receiver) -> None:
    import asyncio

    with use_settings(settings_factory(k_sink=None, outbox_batch=3)) as quiet:
        alice = await api.register("alice")
        for number in range(11):
            await api.create_article(alice, f"Pending {number}")
    with use_settings(settings_factory(k_sink=receiver.url("/sink"), outbox_batch=3, database_url=quiet.database_url)):
        counts = await asyncio.gather(*(outbox.relay() for _ in range(4)))

    assert sum(counts) == 12
    received = await receiver.wait_for(12)
    assert len(received) == 12
    assert len({item.event["id"] for item in received}) == 12


async def test_an_event_the_sink_refuses_does_not_hold_back_the_others(
    api: Api, settings_factory: Any, receiver: Receiver
) -> None:
    with use_settings(settings_factory(k_sink=None)) as quiet:
        alice = await api.register("alice")
        for number in range(3):
            await api.create_article(alice, f"Queued {number}")
    receiver.plans["/sink"] = [400]  # the first (oldest) event is refused for good
    with use_settings(settings_factory(k_sink=receiver.url("/sink"), database_url=quiet.database_url)):
        sent = await outbox.relay()
    assert sent == 3
    with psycopg.connect(quiet.database_url) as conn:
        refused = conn.execute("SELECT type, attempts, last_error FROM outbox WHERE published_at IS NULL").fetchall()
    assert refused == [(events.USER_REGISTERED, 1, "HTTP 400")]  # parked in the outbox, not lost


async def test_a_sender_that_overran_its_lease_cannot_settle_rows_another_took(
    api: Api, settings_factory: Any, receiver: Receiver
) -> None:
    with use_settings(settings_factory(k_sink=receiver.url("/sink"))) as chosen:
        with use_settings(settings_factory(k_sink=None, database_url=chosen.database_url)):
            await api.register("alice")
        first_token, first_rows = await outbox._claim(None, 10)
        with psycopg.connect(chosen.database_url, autocommit=True) as conn:
            conn.execute("UPDATE outbox SET claimed_until = clock_timestamp() - interval '1 second'")  # A overran
        second_token, second_rows = await outbox._claim(None, 10)
        assert [row["id"] for row in first_rows] == [row["id"] for row in second_rows]
        await outbox._send(first_token, first_rows, receiver.url("/sink"))  # A finishes late
        with psycopg.connect(chosen.database_url) as conn:
            row = conn.execute("SELECT published_at, claim_token FROM outbox").fetchone()
        assert row == (None, second_token)  # still B's to settle
        assert await outbox._send(second_token, second_rows, receiver.url("/sink")) == 1


async def test_a_sink_this_process_serves_takes_the_events_in_process(api: Api, settings_factory: Any) -> None:
    """``quill dev``'s broker: no HTTP request; the events are handed over as they were stored
    (the relay finds nothing left), and a refusal leaves them for the relay, as an HTTP 503 would."""
    sink = f"http://127.0.0.1:{free_port()}/_broker/quill/default"  # nothing listens there
    taken: list[events.Envelope] = []
    refusing = False

    async def take(envelope: events.Envelope) -> None:
        if refusing:
            raise events.SendFailed("PostgreSQL away", 503)
        taken.append(envelope)

    events.serve_in_process(sink, take)
    try:
        with use_settings(settings_factory(k_sink=sink)) as chosen:
            alice = await api.register("alice")
            created = await api.create_article(alice, "Handed over", tagList=["b", "a"])
            assert [envelope.type for envelope in taken] == [events.USER_REGISTERED, events.ARTICLE_CREATED]
            assert taken[1].data["slug"] == created["slug"]
            assert taken[1].data["tagList"] == ["a", "b"]
            await outbox.drain()  # the marks are written after the response
            assert [row[2] is not None for row in outbox_rows(chosen)] == [True, True]
            assert await outbox.relay() == 0

            refusing = True
            await api.create_article(alice, "Kept back")
            await outbox.drain()  # the refused send gives its lease back after the response
            assert [row[2] is not None for row in outbox_rows(chosen)] == [True, True, False]
            refusing = False
            assert await outbox.relay() == 1
    finally:
        events.serve_in_process(sink, None)
    assert [envelope.data["title"] for envelope in taken[1:]] == ["Handed over", "Kept back"]
