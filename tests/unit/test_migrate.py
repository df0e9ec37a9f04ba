"""Migrations: ordered, recorded, idempotent and safe to run twice at once."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest

from quill.migrate import migrate, pending
from tests.conftest import Servers


@pytest.fixture
def empty_database(servers: Servers) -> Iterator[str]:
    name = f"quill_migrate_{secrets.token_hex(4)}"
    with psycopg.connect(servers.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    yield str(psycopg.conninfo.make_conninfo(servers.admin_url, dbname=name))
    with psycopg.connect(servers.admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)'.encode())


def test_versions_are_in_order() -> None:
    versions = [migration.version for migration in pending()]
    assert versions == sorted(versions)
    assert versions[0] == "0001_core"


def test_migrate_twice_applies_once(empty_database: str) -> None:
    assert migrate(empty_database) == [m.version for m in pending()]
    assert migrate(empty_database) == []
    with psycopg.connect(empty_database) as conn:
        count = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()
    assert count == (len(pending()),)


def test_concurrent_runs_apply_each_migration_exactly_once(empty_database: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: migrate(empty_database), range(4)))
    applied = [version for result in results for version in result]
    assert sorted(applied) == [m.version for m in pending()]


def test_an_edited_migration_is_refused(empty_database: str) -> None:
    migrate(empty_database)
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("UPDATE schema_migrations SET checksum = 'changed'")
    with pytest.raises(RuntimeError, match="changed after it was applied"):
        migrate(empty_database)


DEV = "quill_tools.migrations"
BROKER_TABLES = {"broker_events", "broker_deliveries"}


def _tables(database_url: str) -> set[str]:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {name for (name,) in rows}


def test_the_tooling_migrations_follow_the_runtime_ones_under_their_own_versions(empty_database: str) -> None:
    """As quill dev runs them: on a database whose 0002_events already made the local
    broker's tables (every database so far), they are recorded and change nothing."""
    runtime = migrate(empty_database)
    before = _tables(empty_database)
    assert before >= BROKER_TABLES
    assert migrate(empty_database, package=DEV) == [m.version for m in pending(DEV)] == ["dev_0001_local_broker"]
    assert migrate(empty_database, package=DEV) == []
    assert _tables(empty_database) == before
    assert not set(runtime) & {m.version for m in pending(DEV)}


def test_the_tooling_migrations_make_the_local_broker_tables_on_their_own(empty_database: str) -> None:
    migrate(empty_database, package=DEV)
    assert _tables(empty_database) == BROKER_TABLES | {"schema_migrations"}
