"""Malformed, oversized and hostile input: a clear 4xx in the RealWorld error format, no change."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import AsyncIterator

import pytest

from quill.domain import fields
from quill.settings import use_settings
from tests.conftest import Api


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b"{not json", "body"),
        (b"", "body"),
        (b"[]", "body"),
        (b'"a string"', "body"),
        (b"null", "body"),
        (b'{"article": null}', "article"),
        (b'{"article": "text"}', "article"),
        (b'{"article": []}', "article"),
        (b'{"wrong": {}}', "article"),
        (b"\xff\xfe\x00garbage", "body"),
        (b'{"article": {"title": "\\ud800", "description": "d", "body": "b"}}', "body"),
    ],
)
async def test_malformed_bodies_return_422(api: Api, body: bytes, key: str) -> None:
    alice = await api.register("alice")

    response = await api.post("/api/articles", alice, content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert key in response.json()["errors"]
    assert (await api.get("/api/articles")).json()["articlesCount"] == 0


async def test_deeply_nested_json_returns_422(api: Api) -> None:
    alice = await api.register("alice")
    body = b'{"article": ' + b"[" * 500 + b"]" * 500 + b"}"
    response = await api.post("/api/articles", alice, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


async def test_oversized_body_returns_413(api: Api, settings_factory: object) -> None:
    alice = await api.register("alice")
    body = {"article": {"title": "t", "description": "d", "body": "x" * 2_000_000}}

    response = await api.post("/api/articles", alice, json=body)

    assert response.status_code == 413
    assert "body" in response.json()["errors"]
    assert (await api.get("/api/articles")).json()["articlesCount"] == 0


async def test_oversized_chunked_body_without_length_returns_413(api: Api) -> None:
    alice = await api.register("alice")

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"article": {"title": "t", "description": "d", "body": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}}'

    response = await api.post("/api/articles", alice, content=chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413


async def test_body_limit_is_configurable(api: Api, settings_factory: object) -> None:
    alice = await api.register("alice")
    from typing import Any, cast

    with use_settings(cast(Any, settings_factory)(max_body_bytes=2048)):
        response = await api.post(
            "/api/articles", alice, json={"article": {"title": "t", "description": "d", "body": "x" * 4096}}
        )
    assert response.status_code == 413


HOSTILE = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "%",
    "_",
    "\\",
    "<script>alert(1)</script>",
    "Robert\u200b'); --",
    "😀 emoji 😀",
    "a" * 300,
    "\u202etxt.exe",
]


@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_query_values_stay_data(api: Api, value: str) -> None:
    alice = await api.register("alice")
    await api.create_article(alice, "Only one", tagList=["safe"])

    for name in ("tag", "author", "favorited"):
        response = await api.get("/api/articles", params={name: value})
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert response.json() == {"articles": [], "articlesCount": 0}


@pytest.mark.parametrize("value", ["' OR 1=1 --", "%25", "..", "a%00b", "x" * 2000, "😀"])
async def test_hostile_path_values_are_404_not_500(api: Api, value: str) -> None:
    alice = await api.register("alice")
    for path in (f"/api/articles/{value}", f"/api/profiles/{value}", f"/api/articles/{value}/comments"):
        response = await api.get(path, alice)
        assert response.status_code == 404, (path, response.text)
    assert (await api.post(f"/api/articles/{value}/favorite", alice)).status_code == 404


async def test_nul_bytes_in_fields_return_422(api: Api) -> None:
    alice = await api.register("alice")
    response = await api.post(
        "/api/articles", alice, json={"article": {"title": "a\x00b", "description": "d", "body": "b"}}
    )
    assert response.status_code == 422
    response = await api.post(
        "/api/articles", alice, json={"article": {"title": "t", "description": "d", "body": "b", "tagList": ["x\x00"]}}
    )
    assert response.status_code == 422


async def test_nul_in_query_value_returns_422(api: Api) -> None:
    response = await api.get("/api/articles?tag=a%00b")
    assert response.status_code == 422


@pytest.mark.parametrize("value", HOSTILE[:8])
async def test_hostile_values_round_trip_as_inert_strings(api: Api, value: str) -> None:
    alice = await api.register("alice")

    created = await api.create_article(alice, value, description=value, body=value, tagList=[value])
    fetched = (await api.get(f"/api/articles/{created['slug']}")).json()["article"]
    by_tag = (await api.get("/api/articles", params={"tag": value.strip()})).json()

    assert (fetched["title"], fetched["description"], fetched["body"]) == (value, value, value)
    assert fetched["tagList"] == [value.strip()]
    assert by_tag["articlesCount"] == 1


async def test_hostile_usernames_register_and_resolve(api: Api) -> None:
    for name in ["o'brien", "ünïcødé", "a%b", "x<y>z", "semi;colon"]:
        token = await api.register(name.replace("%", "pct") if "%" in name else name)
        assert token


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    assert (await api.get("/api/nothing-here")).status_code == 404
    response = await api.request("PATCH", "/api/articles")
    assert response.status_code == 405
    assert "errors" in response.json()


_ARTICLE = b'{"article": {"title": "t", "description": "d", "body": "b"}}'


async def test_no_body_and_no_content_type_is_a_missing_body_422(api: Api) -> None:
    alice = await api.register("alice")
    response = await api.post("/api/articles", alice)
    assert response.status_code == 422


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "text/json"])
async def test_a_body_not_sent_as_json_is_415_and_changes_nothing(api: Api, content_type: str | None) -> None:
    alice = await api.register("alice")
    headers = {"Content-Type": content_type} if content_type else {}

    response = await api.post("/api/articles", alice, content=_ARTICLE, headers=headers)

    assert response.status_code == 415
    assert response.json() == {"errors": {"body": ["must be sent as application/json"]}}
    assert (await api.get("/api/articles")).json()["articlesCount"] == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON", "application/x+json"])
async def test_json_media_types_are_taken(api: Api, content_type: str) -> None:
    alice = await api.register("alice")
    response = await api.post("/api/articles", alice, content=_ARTICLE, headers={"Content-Type": content_type})
    assert response.status_code == 201


async def test_a_duplicate_key_takes_its_last_value(api: Api) -> None:
    alice = await api.register("alice")
    body = b'{"article": {"title": "first", "title": "second", "description": "d", "body": "b"}}'
    response = await api.post("/api/articles", alice, content=body, headers={"Content-Type": "application/json"})
    assert response.json()["article"]["title"] == "second"


async def test_a_nul_in_a_query_filter_says_so(api: Api) -> None:
    response = await api.get("/api/articles?tag=%00")
    assert response.status_code == 422
    assert response.json() == {"errors": {"tag": ["must not contain NUL characters"]}}


@pytest.mark.parametrize("title", ["bell\x07", "two\nlines", "tab\tbed", "c1\x85"])
async def test_a_title_with_a_control_character_is_422(api: Api, title: str) -> None:
    alice = await api.register("alice")
    article = {"title": title, "description": "d", "body": "multi\nline bodies are fine"}

    created = await api.post("/api/articles", alice, json={"article": article})

    assert created.status_code == 422
    assert created.json() == {"errors": {"title": ["must not contain control characters"]}}
    slug = (await api.create_article(alice, "Plain"))["slug"]
    updated = await api.put(f"/api/articles/{slug}", alice, json={"article": {"title": title}})
    assert updated.status_code == 422


@pytest.mark.parametrize(
    "username",
    ["alice\u200b", "al\u00adice", "\u200ealice", "alice\ufeff", "\u3164", "x\U000e0041", "bob\ue000"],
    ids=["zero-width-space", "soft-hyphen", "lrm", "bom", "hangul-filler", "tag-character", "private-use"],
)
async def test_usernames_with_invisible_characters_are_refused(api: Api, username: str) -> None:
    user = {"username": username, "email": "x@example.com", "password": "password123"}
    response = await api.post("/api/users", json={"user": user})
    assert response.status_code == 422
    assert "username" in response.json()["errors"]


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "alice\n"), ("email", "alice@example.com\n")],
)
async def test_a_trailing_line_break_is_not_hidden_by_the_pattern_anchor(api: Api, field: str, value: str) -> None:
    user = {"username": "alice", "email": "alice@example.com", "password": "password123", field: value}
    response = await api.post("/api/users", json={"user": user})
    assert response.status_code == 422
    assert field in response.json()["errors"]


async def test_a_compatibility_look_alike_is_the_same_username(api: Api) -> None:
    await api.register("alice")
    user = {"username": "\uff41\uff4c\uff49\uff43\uff45", "email": "a2@example.com", "password": "password123"}
    taken = await api.post("/api/users", json={"user": user})
    assert taken.status_code == 409

    user = {"username": "\uff42\uff4f\uff42", "email": "b@example.com", "password": "password123"}
    registered = await api.post("/api/users", json={"user": user})
    assert registered.status_code == 201
    assert registered.json()["user"]["username"] == "bob"


def test_every_format_character_this_python_knows_is_refused_in_usernames() -> None:
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)) in ("Cf", "Co", "Cc", "Zs", "Zl", "Zp"):
            checked = fields.Fields({})
            fields.check_username(checked, fields.normal_username("a" + chr(code)))
            assert "username" in checked.errors, hex(code)


async def test_the_length_limit_counts_the_normalised_username(api: Api) -> None:
    """U+3300 (SQUARE APAATO) is one character that NFKC writes as four."""
    user = {"username": "\u3300" * 64, "email": "sq@example.com", "password": "password123"}
    response = await api.post("/api/users", json={"user": user})
    assert response.status_code == 422
    assert response.json() == {"errors": {"username": ["is too long (maximum is 64 characters)"]}}
