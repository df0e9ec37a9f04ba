"""The baselines Quill's timings are compared with, measured in the same run.

- floor: a trivial ``functions_framework.aio`` http function under uvicorn;
- ceiling: a bare Starlette app under uvicorn (no functions-framework at all);
- clients (cold start only): the floor's function in a module that also imports the
  client libraries every Quill HTTP function loads before its first real 200, and
  nothing of Quill. Its ratio to the floor is the least any function built on those
  libraries can reach as functions-framework starts them;
- clients_gc_off (cold start only): the same, started as ``quill serve`` starts, with the
  garbage collector off until it serves. Against it, a Quill target's ratio is its own
  code's share alone, without what the collector's setting saves on the libraries.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["CLIENT_LIBRARIES", "COLD_START_NAMES", "NAMES", "write", "write_sink"]

NAMES = ("floor", "ceiling")
COLD_START_NAMES = (*NAMES, "clients", "clients_gc_off")

# What `quill serve <function>` imports before its readiness probe can answer 200:
# PostgreSQL and Redis clients (the probe pings both) and logs; prometheus_client waits for
# the first scrape.
CLIENT_LIBRARIES = ("psycopg", "psycopg_pool", "redis.asyncio", "structlog")

_FLOOR = """
from functions_framework.aio import http

@http
async def floor(request):
    return "ok"
"""
_CLIENTS = (
    "".join(f"import {name}  # noqa: F401\n" for name in CLIENT_LIBRARIES)
    + """
from functions_framework.aio import http

@http
async def clients(request):
    return "ok"
"""
)
_SERVER = """
import os
import sys
import uvicorn
from functions_framework.aio import create_asgi_app

source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "%(name)s.py")
app = create_asgi_app(target="%(name)s", source=source)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
# quill serve's start: the collector off (here from the first line, a little earlier than
# quill.cli's main, after its own imports), frozen and on again before serving.
_GC_OFF_SERVER = "import gc\ngc.disable()\n" + _SERVER.replace("uvicorn.run(", "gc.freeze()\ngc.enable()\nuvicorn.run(")
_CEILING_SERVER = """
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def ok(request):
    return PlainTextResponse("ok")

app = Starlette(routes=[Route("/", ok)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def write(folder: Path, names: tuple[str, ...] = NAMES) -> dict[str, list[str]]:
    """Write the servers of ``names`` into ``folder``; return the argv of each (the port goes last)."""
    (folder / "floor.py").write_text(_FLOOR)
    (folder / "clients.py").write_text(_CLIENTS)
    for name in ("floor", "clients"):
        (folder / f"{name}_server.py").write_text(_SERVER % {"name": name})
    (folder / "clients_gc_off_server.py").write_text(_GC_OFF_SERVER % {"name": "clients"})
    (folder / "ceiling_server.py").write_text(_CEILING_SERVER)
    return {name: [sys.executable, str(folder / f"{name}_server.py")] for name in names}


# The K_SINK of a function measured alone: takes every event (202) and does nothing, so a
# write's figure is the function's own cost, as behind the cluster's broker ingress.
_SINK_SERVER = """
import sys
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    status = 202 if scope["method"] == "POST" else 200
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def write_sink(folder: Path) -> list[str]:
    """Write the event sink's server into ``folder``; return its argv (the port goes last)."""
    (folder / "sink_server.py").write_text(_SINK_SERVER)
    return [sys.executable, str(folder / "sink_server.py")]
