"""Configuration, read from the environment once per process (12-factor).

Nothing else in Quill reads ``os.environ``: every module asks ``get_settings()``.
Tests build ``Settings`` directly and install it with ``use_settings()``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = [
    "ConfigError",
    "RateLimit",
    "Settings",
    "get_settings",
    "load_settings",
    "use_settings",
]

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# The functions that read Authorization headers; the event functions never see a token.
_VERIFIES_TOKENS = frozenset({"login", "profile", "posts", "bundle"})


class ConfigError(Exception):
    """The environment holds a value Quill cannot use; the message names the variable."""


@dataclass(frozen=True)
class RateLimit:
    """At most ``limit`` hits per ``window`` seconds; ``limit == 0`` disables the limit."""

    limit: int
    window: int


@dataclass(frozen=True)
class Settings:
    function: str = "bundle"
    version: str = "0.1.0"
    environment: str = "dev"
    database_url: str = DEFAULT_DATABASE_URL
    db_pool_min: int = 1
    db_pool_max: int = 5
    db_pool_timeout: float = 5.0
    db_statement_timeout_ms: int = 5000
    redis_url: str = DEFAULT_REDIS_URL
    redis_prefix: str = "quill:"
    redis_timeout: float = 0.25
    cache_ttl: int = 60
    near_cache_size: int = 4096
    near_cache_seconds: float = 10.0
    near_cache_mb: int = 64
    jwt_private_key: str | None = None
    jwt_public_keys: tuple[str, ...] = ()
    jwt_dev_key_path: str = ".quill/dev-jwt-key.pem"
    jwt_issuer: str = "quill"
    jwt_audience: str = "quill-api"
    access_token_ttl: int = 0  # 0: an access token lives as long as its session
    refresh_token_ttl: int = 30 * 24 * 3600
    login_per_account: RateLimit = field(default_factory=lambda: RateLimit(10, 900))
    login_per_ip: RateLimit = field(default_factory=lambda: RateLimit(300, 60))
    writes_per_user: RateLimit = field(default_factory=lambda: RateLimit(300, 60))
    password_hash_concurrency: int = 2
    trusted_proxy_hops: int = 0
    max_body_bytes: int = 1_048_576
    cors_allow_origins: tuple[str, ...] = ("*",)
    readiness_requires_redis: bool = False
    log_level: str = "info"
    log_json: bool = True
    k_sink: str | None = None
    event_timeout: float = 2.0
    event_send_wait: float = 0.25
    outbox_batch: int = 100


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, zero: bool = False) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or (value == 0 and not zero):
        raise ConfigError(f"{name} must be {'zero or more' if zero else 'positive'}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in {"1", "true", "yes", "on"}:
        return True
    if raw in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _rate(env: Mapping[str, str], name: str, default: RateLimit) -> RateLimit:
    """Parse ``"<limit>/<seconds>"`` such as ``"10/900"``; ``"0"`` turns the limit off."""
    raw = env.get(name, "").strip()
    if raw == "":
        return default
    if raw == "0":
        return RateLimit(0, 1)
    limit, sep, window = raw.partition("/")
    try:
        parsed = RateLimit(int(limit), int(window)) if sep else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.limit < 0 or parsed.window < 1:
        raise ConfigError(f"{name} must look like '10/60' (hits per seconds), got {raw!r}")
    return parsed


def _secret(env: Mapping[str, str], name: str) -> str | None:
    """A secret comes inline (``NAME``) or from a mounted file (``NAME_FILE``)."""
    inline = env.get(name)
    if inline:
        return inline
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE points at {path!r}, which cannot be read: {exc}") from None


def _public_keys(env: Mapping[str, str]) -> tuple[str, ...]:
    """Extra verification keys (PEM), for key rotation: all of them are trusted."""
    bundle = _secret(env, "JWT_PUBLIC_KEYS")
    if not bundle:
        return ()
    marker = "-----END PUBLIC KEY-----"
    parts = [part.strip() + "\n" + marker for part in bundle.split(marker) if part.strip()]
    return tuple(part.strip() + "\n" for part in parts)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Build ``Settings`` from an environment, failing with a message that names the variable."""
    env = os.environ if env is None else env
    environment = env.get("QUILL_ENV", "dev").strip().lower()
    if environment not in {"dev", "prod"}:
        raise ConfigError(f"QUILL_ENV must be 'dev' or 'prod', got {environment!r}")
    settings = Settings(
        function=env.get("FUNCTION_TARGET", "bundle"),
        version=env.get("QUILL_VERSION", Settings.version),
        environment=environment,
        database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        db_pool_min=_int(env, "DB_POOL_MIN", 1),
        db_pool_max=_int(env, "DB_POOL_MAX", 5, minimum=1),
        db_pool_timeout=_float(env, "DB_POOL_TIMEOUT", 5.0),
        db_statement_timeout_ms=_int(env, "DB_STATEMENT_TIMEOUT_MS", 5000),
        redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
        redis_prefix=env.get("REDIS_PREFIX", "quill:"),
        redis_timeout=_float(env, "REDIS_TIMEOUT", 0.25),
        cache_ttl=_int(env, "CACHE_TTL", 60),
        near_cache_size=_int(env, "NEAR_CACHE_SIZE", 4096),
        near_cache_seconds=_float(env, "NEAR_CACHE_SECONDS", 10.0),
        near_cache_mb=_int(env, "NEAR_CACHE_MB", 64, minimum=1),
        jwt_private_key=_secret(env, "JWT_PRIVATE_KEY"),
        jwt_public_keys=_public_keys(env),
        jwt_dev_key_path=env.get("JWT_DEV_KEY_PATH", ".quill/dev-jwt-key.pem"),
        jwt_issuer=env.get("JWT_ISSUER", "quill"),
        jwt_audience=env.get("JWT_AUDIENCE", "quill-api"),
        access_token_ttl=_int(env, "ACCESS_TOKEN_TTL", 0),
        refresh_token_ttl=_int(env, "REFRESH_TOKEN_TTL", 30 * 24 * 3600, minimum=1),
        login_per_account=_rate(env, "RATE_LIMIT_LOGIN_ACCOUNT", RateLimit(10, 900)),
        login_per_ip=_rate(env, "RATE_LIMIT_LOGIN_IP", RateLimit(300, 60)),
        writes_per_user=_rate(env, "RATE_LIMIT_WRITES", RateLimit(300, 60)),
        password_hash_concurrency=_int(env, "PASSWORD_HASH_CONCURRENCY", 2, minimum=1),
        trusted_proxy_hops=_int(env, "TRUSTED_PROXY_HOPS", 0),
        max_body_bytes=_int(env, "MAX_BODY_BYTES", 1_048_576, minimum=1024),
        cors_allow_origins=tuple(
            origin.strip() for origin in env.get("CORS_ALLOW_ORIGINS", "*").split(",") if origin.strip()
        ),
        readiness_requires_redis=_bool(env, "READINESS_REQUIRES_REDIS", False),
        log_level=env.get("LOG_LEVEL", "info").lower(),
        log_json=_bool(env, "LOG_JSON", True),
        k_sink=env.get("K_SINK") or None,
        event_timeout=_float(env, "EVENT_PUBLISH_TIMEOUT", 2.0),
        event_send_wait=_float(env, "EVENT_SEND_WAIT", 0.25, zero=True),
        outbox_batch=_int(env, "OUTBOX_BATCH", 100, minimum=1),
    )
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError("DB_POOL_MIN must not exceed DB_POOL_MAX")
    if settings.log_level not in {"debug", "info", "warning", "error"}:
        raise ConfigError(f"LOG_LEVEL must be debug, info, warning or error, got {settings.log_level!r}")
    if (
        environment == "prod"
        and settings.function in _VERIFIES_TOKENS
        and not (settings.jwt_private_key or settings.jwt_public_keys)
    ):
        raise ConfigError(
            "QUILL_ENV=prod needs JWT_PRIVATE_KEY(_FILE) on login or JWT_PUBLIC_KEYS(_FILE) on the "
            "other functions; the generated dev key is for local runs only"
        )
    return settings


_current: Settings | None = None


def get_settings() -> Settings:
    """The process's settings, loaded on first use."""
    global _current
    if _current is None:
        _current = load_settings()
    return _current


@contextmanager
def use_settings(settings: Settings) -> Iterator[Settings]:
    """Install ``settings`` for the duration of a block (tests, the CLI)."""
    global _current
    previous, _current = _current, settings
    try:
        yield settings
    finally:
        _current = previous
