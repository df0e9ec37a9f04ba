"""Plain-SQL migrations, applied in file-name order by ``quill migrate``.

Each file runs in its own transaction and is recorded in ``schema_migrations``, with a
checksum: an applied file must never change (add a new one instead). ``quill dev`` also
applies the tooling's own migrations (``quill_tools.migrations``: the local broker's
tables) through the same runner, after these; their file names keep the versions apart. A
session-level advisory lock makes concurrent runs (two Jobs, two ``quill dev``) wait
for each other instead of racing; the loser then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import psycopg

__all__ = ["RUNTIME", "Migration", "applied", "migrate", "pending"]

_LOCK_ID = 0x5155_494C  # "QUIL"

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    """One schema migration: its version and the SQL that makes it."""

    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


RUNTIME = "quill.migrations"


def pending(package: str = RUNTIME) -> list[Migration]:
    """Every migration shipped in ``package`` (by default this package's), in order."""
    folder = resources.files(package)
    files = sorted((item for item in folder.iterdir() if item.name.endswith(".sql")), key=lambda item: item.name)
    return [Migration(item.name.removesuffix(".sql"), item.read_text(encoding="utf-8")) for item in files]


def applied(conn: psycopg.Connection[tuple[str, str]]) -> dict[str, str]:
    rows = conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
    return {version: checksum for version, checksum in rows}


def migrate(database_url: str, package: str = RUNTIME) -> list[str]:
    """Apply what is missing of ``package``'s migrations; return the versions applied by this call."""
    done: list[str] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
        try:
            conn.execute(_CREATE_TABLE)
            known = applied(conn)
            for migration in pending(package):
                if migration.version in known:
                    if known[migration.version] != migration.checksum:
                        raise RuntimeError(
                            f"migration {migration.version} changed after it was applied; "
                            "add a new migration instead of editing an old one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)",
                        (migration.version, migration.checksum),
                    )
                done.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
    return done
