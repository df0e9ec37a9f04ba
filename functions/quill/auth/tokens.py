"""Access tokens: EdDSA (Ed25519) JWTs with a ``kid``, verified locally, that expire with
their session (``quill.auth.sessions``), or sooner when ``ACCESS_TOKEN_TTL`` is set.

``login`` signs with the private key; every function verifies with the public keys
(the signing key's plus any listed in ``JWT_PUBLIC_KEYS`` for rotation) and never
calls ``login``. The same public keys are published as the JWKS the gateway uses.
With no key configured in dev, a key is generated once under ``.quill/`` and shared
by every local process.

PyJWT is imported by the first token issued or verified, and cryptography by the first
use of a key: a cold start's readiness probe needs neither, and the JWKS, ``login``'s
first request behind the gateway, needs only cryptography's Ed25519 (PyJWT loads every
algorithm it knows, ~60 ms of a start here). An Ed25519 PEM has one fixed DER form
(RFC 8410), so its 32 key bytes are read directly; anything else goes to cryptography's
``serialization``, whose import alone is ~10 ms of that first request.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from quill.errors import token_invalid
from quill.settings import ConfigError, Settings, get_settings

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = ["Claims", "KeySet", "decode_access_token", "issue_access_token", "jwks", "key_set"]

_ALGORITHM = "EdDSA"


@dataclass(frozen=True)
class Claims:
    """The verified contents of an access token, and the token itself (``GET /api/user``
    answers with the token it was asked with)."""

    user_id: int
    session_id: str
    token_id: str
    expires_at: int
    token: str = field(repr=False)  # a credential: never in a log line or a traceback


@dataclass(frozen=True)
class KeySet:
    """The keys a process signs and verifies tokens with, loaded once from its settings."""

    signing_key: Ed25519PrivateKey | None
    signing_kid: str | None
    public_keys: dict[str, Ed25519PublicKey]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes_raw()


def key_id(public: Ed25519PublicKey) -> str:
    """RFC 7638 thumbprint: stable for a key, different for every other key."""
    canonical = '{"crv":"Ed25519","kty":"OKP","x":"' + _b64(_raw(public)) + '"}'
    return _b64(hashlib.sha256(canonical.encode()).digest())


# The DER of an Ed25519 key up to its 32 key bytes, the same for every key (RFC 8410):
# PKCS#8 v1 without the optional public key (what openssl genpkey and cryptography write),
# and SubjectPublicKeyInfo.
_PRIVATE_DER_PREFIX = bytes.fromhex("302e020100300506032b657004220420")
_PUBLIC_DER_PREFIX = bytes.fromhex("302a300506032b6570032100")


def _ed25519_key_bytes(pem: str, label: str, prefix: bytes) -> bytes | None:
    """The 32 key bytes of an Ed25519 PEM in its fixed form, in canonical base64, else
    ``None``: cryptography then reads it, or says why it cannot."""
    lines = pem.strip().splitlines()
    if len(lines) < 3 or lines[0] != f"-----BEGIN {label}-----" or lines[-1] != f"-----END {label}-----":
        return None
    body = "".join(line.strip() for line in lines[1:-1])
    try:
        der = base64.b64decode(body, validate=True)
    except ValueError:
        return None
    # Canonical only: b64decode also takes surplus padding and stray low bits, which
    # cryptography refuses.
    if len(der) != len(prefix) + 32 or not der.startswith(prefix) or base64.b64encode(der).decode() != body:
        return None
    return der[len(prefix) :]


def _load_private(pem: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if (seed := _ed25519_key_bytes(pem, "PRIVATE KEY", _PRIVATE_DER_PREFIX)) is not None:
        return Ed25519PrivateKey.from_private_bytes(seed)
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"JWT_PRIVATE_KEY is not a readable PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("JWT_PRIVATE_KEY must be an Ed25519 key (openssl genpkey -algorithm ed25519)")
    return key


def _load_public(pem: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if (raw := _ed25519_key_bytes(pem, "PUBLIC KEY", _PUBLIC_DER_PREFIX)) is not None:
        return Ed25519PublicKey.from_public_bytes(raw)
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"JWT_PUBLIC_KEYS holds a key that is not readable PEM: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError("JWT_PUBLIC_KEYS must hold Ed25519 public keys")
    return key


def _dev_key(path: Path) -> str:
    """Read the local dev key, creating it atomically if no process has yet."""
    if not path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        scratch.write_bytes(pem)
        scratch.chmod(0o600)
        try:
            os.link(scratch, path)  # fails if another process won the race: use theirs
        except FileExistsError:
            pass
        finally:
            scratch.unlink()
    return path.read_text(encoding="utf-8")


def build_key_set(settings: Settings) -> KeySet:
    pem = settings.jwt_private_key
    if pem is None and not settings.jwt_public_keys:
        pem = _dev_key(Path(settings.jwt_dev_key_path))
    signing = _load_private(pem) if pem else None
    public: dict[str, Ed25519PublicKey] = {}
    if signing is not None:
        public[key_id(signing.public_key())] = signing.public_key()
    for extra in settings.jwt_public_keys:
        loaded = _load_public(extra)
        public[key_id(loaded)] = loaded
    signing_kid = key_id(signing.public_key()) if signing else None
    return KeySet(signing, signing_kid, public)


@cache
def _key_set_for(settings: Settings) -> KeySet:
    return build_key_set(settings)


def key_set() -> KeySet:
    return _key_set_for(get_settings())


def issue_access_token(user_id: int, session_id: str, session_ends: datetime) -> str:
    """A token for the session, expiring when it ends (or after ``ACCESS_TOKEN_TTL``, if set)."""
    import jwt

    settings = get_settings()
    keys = key_set()
    if keys.signing_key is None:
        raise ConfigError("this function has no JWT_PRIVATE_KEY, so it cannot issue tokens")
    now = int(time.time())
    expires = int(session_ends.timestamp())
    if settings.access_token_ttl:
        expires = min(expires, now + settings.access_token_ttl)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": str(user_id),
        "sid": session_id,
        "jti": secrets.token_urlsafe(16),
        "iat": now,
        "nbf": now,
        "exp": expires,
    }
    return jwt.encode(claims, keys.signing_key, algorithm=_ALGORITHM, headers={"kid": keys.signing_kid})


_LEEWAY_SECONDS = 5


def decode_access_token(token: str) -> Claims:
    """Verify signature, ``kid``, algorithm, time, issuer and audience; any doubt is a 401.

    A token that verified once is remembered (per settings) until it expires: a client
    sends the same token on every request, and checking it again costs ~0.1 ms of
    Ed25519 and base64 per request. Revocation is the session check's job, not this."""
    claims = _verified(token, _trust_of(get_settings()))
    if claims.expires_at + _LEEWAY_SECONDS < time.time():
        raise token_invalid()
    return claims


class _Trust(NamedTuple):
    """The settings a token's verdict depends on, which key the remembered verdicts.
    Not ``Settings`` itself: its generated hash walks every field on each call, ~3% of
    a signed-in read."""

    private_key: str | None
    public_keys: tuple[str, ...]
    dev_key_path: str
    issuer: str
    audience: str


_trusted: tuple[Settings, _Trust] | None = None


def _trust_of(settings: Settings) -> _Trust:
    """The ``_Trust`` of these settings, made once per settings object, not per request."""
    global _trusted
    if _trusted is None or _trusted[0] is not settings:
        trust = _Trust(
            settings.jwt_private_key,
            settings.jwt_public_keys,
            settings.jwt_dev_key_path,
            settings.jwt_issuer,
            settings.jwt_audience,
        )
        _trusted = (settings, trust)
    return _trusted[1]


@lru_cache(maxsize=4096)
def _verified(token: str, trust: _Trust) -> Claims:
    """Raises (and so remembers nothing) for a token that does not verify."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
        public = key_set().public_keys.get(str(header.get("kid")))
        if public is None or header.get("alg") != _ALGORITHM:
            raise token_invalid()
        payload: dict[str, Any] = jwt.decode(
            token,
            public,
            algorithms=[_ALGORITHM],
            audience=trust.audience,
            issuer=trust.issuer,
            leeway=_LEEWAY_SECONDS,
            options={"require": ["exp", "iat", "nbf", "sub", "jti", "sid", "iss", "aud"]},
        )
        return Claims(
            user_id=int(payload["sub"]),
            session_id=str(payload["sid"]),
            token_id=str(payload["jti"]),
            expires_at=int(payload["exp"]),
            token=token,
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise token_invalid() from None


def jwks() -> dict[str, list[dict[str, str]]]:
    return {
        "keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": _b64(_raw(public)), "kid": kid, "alg": _ALGORITHM, "use": "sig"}
            for kid, public in key_set().public_keys.items()
        ]
    }
