from __future__ import annotations

import pytest

from quill.settings import ConfigError, RateLimit, Settings, load_settings


def test_defaults_need_no_environment() -> None:
    settings = load_settings({})
    assert settings == Settings()
    assert settings.login_per_account == RateLimit(10, 900)


def test_values_are_read_and_typed() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://db/quill",
            "DB_POOL_MAX": "3",
            "RATE_LIMIT_WRITES": "20/10",
            "RATE_LIMIT_LOGIN_IP": "0",
            "CORS_ALLOW_ORIGINS": "https://a.example, https://b.example",
            "READINESS_REQUIRES_REDIS": "yes",
            "FUNCTION_TARGET": "posts",
        }
    )
    assert settings.database_url == "postgresql://db/quill"
    assert settings.db_pool_max == 3
    assert settings.writes_per_user == RateLimit(20, 10)
    assert settings.login_per_ip.limit == 0
    assert settings.cors_allow_origins == ("https://a.example", "https://b.example")
    assert settings.readiness_requires_redis is True
    assert settings.function == "posts"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DB_POOL_MAX": "lots"}, "DB_POOL_MAX"),
        ({"DB_POOL_MAX": "0"}, "DB_POOL_MAX"),
        ({"DB_POOL_MIN": "9", "DB_POOL_MAX": "2"}, "DB_POOL_MIN"),
        ({"RATE_LIMIT_WRITES": "10 per minute"}, "RATE_LIMIT_WRITES"),
        ({"READINESS_REQUIRES_REDIS": "maybe"}, "READINESS_REQUIRES_REDIS"),
        ({"QUILL_ENV": "staging"}, "QUILL_ENV"),
        ({"QUILL_ENV": "prod"}, "JWT_PRIVATE_KEY"),
        ({"QUILL_ENV": "prod", "JWT_PUBLIC_KEYS": "k", "REDIS_URL": "redis://r"}, "DATABASE_URL"),
        ({"QUILL_ENV": "prod", "JWT_PUBLIC_KEYS": "k", "DATABASE_URL": "postgresql://d"}, "REDIS_URL"),
        ({"JWT_PRIVATE_KEY_FILE": "/nonexistent/key.pem"}, "JWT_PRIVATE_KEY_FILE"),
        ({"LOG_LEVEL": "chatty"}, "LOG_LEVEL"),
        ({"REDIS_TIMEOUT": "-1"}, "REDIS_TIMEOUT"),
    ],
)
def test_bad_values_fail_with_the_variable_named(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_secrets_can_come_from_files(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    key = Path(str(tmp_path)) / "key.pem"
    key.write_text("PEM DATA")
    assert load_settings({"JWT_PRIVATE_KEY_FILE": str(key)}).jwt_private_key == "PEM DATA"
