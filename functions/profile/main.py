"""The ``profile`` function: public profiles and following."""

from __future__ import annotations

from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill import wire
from quill.domain import profiles
from quill.function import Call, Endpoint, Function
from quill.http import json
from quill.reads import profiles as reads


async def get_profile(call: Call) -> Response:
    return json(wire.profile(await reads.profile(call.param("username"), call.viewer_id)))


async def follow(call: Call) -> Response:
    return json(wire.profile(await profiles.follow(call.user_id, call.param("username"))))


async def unfollow(call: Call) -> Response:
    return json(wire.profile(await profiles.unfollow(call.user_id, call.param("username"))))


FUNCTION = Function(
    "profile",
    [
        Endpoint("GET", "/api/profiles/{username}", get_profile),
        Endpoint("POST", "/api/profiles/{username}/follow", follow, auth="required", write=True),
        Endpoint("DELETE", "/api/profiles/{username}/follow", unfollow, auth="required", write=True),
    ],
)


@http
async def profile(request: Request) -> Response:
    return await FUNCTION(request)
