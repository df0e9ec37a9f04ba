"""The two baselines Quill's timings are compared with, measured in the same run.

- floor: a trivial ``functions_framework.aio`` http function under uvicorn;
- ceiling: a bare Starlette app under uvicorn (no functions-framework at all).
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["NAMES", "write"]

NAMES = ("floor", "ceiling")

_FLOOR = """
from functions_framework.aio import http

@http
async def floor(request):
    return "ok"
"""
_FLOOR_SERVER = """
import os
import sys
import uvicorn
from functions_framework.aio import create_asgi_app

source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "floor.py")
app = create_asgi_app(target="floor", source=source)
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""
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


def write(folder: Path) -> dict[str, list[str]]:
    """Write both servers into ``folder``; return the argv of each (the port goes last)."""
    (folder / "floor.py").write_text(_FLOOR)
    (folder / "floor_server.py").write_text(_FLOOR_SERVER)
    (folder / "ceiling_server.py").write_text(_CEILING_SERVER)
    return {name: [sys.executable, str(folder / f"{name}_server.py")] for name in NAMES}
