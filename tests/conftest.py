"""Fixtures shared by every test: real PostgreSQL and Redis, isolated per test.

The session gets its own freshly migrated database (on the machine's PostgreSQL, or
on an embedded one when none answers) and each test its own Redis key prefix, with
every table emptied before it runs. Functions are built the production way, with
functions-framework's ``create_asgi_app``, and driven over ASGI by httpx.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from quill import cache, db, events
from quill.migrate import migrate
from quill.serving import create_app
from quill.settings import RateLimit, Settings, use_settings

# The contract and schemas beside the checkout (as CI has them), or wherever QUILL_SHARED_DIR says.
SHARED = Path(os.environ.get("QUILL_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))

MACHINE_POSTGRES = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MACHINE_REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

_TABLES = (
    "users, follows, articles, article_tags, favorites, comments, sessions, refresh_tokens, outbox,"
    " processed_events, search_documents, dead_letters, broker_events, broker_deliveries"
)


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def _redis_answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=1) as client:
            return bool(client.ping())
    except (redis.RedisError, OSError):
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class Servers:
    admin_url: str  # a maintenance database on the server (to create and drop others)
    database_url: str  # this session's own database
    redis_url: str


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    with ExitStack() as stack:
        admin_url, redis_url = MACHINE_POSTGRES, MACHINE_REDIS
        if not _postgres_answers(admin_url) or not _redis_answers(redis_url):
            from quill_tools import embedded

            folder = Path(tempfile.mkdtemp(prefix="quill-test-"))
            stack.callback(shutil.rmtree, folder, ignore_errors=True)
            started = embedded.start(
                folder,
                stack,
                postgres=not _postgres_answers(admin_url),
                redis=not _redis_answers(redis_url),
            )
            admin_url = started.database_url or admin_url
            redis_url = started.redis_url or redis_url
        name = f"quill_test_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        database_url = str(psycopg.conninfo.make_conninfo(admin_url, dbname=name))
        stack.callback(_drop_database, admin_url, name)
        migrate(database_url)
        migrate(database_url, package="quill_tools.migrations")  # the local broker's, as quill dev has them
        yield Servers(admin_url, database_url, redis_url)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture(scope="session")
def key_dir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="quill-keys-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def make_settings(servers: Servers, key_dir: Path, **changes: Any) -> Settings:
    base: dict[str, Any] = {
        "function": "test",
        "database_url": servers.database_url,
        "redis_url": servers.redis_url,
        "redis_prefix": f"quill-test:{secrets.token_hex(4)}:",
        "jwt_dev_key_path": str(key_dir / "dev-jwt-key.pem"),
        "db_pool_max": 10,
        "redis_timeout": 1.0,
        "login_per_account": RateLimit(0, 1),
        "login_per_ip": RateLimit(0, 1),
        "writes_per_user": RateLimit(0, 1),
        "log_json": True,
    }
    base.update(changes)
    return Settings(**base)


@pytest.fixture
def settings_factory(servers: Servers, key_dir: Path) -> Callable[..., Settings]:
    def build(**changes: Any) -> Settings:
        return make_settings(servers, key_dir, **changes)

    return build


@pytest.fixture
async def settings(servers: Servers, key_dir: Path, request: pytest.FixtureRequest) -> AsyncIterator[Settings]:
    """Fresh tables, a fresh Redis prefix; ``@pytest.mark.parametrize`` can't reach it, so
    tests that need other limits install their own with ``use_settings``."""
    chosen = make_settings(servers, key_dir)
    with psycopg.connect(servers.database_url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {_TABLES} RESTART IDENTITY CASCADE".encode())
    with use_settings(chosen):
        yield chosen
    client = redis.Redis.from_url(servers.redis_url)
    keys = list(client.scan_iter(match=chosen.redis_prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="session", autouse=True)
async def _close_pools() -> AsyncIterator[None]:
    yield
    await db.aclose()
    await cache.aclose()
    await events.aclose()  # the outbox's kept-alive connections to the sinks the tests ran


_apps: dict[str, Any] = {}


def function_app(name: str) -> Any:
    if name not in _apps:
        _apps[name] = create_app(name)
    return _apps[name]


class Api:
    """An httpx client on one function target, with helpers for the common set-up steps."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Token {token}"
        return await self.client.request(method, path, headers=headers, **kwargs)

    async def get(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", path, token, **kwargs)

    async def post(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", path, token, **kwargs)

    async def put(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", path, token, **kwargs)

    async def delete(self, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", path, token, **kwargs)

    async def register(self, username: str, password: str = "correct horse battery") -> str:
        response = await self.post(
            "/api/users",
            json={"user": {"username": username, "email": f"{username}@example.com", "password": password}},
        )
        assert response.status_code == 201, response.text
        token: str = response.json()["user"]["token"]
        return token

    async def create_article(self, token: str, title: str = "A title", **fields: Any) -> dict[str, Any]:
        article = {"title": title, "description": "About it", "body": "The body", **fields}
        response = await self.post("/api/articles", token, json={"article": article})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()["article"]
        return created


ApiFactory = Callable[[str], Awaitable[Api]]


@pytest.fixture
async def api_for(settings: Settings) -> AsyncIterator[ApiFactory]:
    """Build an ``Api`` on a function target: ``await api_for("posts")``."""
    clients: list[httpx.AsyncClient] = []

    async def build(target: str) -> Api:
        transport = httpx.ASGITransport(app=function_app(target), client=("203.0.113.7", 5000))
        client = httpx.AsyncClient(transport=transport, base_url="http://quill.test")
        clients.append(client)
        return Api(client)

    yield build
    for client in clients:
        await client.aclose()


@pytest.fixture
async def api(api_for: ApiFactory) -> Api:
    """The bundle: every route, routed by knative/routing.yaml."""
    return await api_for("bundle")
