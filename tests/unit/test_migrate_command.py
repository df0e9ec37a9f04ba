"""``quill migrate`` needs only the database: the migrations Job sets DATABASE_URL alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from quill import cli

URL = "postgresql://quill@db.invalid:5432/quill"


def test_migrate_reads_only_database_url_even_in_prod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The image bakes in QUILL_ENV=prod; the Job gives no JWT key, no Redis, and nothing else.
    for name in ("JWT_PRIVATE_KEY", "JWT_PRIVATE_KEY_FILE", "JWT_PUBLIC_KEYS", "JWT_PUBLIC_KEYS_FILE", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("QUILL_ENV", "prod")
    monkeypatch.setenv("FUNCTION_TARGET", "bundle")  # the image's default target, which verifies tokens
    monkeypatch.setenv("LOG_LEVEL", "not-a-level")  # a setting migrate never uses cannot stop it either
    monkeypatch.setenv("DATABASE_URL", URL)
    applied: list[str] = []
    monkeypatch.setattr(cli, "_migrate", applied.append)

    cli.main(["migrate", "--data-dir", str(tmp_path)])

    assert applied == [URL]
