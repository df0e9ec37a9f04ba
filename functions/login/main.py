"""The ``login`` function: registration, login, the current user, sessions and the JWKS."""

from __future__ import annotations

from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import Response

from quill import ratelimit, wire
from quill.auth import sessions, tokens
from quill.domain import users
from quill.domain.fields import Fields
from quill.domain.values import User
from quill.errors import token_invalid
from quill.function import Call, Endpoint, Function
from quill.http import NO_STORE, client_ip, empty, json, read_wrapped
from quill.reads import users as reads
from quill.settings import get_settings


def _signed_in(user: User, session: sessions.Session, status_code: int = 200) -> Response:
    """The RealWorld user body, with the session's refresh token in a header (an extension)."""
    token = tokens.issue_access_token(user.id, session.id, session.expires_at)
    return json(wire.user(user, token), status_code, {**NO_STORE, "X-Refresh-Token": session.refresh_token})


async def register(call: Call) -> Response:
    registration = users.parse_registration(await read_wrapped(call.request, "user"))
    user, session = await users.register(registration)
    return _signed_in(user, session, 201)


async def log_in(call: Call) -> Response:
    """Each attempt is counted before its password is checked, atomically: however many
    arrive at once, no more than the account's limit are checked in a window (a success
    resets the count; with Redis away the limit lets every attempt through, as all do)."""
    settings = get_settings()
    fields = Fields(await read_wrapped(call.request, "user"))
    email, password = fields.required("email", 254), fields.required("password", 256)
    fields.done()
    account = users.canonical_email(email)  # the bucket is the account the lookup finds
    await ratelimit.hit("login_ip", client_ip(call.request), settings.login_per_ip)
    await ratelimit.hit("login_account", account, settings.login_per_account)
    user = await users.authenticate(email, password)
    await ratelimit.reset("login_account", account)
    return _signed_in(user, await sessions.begin(user.id))


async def current_user(call: Call) -> Response:
    user = await reads.current_user(call.user_id)
    if user is None:
        raise token_invalid()
    return json(wire.user(user, call.token), headers=NO_STORE)


async def update_user(call: Call) -> Response:
    user = await users.get(call.user_id)
    if user is None:
        raise token_invalid()
    changes = users.parse_changes(await read_wrapped(call.request, "user"), user)
    updated = await users.update(user, changes, call.session_id)
    ends = await sessions.ends_at(call.session_id)
    if ends is None:
        raise token_invalid()
    return json(wire.user(updated, tokens.issue_access_token(updated.id, call.session_id, ends)), headers=NO_STORE)


async def refresh(call: Call) -> Response:
    """Trade a refresh token for a new access token and a new refresh token (an extension)."""
    fields = Fields(await read_wrapped(call.request, "user"))
    refresh_token = fields.required("refreshToken", 512)
    fields.done()
    session = await sessions.refresh(refresh_token)
    user = await users.get(session.user_id)
    if user is None:
        raise token_invalid()
    return _signed_in(user, session)


async def log_out(call: Call) -> Response:
    """End the caller's session: its access and refresh tokens stop working at once."""
    await sessions.revoke(call.session_id)
    return empty()


async def jwks(call: Call) -> Response:
    return json(tokens.jwks(), headers={"Cache-Control": "public, max-age=300"})


FUNCTION = Function(
    "login",
    [
        Endpoint("POST", "/api/users", register, auth="none"),
        Endpoint("POST", "/api/users/login", log_in, auth="none"),
        Endpoint("POST", "/api/users/refresh", refresh, auth="none"),
        Endpoint("POST", "/api/users/logout", log_out, auth="required"),
        Endpoint("GET", "/api/user", current_user, auth="required"),
        Endpoint("PUT", "/api/user", update_user, auth="required", write=True),
        Endpoint("GET", "/.well-known/jwks.json", jwks, auth="none"),
    ],
)


@http
async def login(request: Request) -> Response:
    return await FUNCTION(request)
