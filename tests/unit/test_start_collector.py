"""The cyclic garbage collector during a start: off while ``quill serve`` imports and
builds its app (what it makes lives as long as the process), on once it serves.

Each check runs in a fresh interpreter: ``quill.cli.main`` turns the collector off, and
the test session's own collector must not be touched.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pytest

from quill import cli

# uvicorn.run is replaced by a record of the collector's state when the server would start.
_SERVE = """
import gc, json, uvicorn
collections = []
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
seen = {}
def serve(app, **options):
    seen.update(enabled=gc.isenabled(), frozen=gc.get_freeze_count(), collections=len(collections))
uvicorn.run = serve
from quill.cli import main
collections.clear()  # importing quill.cli (argparse) may run it: main turns it off
main(["serve", "posts", "--port", "0"])
print(json.dumps(seen))
"""


def test_quill_serve_collects_nothing_while_it_starts_then_serves_with_the_collector_on() -> None:
    done = subprocess.run([sys.executable, "-c", _SERVE], capture_output=True, text=True, check=True, timeout=60)
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["collections"] == 0  # with the collector on, importing the app runs it dozens of times
    assert seen["enabled"] is True
    assert seen["frozen"] > 10_000  # the start's objects, out of every later collection's walk


def test_quill_migrate_runs_with_the_collector_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``main`` turns it off for every command; one that does not serve turns it back on."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://quill@db.invalid:5432/quill")
    monkeypatch.setattr(cli, "_migrate", lambda url: None)
    try:
        cli.main(["migrate", "--data-dir", str(tmp_path)])
        assert gc.isenabled()
    finally:
        gc.enable()
