"""The catalog in eventing/ and the code agree: types, schemas, emitters and subscriptions."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import psycopg
import pytest
import yaml

from quill import events
from quill.catalog import find_data_errors
from quill.routing import FUNCTIONS_DIR
from quill.settings import Settings
from quill_tools.broker import config as broker_config
from quill_tools.broker.filters import matches
from tests.conftest import Api

EVENTING = FUNCTIONS_DIR.parent / "eventing"
CATALOG: dict[str, Any] = yaml.safe_load((EVENTING / "catalog.yaml").read_text())
BY_TYPE = {entry["type"]: entry for entry in CATALOG["types"]}


def schema_of(event_type: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTING / BY_TYPE[event_type]["schema"]).read_text())
    return loaded


def test_the_catalog_lists_exactly_the_types_the_code_knows() -> None:
    assert set(BY_TYPE) == set(events.EMITTED) | {events.ARTICLE_IMPORT_REQUESTED}
    for event_type in BY_TYPE:
        assert event_type.startswith("io.quill.")
        assert event_type.endswith(".v1")


@pytest.mark.parametrize("event_type", sorted(BY_TYPE))
def test_every_schema_is_a_valid_json_schema(event_type: str) -> None:
    jsonschema.Draft202012Validator.check_schema(schema_of(event_type))


@pytest.mark.parametrize("event_type", sorted(BY_TYPE))
def test_emitters_and_consumers_are_real_functions(event_type: str) -> None:
    entry = BY_TYPE[event_type]
    for name in [*entry["emittedBy"], *entry["consumedBy"]]:
        assert name == "external" or (FUNCTIONS_DIR / name / "main.py").is_file(), name


@pytest.mark.parametrize("event_type", sorted(BY_TYPE))
def test_the_triggers_deliver_each_type_exactly_to_its_catalogued_consumers(event_type: str) -> None:
    config = broker_config.load()
    attributes = {"type": event_type, "source": "/quill/test", "id": "1", "specversion": "1.0"}
    subscribed = {trigger.subscriber for trigger in config.triggers if matches(trigger, attributes)}
    assert subscribed == set(BY_TYPE[event_type]["consumedBy"])


def test_no_trigger_takes_an_uncatalogued_type() -> None:
    config = broker_config.load()
    for trigger in config.triggers:
        attributes = {"type": "io.quill.unknown.thing.v1", "source": "/x", "id": "1", "specversion": "1.0"}
        assert not matches(trigger, attributes), trigger.name


def test_the_import_schema_example_is_valid() -> None:
    schema = schema_of(events.ARTICLE_IMPORT_REQUESTED)
    for example in schema["examples"]:
        jsonschema.validate(example, schema)
        assert find_data_errors(events.ARTICLE_IMPORT_REQUESTED, example) == {}


@pytest.mark.parametrize("event_type", sorted(t for t, entry in BY_TYPE.items() if entry["consumedBy"]))
def test_the_consumers_find_every_consumed_types_schema(event_type: str) -> None:
    assert "data" in find_data_errors(event_type, "not an object")


def test_a_type_outside_the_catalog_has_no_schema_to_pass() -> None:
    with pytest.raises(LookupError):
        find_data_errors("io.quill.unknown.thing.v1", {})


async def test_every_event_a_full_session_emits_is_catalogued_and_valid(api: Api, settings: Settings) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    await api.put("/api/user", alice, json={"user": {"bio": "Hi", "username": "alicia"}})
    await api.post("/api/profiles/bob/follow", alice)
    await api.delete("/api/profiles/bob/follow", alice)
    slug = (await api.create_article(bob, "Evented", tagList=["x"]))["slug"]
    await api.put(f"/api/articles/{slug}", bob, json={"article": {"title": "Evented again"}})
    slug = "evented-again"
    await api.post(f"/api/articles/{slug}/favorite", alice)
    await api.delete(f"/api/articles/{slug}/favorite", alice)
    comment = (await api.post(f"/api/articles/{slug}/comments", alice, json={"comment": {"body": "c"}})).json()
    await api.delete(f"/api/articles/{slug}/comments/{comment['comment']['id']}", alice)
    await api.delete(f"/api/articles/{slug}", bob)

    with psycopg.connect(settings.database_url) as conn:
        rows = conn.execute("SELECT type, source, subject, data FROM outbox ORDER BY id").fetchall()

    assert {row[0] for row in rows} == set(events.EMITTED)
    for event_type, source, subject, data in rows:
        jsonschema.validate(data, schema_of(event_type))
        assert find_data_errors(event_type, data) == {}  # the consumers' validator agrees
        assert source in {f"/quill/{name}" for name in BY_TYPE[event_type]["emittedBy"]}
        assert subject
