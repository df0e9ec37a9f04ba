"""Configuration, read from the environment once per process (12-factor).

Each setting is declared once, as a field of ``Settings``: its variable, its parser, its
default and a line of help. ``load_settings`` reads every declaration; the README's
configuration table is ``table()``, and a test keeps the two equal. Nothing else in Quill
reads ``os.environ``: every module asks ``get_settings()``, and the CLI builds its
``Settings`` here (with defaults and overrides of its own) and installs them with
``use_settings``. Tests build ``Settings`` directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = [
    "ConfigError",
    "RateLimit",
    "Settings",
    "get_settings",
    "load_settings",
    "read",
    "table",
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


Parser = Callable[[str, str], Any]
"""``(value, variable) -> setting``; raises ``ConfigError`` naming the variable."""


def _text(value: str, variable: str) -> str:
    return value


def _optional(value: str, variable: str) -> str | None:
    return value or None


def _whole(minimum: int = 0) -> Parser:
    def parse(value: str, variable: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(f"{variable} must be a whole number, got {value!r}") from None
        if number < minimum:
            raise ConfigError(f"{variable} must be at least {minimum}, got {number}")
        return number

    return parse


def _positive(value: str, variable: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{variable} must be a number, got {value!r}") from None
    if number <= 0:
        raise ConfigError(f"{variable} must be positive, got {number}")
    return number


def _not_negative(value: str, variable: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{variable} must be a number, got {value!r}") from None
    if number < 0:
        raise ConfigError(f"{variable} must be zero or more, got {number}")
    return number


def _flag(value: str, variable: str) -> bool:
    word = value.strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"{variable} must be true or false, got {word!r}")


def _choice(*options: str) -> Parser:
    def parse(value: str, variable: str) -> str:
        word = value.strip().lower()
        if word not in options:
            raise ConfigError(f"{variable} must be one of {', '.join(options)}, got {word!r}")
        return word

    return parse


def _rate(value: str, variable: str) -> RateLimit:
    """``"<limit>/<seconds>"`` such as ``"10/900"``; ``"0"`` turns the limit off."""
    raw = value.strip()
    if raw == "0":
        return RateLimit(0, 1)
    limit, sep, window = raw.partition("/")
    try:
        parsed = RateLimit(int(limit), int(window)) if sep else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.limit < 0 or parsed.window < 1:
        raise ConfigError(f"{variable} must look like '10/60' (hits per seconds), got {raw!r}")
    return parsed


def _origins(value: str, variable: str) -> tuple[str, ...]:
    return tuple(origin.strip() for origin in value.split(",") if origin.strip())


def _public_keys(value: str, variable: str) -> tuple[str, ...]:
    """Extra verification keys (PEM), for key rotation: all of them are trusted."""
    marker = "-----END PUBLIC KEY-----"
    parts = [part.strip() + "\n" + marker for part in value.split(marker) if part.strip()]
    return tuple(part.strip() + "\n" for part in parts)


def _setting(
    default: Any,
    variable: str,
    parse: Parser,
    help: str,
    *,
    shown: str | None = None,
    secret: bool = False,
    blank: bool = False,
    prod: bool = False,
) -> Any:
    """One declaration. ``secret``: also read from a file named in ``<variable>_FILE``;
    ``blank``: an empty value means itself, not "unset"; ``prod``: required when
    ``QUILL_ENV=prod``, where the local default would quietly reach the wrong server."""
    return field(
        default=default,
        metadata={
            "variable": variable,
            "parse": parse,
            "help": help,
            "shown": shown,
            "secret": secret,
            "blank": blank,
            "prod": prod,
        },
    )


@dataclass(frozen=True)
class Settings:
    """Every setting a function reads, from the environment once per process (12-factor)."""

    function: str = _setting(
        "bundle", "FUNCTION_TARGET", _text, "the function this process serves (set by `quill serve` and the Services)"
    )
    version: str = _setting("0.1.0", "QUILL_VERSION", _text, "reported by `/version`")
    environment: str = _setting(
        "dev", "QUILL_ENV", _choice("dev", "prod"), "`prod` refuses to start without JWT keys, database and Redis"
    )
    port: int = _setting(8080, "PORT", _whole(1), "default port of `quill dev` / `quill serve`")
    database_url: str = _setting(
        DEFAULT_DATABASE_URL, "DATABASE_URL", _text, "PostgreSQL (libpq URL); required in prod", prod=True
    )
    db_pool_min: int = _setting(1, "DB_POOL_MIN", _whole(), "least connections a process keeps")
    db_pool_max: int = _setting(
        5, "DB_POOL_MAX", _whole(1), "most connections per process (replicas x max must fit the server)"
    )
    db_pool_timeout: float = _setting(
        5.0, "DB_POOL_TIMEOUT", _positive, "seconds to wait for a connection before answering 503"
    )
    db_statement_timeout_ms: int = _setting(5000, "DB_STATEMENT_TIMEOUT_MS", _whole(), "per-statement timeout")
    redis_url: str = _setting(
        DEFAULT_REDIS_URL,
        "REDIS_URL",
        _text,
        "Redis (`redis://`, `rediss://` or `unix://`); required in prod",
        prod=True,
    )
    redis_prefix: str = _setting("quill:", "REDIS_PREFIX", _text, "prefix of every key Quill writes", blank=True)
    redis_timeout: float = _setting(
        0.25, "REDIS_TIMEOUT", _positive, "seconds before a Redis call counts as failed and falls back"
    )
    cache_ttl: int = _setting(60, "CACHE_TTL", _whole(), "seconds a cached profile or article view lives")
    near_cache_size: int = _setting(
        4096,
        "NEAR_CACHE_SIZE",
        _whole(),
        "views and anonymous list pages each process keeps in memory in front of Redis (`0` = off)",
    )
    near_cache_seconds: float = _setting(
        10.0,
        "NEAR_CACHE_SECONDS",
        _positive,
        "longest a copy in memory lives; copies are dropped at once on every write that an invalidation reaches",
    )
    near_cache_mb: int = _setting(
        64,
        "NEAR_CACHE_MB",
        _whole(1),
        "memory those copies may take per process (a value over a quarter is never kept)",
    )
    jwt_private_key: str | None = _setting(
        None,
        "JWT_PRIVATE_KEY",
        _optional,
        "Ed25519 PEM private key; `login` only",
        shown="generated dev key",
        secret=True,
    )
    jwt_public_keys: tuple[str, ...] = _setting(
        (),
        "JWT_PUBLIC_KEYS",
        _public_keys,
        "extra Ed25519 PEM public keys to trust (rotation; the other functions' only keys)",
        secret=True,
    )
    jwt_dev_key_path: str = _setting(
        ".quill/dev-jwt-key.pem", "JWT_DEV_KEY_PATH", _text, "where the dev key is generated when no key is given"
    )
    jwt_issuer: str = _setting("quill", "JWT_ISSUER", _text, "token `iss`")
    jwt_audience: str = _setting("quill-api", "JWT_AUDIENCE", _text, "token `aud`")
    access_token_ttl: int = _setting(
        0,
        "ACCESS_TOKEN_TTL",
        _whole(),
        "cap on an access token's lifetime, seconds (`0`: it expires with its session)",
    )
    refresh_token_ttl: int = _setting(
        30 * 24 * 3600,
        "REFRESH_TOKEN_TTL",
        _whole(1),
        "session lifetime, seconds, from login or the last refresh; access tokens expire with it",
    )
    login_per_account: RateLimit = _setting(
        RateLimit(10, 900),
        "RATE_LIMIT_LOGIN_ACCOUNT",
        _rate,
        "passwords checked per account per window (`hits/seconds`, `0` = off); counted before the check,"
        " reset by a successful login",
    )
    login_per_ip: RateLimit = _setting(RateLimit(300, 60), "RATE_LIMIT_LOGIN_IP", _rate, "login attempts per address")
    writes_per_user: RateLimit = _setting(RateLimit(300, 60), "RATE_LIMIT_WRITES", _rate, "writes per user")
    password_hash_concurrency: int = _setting(
        2,
        "PASSWORD_HASH_CONCURRENCY",
        _whole(1),
        "argon2id hashes one process runs at once (19 MiB each; the rest wait up to 10 s, then 503):"
        " keep base RSS + this x 19 MiB under the memory limit",
    )
    trusted_proxy_hops: int = _setting(
        0,
        "TRUSTED_PROXY_HOPS",
        _whole(),
        "proxies outside the pod whose `X-Forwarded-For` entry is trusted for the client address; loopback"
        " entries (the queue-proxy and the sidecar) never count. `0`: the peer, which in a cluster is always"
        " the queue-proxy's `127.0.0.1` (`docs/deploy.md`)",
    )
    max_body_bytes: int = _setting(1_048_576, "MAX_BODY_BYTES", _whole(1024), "largest request body (413 beyond)")
    cors_allow_origins: tuple[str, ...] = _setting(
        ("*",), "CORS_ALLOW_ORIGINS", _origins, "comma-separated allowed origins (empty: none)", blank=True
    )
    readiness_requires_redis: bool = _setting(
        False,
        "READINESS_REQUIRES_REDIS",
        _flag,
        "make readiness fail when Redis is down (by default only PostgreSQL is required, since every request"
        " works without Redis)",
    )
    log_level: str = _setting("info", "LOG_LEVEL", _choice("debug", "info", "warning", "error"), "structlog level")
    log_json: bool = _setting(
        True, "LOG_JSON", _flag, "JSON lines (one `request_finished` per request), or console output"
    )
    k_sink: str | None = _setting(
        None,
        "K_SINK",
        _optional,
        "the broker URL events are sent to (injected by the SinkBinding; set by `quill dev`); unset, events wait"
        " in the outbox",
    )
    event_timeout: float = _setting(
        2.0, "EVENT_PUBLISH_TIMEOUT", _positive, "seconds a send to the broker may take before it is left to the relay"
    )
    event_send_wait: float = _setting(
        0.25,
        "EVENT_SEND_WAIT",
        _not_negative,
        "seconds a write waits for its events to reach the broker before it answers; the send goes on in the"
        " background (and what it leaves, the relay sends)",
    )
    outbox_batch: int = _setting(100, "OUTBOX_BATCH", _whole(1), "events the relay sends per batch")


_FIELDS = {declared.name: declared for declared in fields(Settings)}


def _raw(env: Mapping[str, str], declared: Any) -> str | None:
    """The value the environment gives a declaration, or None where it gives none."""
    variable: str = declared.metadata["variable"]
    value = env.get(variable)
    if not value and declared.metadata["secret"] and env.get(f"{variable}_FILE"):
        path = env[f"{variable}_FILE"]
        try:
            with open(path, encoding="utf-8") as handle:
                value = handle.read()
        except OSError as exc:
            raise ConfigError(f"{variable}_FILE points at {path!r}, which cannot be read: {exc}") from None
    if value is None or (not value.strip() and not declared.metadata["blank"]):
        return None
    return value


def read(name: str, env: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None) -> Any:
    """One setting alone (``quill migrate`` needs only the database; the CLI only the port),
    with its prod rule; the rest of the environment is not looked at."""
    env = os.environ if env is None else env
    declared = _FIELDS[name]
    raw = _raw(env, declared)
    if raw is not None:
        return declared.metadata["parse"](raw, declared.metadata["variable"])
    if declared.metadata["prod"] and read("environment", env) == "prod":
        variable = declared.metadata["variable"]
        raise ConfigError(f"QUILL_ENV=prod needs {variable}: the 127.0.0.1 default is for local runs only")
    return (defaults or {}).get(name, declared.default)


def load_settings(
    env: Mapping[str, str] | None = None,
    *,
    defaults: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build ``Settings`` from an environment, failing with a message that names the variable.

    ``defaults`` stand in for a declaration's default where the environment sets nothing;
    ``overrides`` win over the environment (``quill serve posts`` serves ``posts``)."""
    env = os.environ if env is None else env
    overrides = overrides or {}
    values = {name: overrides[name] if name in overrides else read(name, env, defaults) for name in _FIELDS}
    settings = Settings(**values)
    if settings.db_pool_min > settings.db_pool_max:
        raise ConfigError("DB_POOL_MIN must not exceed DB_POOL_MAX")
    if (
        settings.environment == "prod"
        and settings.function in _VERIFIES_TOKENS
        and not (settings.jwt_private_key or settings.jwt_public_keys)
    ):
        raise ConfigError(
            "QUILL_ENV=prod needs JWT_PRIVATE_KEY(_FILE) on login or JWT_PUBLIC_KEYS(_FILE) on the "
            "other functions; the generated dev key is for local runs only"
        )
    return settings


def _shown(declared: Any) -> str:
    if declared.metadata["shown"] is not None:
        return str(declared.metadata["shown"])
    value = declared.default
    if value is None or value == ():
        return "-"
    if isinstance(value, RateLimit):
        text = f"{value.limit}/{value.window}"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, tuple):
        text = ",".join(value)
    else:
        text = str(value)
    return f"`{text}`"


def table() -> str:
    """The README's configuration table, one row per declaration, in declaration order."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for declared in _FIELDS.values():
        variable = f"`{declared.metadata['variable']}`" + (" (`_FILE`)" if declared.metadata["secret"] else "")
        rows.append(f"| {variable} | {_shown(declared)} | {declared.metadata['help']} |")
    return "\n".join(rows) + "\n"


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


if __name__ == "__main__":
    print(table(), end="")
