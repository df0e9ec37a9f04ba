"""tagList comes back in alphabetical order in every response, as both RealWorld suites check."""

from __future__ import annotations

from importlib import resources

import psycopg

from quill.settings import Settings
from tests.conftest import Api

_MIGRATION = resources.files("quill.migrations") / "0006_sorted_tags.sql"

SENT = ["training", "dragons", "Zebra", "apple"]
SORTED = ["Zebra", "apple", "dragons", "training"]  # code point order, as JavaScript's sort()


async def test_tag_list_is_alphabetical_on_create_get_update_lists_and_feed(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    assert (await api.post("/api/profiles/alice/follow", bob)).status_code == 200

    created = await api.create_article(alice, "Dragons", tagList=SENT)
    slug = created["slug"]
    assert created["tagList"] == SORTED

    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["tagList"] == SORTED
    assert (await api.get(f"/api/articles/{slug}", bob)).json()["article"]["tagList"] == SORTED
    assert (await api.get("/api/articles")).json()["articles"][0]["tagList"] == SORTED
    assert (await api.get("/api/articles?tag=dragons", bob)).json()["articles"][0]["tagList"] == SORTED
    assert (await api.get("/api/articles/feed", bob)).json()["articles"][0]["tagList"] == SORTED

    updated = await api.put(f"/api/articles/{slug}", alice, json={"article": {"tagList": ["training", "dragons"]}})
    assert updated.json()["article"]["tagList"] == ["dragons", "training"]
    assert (await api.get("/api/articles/feed", bob)).json()["articles"][0]["tagList"] == ["dragons", "training"]
    favorited = await api.post(f"/api/articles/{slug}/favorite", bob)
    assert favorited.json()["article"]["tagList"] == ["dragons", "training"]


async def test_the_migration_sorts_tag_lists_stored_in_the_order_sent(api: Api, settings: Settings) -> None:
    await api.register("alice")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO articles (slug, author_id, title, description, body, tag_list)"
            " VALUES ('old', 1, 'Old', 'd', 'b', %s)",
            (SENT,),
        )
        conn.execute(_MIGRATION.read_text(encoding="utf-8").encode())
        row = conn.execute("SELECT tag_list FROM articles WHERE slug = 'old'").fetchone()
    assert row is not None
    assert row[0] == SORTED
