"""The cyclic garbage collector during a start: off while ``quill serve`` imports and
builds its app (what it makes lives as long as the process), on once it serves.

The serving check runs in a fresh interpreter, so that nothing the test session imported
counts; the others call ``quill.cli.main`` in this one and leave its collector on.
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


def test_quill_migrate_turns_the_collector_back_on_when_it_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``main`` turns it off for every command's start; it is on again once the command ends."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://quill@db.invalid:5432/quill")
    seen: list[bool] = []
    monkeypatch.setattr(cli, "_migrate", lambda url: seen.append(gc.isenabled()))
    try:
        cli.main(["migrate", "--data-dir", str(tmp_path)])
        assert seen == [False]  # a one-off: it ran as part of the start
        assert gc.isenabled()
    finally:
        gc.enable()


def test_a_command_that_fails_to_parse_leaves_the_collector_on() -> None:
    try:
        with pytest.raises(SystemExit):
            cli.main(["no-such-command"])
        assert gc.isenabled()
    finally:
        gc.enable()
