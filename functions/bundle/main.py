"""The ``bundle`` function: every route in one process, dispatched as the gateway would.

Each request goes to the function ``knative/routing.yaml`` names for its path, called
in-process; anything no route claims (health, metrics, version) is the bundle's own.
"""

from __future__ import annotations

from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill.function import Function
from quill.routing import load_function, load_rules, resolve

OWN = Function("bundle", [])


@http
async def bundle(request: Request) -> Response:
    name = resolve(load_rules(), request.scope["path"])
    if name is None:
        return await OWN(request)
    return await load_function(name)(request)
