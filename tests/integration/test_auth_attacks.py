"""Forged, stale and revoked tokens get a 401, never a 500 and never access."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from quill.auth.tokens import key_set
from tests.conftest import Api

INVALID = {"errors": {"token": ["is invalid"]}}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _sign(claims: dict[str, Any], **header: Any) -> str:
    keys = key_set()
    assert keys.signing_key is not None
    return jwt.encode(claims, keys.signing_key, algorithm="EdDSA", headers={"kid": keys.signing_kid, **header})


async def _assert_refused(api: Api, token: str) -> None:
    for path in ("/api/user", "/api/articles", "/api/profiles/alice"):  # required and optional routes
        response = await api.get(path, token)
        assert response.status_code == 401, (path, response.text)
        assert response.json() == INVALID
    response = await api.post("/api/articles", token, json={"article": {"title": "t", "description": "d", "body": "b"}})
    assert response.status_code == 401
    assert (await api.get("/api/articles")).json()["articlesCount"] == 0


async def test_alg_none_is_refused(api: Api) -> None:
    claims = _claims(await api.register("alice"))
    forged = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "." + _b64(json.dumps(claims).encode()) + "."
    await _assert_refused(api, forged)


async def test_hs256_signed_with_the_public_key_is_refused(api: Api) -> None:
    token = await api.register("alice")
    public = key_set().public_keys[jwt.get_unverified_header(token)["kid"]]
    secret = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": jwt.get_unverified_header(token)["kid"]}).encode())
    payload = _b64(json.dumps(_claims(token)).encode())
    import hashlib
    import hmac

    signature = _b64(hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    await _assert_refused(api, f"{header}.{payload}.{signature}")


async def test_token_signed_by_another_key_with_a_known_kid_is_refused(api: Api) -> None:
    claims = _claims(await api.register("alice"))
    forged = jwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA", headers={"kid": key_set().signing_kid})
    await _assert_refused(api, forged)


async def test_unknown_kid_is_refused(api: Api) -> None:
    claims = _claims(await api.register("alice"))
    await _assert_refused(api, _sign(claims, kid="someone-elses-key"))


async def test_tampered_payload_is_refused(api: Api) -> None:
    token = await api.register("alice")
    await api.register("bob")
    header, _, signature = token.split(".")
    claims = _claims(token)
    claims["sub"] = "2"
    await _assert_refused(api, f"{header}.{_b64(json.dumps(claims).encode())}.{signature}")


@pytest.mark.parametrize(
    "change",
    [
        {"exp": int(time.time()) - 60},
        {"nbf": int(time.time()) + 600},
        {"iss": "someone-else"},
        {"aud": "another-api"},
    ],
    ids=["expired", "not-yet-valid", "wrong-issuer", "wrong-audience"],
)
async def test_properly_signed_but_unacceptable_claims_are_refused(api: Api, change: dict[str, Any]) -> None:
    claims = _claims(await api.register("alice"))
    claims.update(change)
    await _assert_refused(api, _sign(claims))


async def test_a_token_accepted_before_is_refused_once_it_expires(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Verified tokens are remembered; their expiry is still checked on every request."""
    token = await api.register("alice")
    assert (await api.get("/api/user", token)).status_code == 200
    expires = _claims(token)["exp"]
    monkeypatch.setattr(time, "time", lambda: expires + 6.0)  # past the 5 s leeway
    await _assert_refused(api, token)


@pytest.mark.parametrize(
    "header",
    ["Token", "Token ", "Basic YWxpY2U6cGFzcw==", "Token not.a.jwt", "Token a.b", "Bearer ....", "Token \u00e9t\u00e9"],
)
async def test_garbage_authorization_headers_are_401_not_500(api: Api, header: str) -> None:
    response = await api.get("/api/articles", headers={"Authorization": header.encode("utf-8")})
    assert response.status_code == 401
    assert response.json() == INVALID


async def test_revoked_token_is_refused_after_logout(api: Api) -> None:
    token = await api.register("alice")
    assert (await api.post("/api/users/logout", token)).status_code == 204
    await _assert_refused(api, token)


async def test_tokens_from_a_rotated_out_key_stop_working(api: Api, settings_factory: Any, tmp_path: Path) -> None:
    from quill.settings import use_settings

    token = await api.register("alice")
    new_key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with use_settings(settings_factory(jwt_private_key=new_key.decode())):
        response = await api.get("/api/user", token)
    assert response.status_code == 401
