"""The event functions: parse both modes, answer 202 empty, change state once per event."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from cloudevents.conversion import to_binary, to_structured
from cloudevents.http import CloudEvent

from quill import events
from quill.reads import store
from quill.reads.keys import article_key, profile_key
from quill.settings import Settings
from tests.conftest import Api, ApiFactory
from tests.event.conftest import article_id_of, emitted


def make_event(event_type: str, data: Any, source: str = "/producer/test", event_id: str | None = None) -> CloudEvent:
    return CloudEvent(
        {
            "type": event_type,
            "source": source,
            "id": event_id or str(uuid.uuid4()),
            "datacontenttype": "application/json",
        },
        data,
    )


async def deliver(api: Api, event: CloudEvent, *, structured: bool = False) -> Any:
    headers, body = to_structured(event) if structured else to_binary(event)
    return await api.client.post("/", headers=headers, content=body)


def count(settings: Settings, sql: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute(sql.encode()).fetchone()
    assert row is not None
    return int(row[0])


IMPORT = {
    "author": "alice",
    "title": "From the archive",
    "description": "Imported",
    "body": "Old words",
    "tagList": ["archive", "old"],
    "createdAt": "2019-05-01T10:00:00Z",
}


@pytest.mark.parametrize("structured", [False, True], ids=["binary", "structured"])
async def test_an_import_delivered_three_times_creates_one_article(
    api: Api, api_for: ApiFactory, settings: Settings, structured: bool
) -> None:
    await api.register("alice")
    importer = await api_for("importer")
    event = make_event(events.ARTICLE_IMPORT_REQUESTED, IMPORT)

    responses = [await deliver(importer, event, structured=structured) for _ in range(3)]

    assert [response.status_code for response in responses] == [202, 202, 202]
    assert all(response.content == b"" for response in responses)
    listing = (await api.get("/api/articles?author=alice")).json()
    assert listing["articlesCount"] == 1
    article = listing["articles"][0]
    assert article["createdAt"] == "2019-05-01T10:00:00.000Z"
    assert article["tagList"] == ["archive", "old"]
    with psycopg.connect(settings.database_url) as conn:
        emitted = conn.execute("SELECT source FROM outbox WHERE type = %s", (events.ARTICLE_CREATED,)).fetchall()
    assert emitted == [("/quill/importer",)]


async def test_the_same_id_from_another_source_is_another_event(api: Api, api_for: ApiFactory) -> None:
    await api.register("alice")
    importer = await api_for("importer")
    await deliver(importer, make_event(events.ARTICLE_IMPORT_REQUESTED, IMPORT, source="/a", event_id="same"))
    await deliver(importer, make_event(events.ARTICLE_IMPORT_REQUESTED, IMPORT, source="/b", event_id="same"))
    assert (await api.get("/api/articles?author=alice")).json()["articlesCount"] == 2


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({**IMPORT, "author": "nobody"}, "author"),
        ({**IMPORT, "title": ""}, "title"),
        ({**IMPORT, "createdAt": "yesterday"}, "createdAt"),
        ({**IMPORT, "createdAt": "2019-05-01T10:00:00"}, "createdAt"),
        ({**IMPORT, "tagList": "nope"}, "tagList"),
        ("not an object", "data"),
    ],
)
async def test_invalid_imports_are_refused_with_422_and_create_nothing(
    api: Api, api_for: ApiFactory, data: Any, field: str
) -> None:
    await api.register("alice")
    importer = await api_for("importer")

    response = await deliver(importer, make_event(events.ARTICLE_IMPORT_REQUESTED, data))

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert (await api.get("/api/articles")).json()["articlesCount"] == 0


async def test_a_request_that_is_not_a_cloudevent_is_400(api_for: ApiFactory) -> None:
    importer = await api_for("importer")
    response = await importer.client.post("/", json={"hello": "world"})
    assert response.status_code == 400
    assert "event" in response.json()["errors"]


async def test_a_type_the_function_does_not_take_is_400(api_for: ApiFactory) -> None:
    importer = await api_for("importer")
    response = await deliver(importer, make_event(events.USER_REGISTERED, {"id": 1, "username": "x"}))
    assert response.status_code == 400


async def test_search_indexes_articles_and_q_finds_them_ranked_with_filters(api: Api, api_for: ApiFactory) -> None:
    alice = await api.register("alice")
    search = await api_for("search")
    a = await api.create_article(alice, "Dragons of the north", body="Ice dragons sleep", tagList=["fantasy"])
    b = await api.create_article(alice, "Gardening", body="A dragon appears once", tagList=["garden"])
    await api.create_article(alice, "Cooking", body="Nothing to see")
    for slug in (a["slug"], b["slug"]):
        await deliver(search, make_event(events.ARTICLE_CREATED, emitted(events.ARTICLE_CREATED, article_id_of(slug))))

    found = (await api.get("/api/articles?q=dragons")).json()
    filtered = (await api.get("/api/articles?q=dragon&tag=garden")).json()

    assert [item["slug"] for item in found["articles"]] == [a["slug"], b["slug"]]  # title match ranks first
    assert found["articlesCount"] == 2
    assert [item["slug"] for item in filtered["articles"]] == [b["slug"]]
    assert (await api.get("/api/articles?q=%22unmatched%20phrase%22")).json()["articlesCount"] == 0


async def test_search_follows_updates_and_deletes_even_out_of_order(
    api: Api, api_for: ApiFactory, settings: Settings
) -> None:
    alice = await api.register("alice")
    search = await api_for("search")
    slug = (await api.create_article(alice, "Original words"))["slug"]
    article_id = article_id_of(slug)
    await api.put(f"/api/articles/{slug}", alice, json={"article": {"title": "Replacement text"}})

    # the update arrives before the create: the index still ends with the current title
    await deliver(search, make_event(events.ARTICLE_UPDATED, emitted(events.ARTICLE_UPDATED, article_id)))
    await deliver(search, make_event(events.ARTICLE_CREATED, emitted(events.ARTICLE_CREATED, article_id)))
    assert (await api.get("/api/articles?q=replacement")).json()["articlesCount"] == 1
    assert (await api.get("/api/articles?q=original")).json()["articlesCount"] == 0

    await api.delete("/api/articles/replacement-text", alice)
    deleted = make_event(events.ARTICLE_DELETED, emitted(events.ARTICLE_DELETED, article_id))
    assert (await deliver(search, deleted)).status_code == 202
    assert count(settings, "SELECT count(*) FROM search_documents") == 0


async def test_search_takes_an_event_once_its_claim_and_reindex_one_statement(
    api: Api, api_for: ApiFactory, settings: Settings
) -> None:
    """The claim and the reindex are one statement: a duplicate changes nothing, even when
    the article changed since (its own event reindexes it)."""
    alice = await api.register("alice")
    search = await api_for("search")
    slug = (await api.create_article(alice, "Sleeping dragons"))["slug"]
    created = make_event(events.ARTICLE_CREATED, emitted(events.ARTICLE_CREATED, article_id_of(slug)))
    assert (await deliver(search, created)).status_code == 202
    await api.put(f"/api/articles/{slug}", alice, json={"article": {"title": "Waking gardens"}})

    assert (await deliver(search, created)).status_code == 202  # the broker repeats it

    assert count(settings, "SELECT count(*) FROM processed_events WHERE consumer = 'search'") == 1
    assert (await api.get("/api/articles?q=dragons")).json()["articlesCount"] == 1
    assert (await api.get("/api/articles?q=gardens")).json()["articlesCount"] == 0


async def test_cache_consumer_drops_every_view_embedding_a_changed_author(api: Api, api_for: ApiFactory) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Cached"))["slug"]
    await store.store_view(article_key(slug), {"stale": True})
    await store.store_view(profile_key("alice"), {"stale": True})
    await store.store_view(profile_key("old-alice"), {"stale": True})
    consumer = await api_for("cache")

    response = await deliver(
        consumer,
        make_event(
            events.USER_UPDATED,
            {"id": 1, "username": "alice", "previousUsername": "old-alice", "bio": None, "image": None},
        ),
    )

    assert response.status_code == 202
    for name in (article_key(slug), profile_key("alice"), profile_key("old-alice")):
        assert (await store.load_view(name))[0] is None


async def test_dead_letter_sink_parks_any_event_with_its_error(api_for: ApiFactory, settings: Settings) -> None:
    sink = await api_for("deadletter")
    event = make_event("com.example.anything", {"x": 1})
    event["knativeerrorcode"] = "500"
    event["knativeerrordest"] = "http://importer/"
    event["knativeerrordata"] = "Ym9vbQ=="

    first = await deliver(sink, event)
    again = await deliver(sink, event)

    assert (first.status_code, again.status_code) == (202, 202)
    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT event, error_code, error_dest FROM dead_letters").fetchall()
    assert len(rows) == 1
    stored, code, dest = rows[0]
    assert (code, dest) == ("500", "http://importer/")
    assert "knativeerrorcode" not in stored
    assert stored["data"] == {"x": 1}


@pytest.mark.parametrize("data", [{}, {"id": "not-a-number"}, [1, 2], "text"])
async def test_data_not_of_the_catalogued_shape_is_refused_not_retried(api_for: ApiFactory, data: Any) -> None:
    search = await api_for("search")
    response = await deliver(search, make_event(events.ARTICLE_CREATED, data))
    assert response.status_code == 422
    assert "data" in response.json()["errors"]


async def test_the_dead_letter_sink_parks_an_event_whatever_its_data(api_for: ApiFactory, settings: Settings) -> None:
    sink = await api_for("deadletter")
    response = await deliver(sink, make_event(events.ARTICLE_CREATED, "not what the schema says"))
    assert response.status_code == 202
    assert count(settings, "SELECT count(*) FROM dead_letters") == 1


@pytest.mark.parametrize(
    ("function", "event_type", "data", "field"),
    [
        ("search", events.ARTICLE_CREATED, {"id": 1}, "data"),
        ("search", events.ARTICLE_DELETED, {"id": 1, "slug": "s", "author": {"id": 1}, "extra": True}, "data"),
        ("cache", events.ARTICLE_DELETED, {"id": 1, "slug": "gone"}, "data"),
        (
            "cache",
            events.ARTICLE_FAVORITED,
            {"article": {"id": 1, "slug": ""}, "user": {"id": 1, "username": "u"}, "favoritesCount": 1},
            "article.slug",
        ),
        ("importer", events.ARTICLE_IMPORT_REQUESTED, {**IMPORT, "tagList": ["ok", 7]}, "tagList.1"),
    ],
)
async def test_data_that_does_not_match_its_schema_is_refused_before_the_handler_runs(
    api_for: ApiFactory, settings: Settings, function: str, event_type: str, data: Any, field: str
) -> None:
    consumer = await api_for(function)

    response = await deliver(consumer, make_event(event_type, data))

    assert response.status_code == 422  # the broker parks it at once: no retry can make it valid
    assert field in response.json()["errors"]
    assert count(settings, "SELECT count(*) FROM processed_events") == 0


@pytest.mark.parametrize(
    "bug", [KeyError("id"), TypeError("unsupported operand"), ValueError("x"), AttributeError("x")]
)
async def test_a_handler_that_raises_on_a_valid_event_answers_500_and_the_retry_after_a_fix_succeeds(
    api: Api, api_for: ApiFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch, bug: Exception
) -> None:
    from quill.domain import search as index

    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Dragons of the north"))["slug"]
    event = make_event(events.ARTICLE_CREATED, emitted(events.ARTICLE_CREATED, article_id_of(slug)))
    search = await api_for("search")

    async def broken(*args: Any) -> None:
        raise bug

    monkeypatch.setattr(index, "reindex", broken)
    failed = await deliver(search, event)
    monkeypatch.undo()  # the fix is deployed; the broker's next attempt delivers the same event
    retried = await deliver(search, event)

    assert failed.status_code == 500  # retried by the broker, not parked as a bad event
    assert count(settings, "SELECT count(*) FROM processed_events") == 1
    assert retried.status_code == 202
    assert (await api.get("/api/articles?q=dragons")).json()["articlesCount"] == 1


async def test_the_cache_consumer_claims_an_event_only_once_its_handler_ran(
    api: Api, api_for: ApiFactory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cache writes nothing but its claim, which commits at once (``writes=False``): a
    handler that failed leaves the event unclaimed for the broker's retry, and a duplicate
    drops nothing again."""
    from quill.domain.outbox import Transaction

    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Cached twice"))["slug"]
    event = make_event(
        events.ARTICLE_FAVORITED,
        {
            "article": {"id": article_id_of(slug), "slug": slug},
            "user": {"id": 1, "username": "alice"},
            "favoritesCount": 1,
        },
    )
    consumer = await api_for("cache")
    recorded = Transaction.changed

    def broken(self: Transaction, type: str, data: dict[str, Any]) -> None:
        raise KeyError("article")

    monkeypatch.setattr(Transaction, "changed", broken)
    failed = await deliver(consumer, event)
    monkeypatch.setattr(Transaction, "changed", recorded)
    assert failed.status_code == 500
    assert count(settings, "SELECT count(*) FROM processed_events") == 0

    await store.store_view(article_key(slug), {"stale": True})
    assert (await deliver(consumer, event)).status_code == 202
    assert (await store.load_view(article_key(slug)))[0] is None
    assert count(settings, "SELECT count(*) FROM processed_events") == 1

    _, tombstone = await store.load_view(article_key(slug))
    await store.store_view(article_key(slug), {"fresh": True}, tombstone)  # the read after the drop
    assert (await deliver(consumer, event)).status_code == 202  # the same event again
    assert (await store.load_view(article_key(slug)))[0] == {"fresh": True}
    assert count(settings, "SELECT count(*) FROM processed_events") == 1
