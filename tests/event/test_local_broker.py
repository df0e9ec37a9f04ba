"""The local broker honours the same YAML the cluster gets: filters, retries, backoff,
timeouts, dead letters, replies, and persistence across restarts. Deliveries go over
real HTTP to a real server, and again in process to the same server's app."""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import psycopg
import pytest
from cloudevents.http import CloudEvent
from starlette.types import ASGIApp

from quill.settings import Settings
from quill_tools.broker import config as broker_config
from quill_tools.broker.config import BrokerConfig, Delivery, TriggerConfig, parse_duration
from quill_tools.broker.filters import matches
from quill_tools.broker.local import LocalBroker
from tests.event.conftest import Receiver


def event(event_type: str = "io.quill.article.created.v1", **extra: Any) -> CloudEvent:
    attributes = {"type": event_type, "source": "/quill/test", "id": str(uuid.uuid4()), **extra}
    return CloudEvent(attributes, {"id": 1})


# -- the YAML ---------------------------------------------------------------------------


def test_the_broker_yaml_delivery_spec_is_read() -> None:
    config = broker_config.load()
    assert (config.namespace, config.name) == ("quill", "default")
    assert config.delivery == Delivery(
        retry=6, backoff_policy="exponential", backoff_delay=0.5, timeout=10.0, dead_letter_service="deadletter"
    )
    triggers = {trigger.name: trigger for trigger in config.triggers}
    assert set(triggers) == {"cache", "search", "importer"}
    search = triggers["search"].delivery
    assert search is not None
    assert search.retry == 8  # a Trigger overrides the Broker field by field
    assert search.dead_letter_service == "deadletter"
    assert triggers["importer"].delivery is None  # none of its own: the Broker's applies


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT0.5S", 0.5), ("PT10S", 10), ("PT1M30S", 90), ("PT2H", 7200), ("P1D", 86400), ("P1DT1S", 86401)],
)
def test_iso8601_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "P", "PT", "10s", "PT-1S", "P1Y", "PT1.5"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_duration(text)


def test_backoff_schedules_match_knative() -> None:
    exponential = Delivery(backoff_policy="exponential", backoff_delay=0.5)
    linear = Delivery(backoff_policy="linear", backoff_delay=0.5)
    assert [exponential.backoff(n) for n in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert [linear.backoff(n) for n in range(4)] == [0.5, 1.0, 1.5, 2.0]


def _trigger(**spec: Any) -> TriggerConfig:
    return TriggerConfig("t", "svc", spec.get("attributes", {}), spec.get("filters", []))


@pytest.mark.parametrize(
    ("trigger", "attributes", "expected"),
    [
        (_trigger(attributes={"type": "a.b"}), {"type": "a.b"}, True),
        (_trigger(attributes={"type": "a.b"}), {"type": "a.c"}, False),
        (_trigger(attributes={"type": "a.b", "source": ""}), {"type": "a.b", "source": "/x"}, True),
        (_trigger(attributes={"subject": "1"}), {"type": "a"}, False),
        (_trigger(filters=[{"exact": {"type": "a.b"}}]), {"type": "a.b"}, True),
        (_trigger(filters=[{"prefix": {"type": "io.quill."}}]), {"type": "io.quill.x"}, True),
        (_trigger(filters=[{"suffix": {"type": ".v1"}}]), {"type": "x.v2"}, False),
        (_trigger(filters=[{"all": [{"prefix": {"type": "a"}}, {"suffix": {"type": "z"}}]}]), {"type": "abz"}, True),
        (_trigger(filters=[{"all": [{"prefix": {"type": "a"}}, {"suffix": {"type": "z"}}]}]), {"type": "aby"}, False),
        (_trigger(filters=[{"any": [{"exact": {"type": "x"}}, {"exact": {"type": "y"}}]}]), {"type": "y"}, True),
        (_trigger(filters=[{"not": {"exact": {"type": "x"}}}]), {"type": "x"}, False),
        (_trigger(filters=[{"not": {"exact": {"type": "x"}}}]), {"type": "y"}, True),
        (_trigger(filters=[{"exact": {"type": "a", "source": "/s"}}]), {"type": "a", "source": "/t"}, False),
        # `filters` wins over `filter.attributes`, as in Knative
        (_trigger(attributes={"type": "nope"}, filters=[{"exact": {"type": "a"}}]), {"type": "a"}, True),
    ],
)
def test_filter_dialects(trigger: TriggerConfig, attributes: dict[str, str], expected: bool) -> None:
    assert matches(trigger, attributes) is expected


def test_a_cesql_filter_is_refused_rather_than_ignored(tmp_path: Any) -> None:
    (tmp_path / "b.yaml").write_text(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\n"
        "spec: {broker: default, filters: [{cesql: \"type = 'a'\"}],"
        " subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: s}}}\n"
    )
    with pytest.raises(ValueError, match="cesql"):
        broker_config.load(tmp_path)


# -- delivery over HTTP --------------------------------------------------------------------


def _config(delivery: Delivery, *triggers: TriggerConfig) -> BrokerConfig:
    return BrokerConfig("quill", "default", delivery, list(triggers))


FAST = Delivery(retry=3, backoff_policy="exponential", backoff_delay=0.05, timeout=1.0, dead_letter_service="dls")


@pytest.fixture(params=["over TCP", "in process"])
async def running(
    request: pytest.FixtureRequest, settings: Settings, receiver: Receiver
) -> AsyncIterator[Callable[[BrokerConfig], LocalBroker]]:
    """A broker delivering to the receiver over TCP, or, as ``quill dev`` delivers to its
    own functions, by calling the receiver's app in process: every test holds for both."""
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []

    def serving(url: str) -> ASGIApp | None:
        in_process = request.param == "in process" and url.startswith(receiver.url())
        return receiver.app if in_process else None

    def start(config: BrokerConfig) -> LocalBroker:
        broker = LocalBroker(config, lambda name: receiver.url(f"/{name}"), serving)
        tasks.append(asyncio.create_task(broker.run(stop)))
        return broker

    yield start
    stop.set()
    await asyncio.gather(*tasks)


def deliveries(settings: Settings) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.database_url) as conn:
        return conn.execute(
            "SELECT trigger, state, dead_lettering, attempts, last_status FROM broker_deliveries ORDER BY id"
        ).fetchall()


async def _settled(settings: Settings, within: float = 10) -> list[tuple[Any, ...]]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        rows = deliveries(settings)
        if rows and all(row[1] != "pending" for row in rows):
            return rows
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"deliveries did not settle: {rows}")
        await asyncio.sleep(0.05)


async def test_an_event_goes_to_every_matching_trigger_in_binary_mode(
    running: Any, receiver: Receiver, settings: Settings
) -> None:
    broker = running(
        _config(
            FAST,
            TriggerConfig("a", "one", filters=[{"prefix": {"type": "io.quill.article."}}]),
            TriggerConfig("b", "two", {"type": "io.quill.article.created.v1"}),
            TriggerConfig("c", "three", {"type": "io.quill.user.updated.v1"}),
        )
    )
    sent = event()

    await broker.ingest(sent)
    got = await receiver.wait_for(2)
    await _settled(settings)

    assert sorted(item.path for item in got) == ["/one", "/two"]
    assert all(item.event["id"] == sent["id"] for item in got)
    assert all(item.headers["ce-id"] == sent["id"] for item in got)  # binary mode


@pytest.mark.parametrize("status", [500, 503, 404, 408, 409, 429])
async def test_retryable_answers_are_retried_with_backoff_then_succeed(
    running: Any, receiver: Receiver, settings: Settings, status: int
) -> None:
    receiver.plans["/one"] = [status, status]
    broker = running(_config(FAST, TriggerConfig("a", "one")))

    await broker.ingest(event())
    got = await receiver.wait_for(3, "/one")
    rows = await _settled(settings)

    assert rows == [("a", "delivered", False, 3, 202)]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(got)]
    assert gaps[0] >= 0.1 * 0.9  # 0.05 * 2^1
    assert gaps[1] >= 0.2 * 0.9  # 0.05 * 2^2
    assert receiver.on("/dls") == []


@pytest.mark.parametrize("status", [400, 401, 403, 410, 422])
async def test_other_4xx_go_straight_to_the_dead_letter_sink_with_error_attributes(
    running: Any, receiver: Receiver, settings: Settings, status: int
) -> None:
    receiver.plans["/one"] = [status]
    broker = running(_config(FAST, TriggerConfig("a", "one")))
    sent = event()

    await broker.ingest(sent)
    parked = (await receiver.wait_for(1, "/dls"))[0].event
    rows = await _settled(settings)

    assert len(receiver.on("/one")) == 1
    assert parked["id"] == sent["id"]
    assert parked["knativeerrorcode"] == str(status)
    assert parked["knativeerrordest"] == receiver.url("/one")
    assert base64.b64decode(parked["knativeerrordata"]) == b""
    assert rows == [("a", "delivered", True, 1, 202)]


async def test_spent_retries_go_to_the_dead_letter_sink(running: Any, receiver: Receiver, settings: Settings) -> None:
    receiver.plans["/one"] = [503] * 10
    broker = running(_config(FAST, TriggerConfig("a", "one")))

    await broker.ingest(event())
    await receiver.wait_for(1, "/dls")
    await _settled(settings)

    assert len(receiver.on("/one")) == FAST.retry + 1


async def test_a_slow_subscriber_times_out_and_is_retried(running: Any, receiver: Receiver, settings: Settings) -> None:
    receiver.delays["/slow"] = 0.6
    broker = running(_config(replace(FAST, timeout=0.2, retry=1), TriggerConfig("a", "slow")))

    await broker.ingest(event())
    await receiver.wait_for(1, "/dls", within=15)

    assert len(receiver.on("/slow")) == 2  # the first try and one retry, both cut off by the timeout


async def test_an_unreachable_subscriber_is_retried_like_a_5xx(
    running: Any, receiver: Receiver, settings: Settings
) -> None:
    from tests.conftest import free_port

    config = _config(replace(FAST, retry=2), TriggerConfig("a", "nowhere"))
    broker = LocalBroker(
        config, lambda name: f"http://127.0.0.1:{free_port()}/" if name == "nowhere" else receiver.url("/dls")
    )
    stop = asyncio.Event()
    task = asyncio.create_task(broker.run(stop))
    await broker.ingest(event())
    parked = (await receiver.wait_for(1, "/dls"))[0].event
    stop.set()
    await task

    assert parked["knativeerrorcode"] == ""  # no HTTP status: the connection failed
    assert deliveries(settings)[0][:3] == ("a", "delivered", True)


async def test_a_reply_event_is_published_back_to_the_broker(
    running: Any, receiver: Receiver, settings: Settings
) -> None:
    receiver.replies["/one"] = CloudEvent({"type": "io.quill.reply.v1", "source": "/one", "id": "r1"}, {"ok": True})
    broker = running(
        _config(
            FAST,
            TriggerConfig("a", "one", {"type": "io.quill.article.created.v1"}),
            TriggerConfig("b", "two", {"type": "io.quill.reply.v1"}),
        )
    )

    await broker.ingest(event())
    reply = (await receiver.wait_for(1, "/two"))[0].event

    assert reply["id"] == "r1"
    assert reply.data == {"ok": True}


async def test_accepted_events_survive_a_broker_restart(receiver: Receiver, settings: Settings) -> None:
    config = _config(FAST, TriggerConfig("a", "one"))
    first = LocalBroker(config, lambda name: receiver.url(f"/{name}"))
    await first.ingest(event())  # accepted, but this broker never dispatches (it "crashed")
    assert receiver.received == []

    second = LocalBroker(config, lambda name: receiver.url(f"/{name}"))
    stop = asyncio.Event()
    task = asyncio.create_task(second.run(stop))
    await receiver.wait_for(1, "/one")
    stop.set()
    await task
    assert deliveries(settings)[0][1] == "delivered"


async def test_events_ingested_together_are_stored_by_one_statement_each_with_its_deliveries(
    receiver: Receiver, settings: Settings
) -> None:
    """Group commit: what arrives while a store is under way shares the next statement,
    and each event still gets exactly the deliveries of the Triggers that take it."""
    created, deleted = "io.quill.article.created.v1", "io.quill.article.deleted.v1"
    config = _config(
        FAST,
        TriggerConfig("creations", "one", {"type": created}, []),
        TriggerConfig("everything", "two", {}, []),
    )
    broker = LocalBroker(config, lambda name: receiver.url(f"/{name}"))
    sent = [event(created if n % 3 else deleted, subject=str(n)) for n in range(20)]

    ids = await asyncio.gather(*(broker.ingest(one) for one in sent))

    assert len(set(ids)) == 20
    with psycopg.connect(settings.database_url) as conn:
        stored: dict[int, str] = dict(conn.execute("SELECT id, event->>'subject' FROM broker_events").fetchall())
        transactions = conn.execute("SELECT count(DISTINCT xmin::text) FROM broker_events").fetchone()
        chosen = conn.execute(
            "SELECT e.event->>'subject', array_agg(d.trigger ORDER BY d.trigger) FROM broker_deliveries d"
            " JOIN broker_events e ON e.id = d.event_pk GROUP BY 1"
        ).fetchall()
    assert stored == {row_id: one["subject"] for row_id, one in zip(ids, sent, strict=True)}
    assert transactions == (1,)
    assert dict(chosen) == {
        one["subject"]: ["creations", "everything"] if one["type"] == created else ["everything"] for one in sent
    }


async def test_an_event_postgresql_refuses_fails_alone_not_the_events_stored_with_it(
    receiver: Receiver, settings: Settings
) -> None:
    broker = LocalBroker(_config(FAST, TriggerConfig("a", "one")), lambda name: receiver.url(f"/{name}"))
    poison = CloudEvent({"type": "t", "source": "/quill/test", "id": "poison"}, {"text": "a\u0000b"})
    good = [event(subject="before"), event(subject="after")]

    outcomes = await asyncio.gather(
        broker.ingest(good[0]), broker.ingest(poison), broker.ingest(good[1]), return_exceptions=True
    )

    assert isinstance(outcomes[1], psycopg.DataError)  # jsonb has no NUL character
    assert all(isinstance(outcome, int) for outcome in (outcomes[0], outcomes[2]))
    with psycopg.connect(settings.database_url) as conn:
        subjects = conn.execute("SELECT event->>'subject' FROM broker_events ORDER BY id").fetchall()
    assert subjects == [("before",), ("after",)]


async def test_an_ingest_wakes_a_dispatcher_that_listens_elsewhere(receiver: Receiver, settings: Settings) -> None:
    """``quill dev`` stores events in its server and dispatches them in its worker: the
    ingest's NOTIFY wakes the listening broker at once, not at its next poll; an event no
    Trigger takes wakes nobody (a wake costs a lease)."""
    config = _config(FAST, TriggerConfig("a", "one", {"type": "io.quill.article.created.v1"}, []))
    server = LocalBroker(config, lambda name: receiver.url(f"/{name}"))
    worker = LocalBroker(config, lambda name: receiver.url(f"/{name}"))
    stop = asyncio.Event()
    listening = asyncio.create_task(worker.listen(stop))
    try:
        await asyncio.wait_for(worker._wake.wait(), timeout=5)  # it wakes once as it starts listening
        for _ in range(3):
            worker._wake.clear()
            await asyncio.sleep(0.2)
            assert not worker._wake.is_set()  # nothing woke it meanwhile
            await server.ingest(event())
            await asyncio.wait_for(worker._wake.wait(), timeout=5)
        worker._wake.clear()
        await server.ingest(event("io.quill.comment.created.v1"))
        await asyncio.sleep(0.3)
        assert not worker._wake.is_set()
    finally:
        stop.set()
        await listening


def test_a_trigger_delivery_replaces_the_brokers_as_a_whole(tmp_path: Any) -> None:
    (tmp_path / "b.yaml").write_text(
        "apiVersion: eventing.knative.dev/v1\nkind: Broker\nmetadata: {name: default}\n"
        "spec: {delivery: {retry: 5, timeout: PT3S, deadLetterSink: {ref: {apiVersion: serving.knative.dev/v1,"
        " kind: Service, name: dls}}}}\n---\n"
        "apiVersion: eventing.knative.dev/v1\nkind: Trigger\nmetadata: {name: t}\n"
        "spec: {broker: default, delivery: {retry: 2},"
        " subscriber: {ref: {apiVersion: serving.knative.dev/v1, kind: Service, name: s}}}\n"
    )
    trigger = broker_config.load(tmp_path).triggers[0]
    assert trigger.delivery == Delivery(retry=2)  # no dead-letter sink, default timeout: as in Knative


# -- yielding to the API's requests (quill dev's worker) -----------------------------------


async def test_a_dispatcher_that_yields_holds_deliveries_while_requests_are_served(
    receiver: Receiver, settings: Settings
) -> None:
    serving = True
    broker = LocalBroker(
        _config(FAST, TriggerConfig("a", "one")),
        lambda name: receiver.url(f"/{name}"),
        yields_to=lambda: serving,
        longest_yield=30,
    )
    stop = asyncio.Event()
    dispatching = asyncio.create_task(broker.run(stop))
    try:
        await broker.ingest(event())
        await asyncio.sleep(0.5)
        assert receiver.received == []  # stored, and waiting for the requests to stop
        serving = False
        await receiver.wait_for(1, "/one", within=2)
        assert await _settled(settings) == [("a", "delivered", False, 1, 202)]
    finally:
        stop.set()
        await dispatching


async def test_a_dispatcher_yields_no_longer_than_its_longest_yield_then_delivers_the_whole_backlog(
    receiver: Receiver, settings: Settings
) -> None:
    """Requests that never stop do not starve the deliveries: after ``longest_yield`` they
    go, more than a lease's worth (32), while the requests still come."""
    broker = LocalBroker(
        _config(FAST, TriggerConfig("a", "one")),
        lambda name: receiver.url(f"/{name}"),
        yields_to=lambda: True,
        longest_yield=1.0,
    )
    await asyncio.gather(*(broker.ingest(event()) for _ in range(40)))
    stop = asyncio.Event()
    started = asyncio.get_running_loop().time()
    dispatching = asyncio.create_task(broker.run(stop))
    try:
        got = await receiver.wait_for(40, "/one", within=5)
        rows = await _settled(settings)
    finally:
        stop.set()
        await dispatching
    first, last = min(item.at for item in got), max(item.at for item in got)
    assert first - started >= 1.0 * 0.9
    assert last - first < 0.5  # both leases at once, not a second wait between them
    assert rows == [("a", "delivered", False, 1, 202)] * 40
