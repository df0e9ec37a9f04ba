"""What every function serves besides its routes: health, metrics, version, CORS, logs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from quill.observability import merge_log_context
from tests.conftest import Api, ApiFactory

FUNCTIONS = ["login", "profile", "posts", "bundle"]


@pytest.mark.parametrize("target", FUNCTIONS)
async def test_every_function_answers_health_metrics_and_version(api_for: ApiFactory, target: str) -> None:
    api = await api_for(target)

    liveness = await api.get("/health/liveness")
    readiness = await api.get("/health/readiness")
    version = await api.get("/version")
    metrics = await api.get("/metrics")

    assert liveness.status_code == 200
    assert readiness.status_code == 200
    assert readiness.json() == {"status": "ready", "checks": {"database": "ok", "redis": "ok"}}
    assert version.json() == {"function": target, "version": "0.1.0"}
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "quill_http_requests_total" in metrics.text


async def test_metrics_label_requests_by_route_template_not_raw_path(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Counted"))["slug"]
    await api.get(f"/api/articles/{slug}")

    text = (await api.get("/metrics")).text

    assert 'route="/api/articles/{slug}"' in text
    assert f"/api/articles/{slug}" not in text


async def test_cors_preflight_allows_content_type_and_authorization(api: Api) -> None:
    response = await api.request(
        "OPTIONS",
        "/api/articles",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, authorization",
        },
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "content-type" in allowed
    assert "authorization" in allowed
    assert "PUT" in response.headers["access-control-allow-methods"]


async def test_cors_headers_on_normal_responses_including_errors(api: Api) -> None:
    ok = await api.get("/api/tags", headers={"Origin": "https://app.example"})
    error = await api.get("/api/user", headers={"Origin": "https://app.example"})
    assert ok.headers["access-control-allow-origin"] == "*"
    assert error.status_code == 401
    assert error.headers["access-control-allow-origin"] == "*"


async def test_cors_with_an_origin_list_allows_only_those(api: Api, settings_factory: object) -> None:
    from typing import cast

    from quill.settings import use_settings

    with use_settings(cast(Any, settings_factory)(cors_allow_origins=("https://good.example",))):
        good = await api.get("/api/tags", headers={"Origin": "https://good.example"})
        bad = await api.get("/api/tags", headers={"Origin": "https://evil.example"})
    assert good.headers["access-control-allow-origin"] == "https://good.example"
    assert good.headers["vary"] == "Origin"
    assert "access-control-allow-origin" not in bad.headers


async def test_one_log_line_per_request_with_trace_and_user_but_no_secrets(api: Api) -> None:
    token = await api.register("alice")
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    with capture_logs(processors=[merge_log_context]) as logs:
        response = await api.get("/api/user", token, headers={"traceparent": traceparent, "X-Request-Id": "req-42"})

    finished = [entry for entry in logs if entry["event"] == "request_finished"]
    assert len(finished) == 1
    assert response.headers["x-request-id"] == "req-42"
    line = finished[0]
    assert line["status"] == 200
    assert line["route"] == "/api/user"
    assert line["method"] == "GET"
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["request_id"] == "req-42"
    assert line["user_id"] == 1
    assert isinstance(line["duration_ms"], float)
    assert token not in json.dumps(logs, default=str)


async def test_the_request_id_is_functions_frameworks_execution_id_and_it_makes_none(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One id per request in Quill's logs and functions-framework's, the edge's winning
    over a client's ``Function-Execution-Id``; and the framework draws no id of its own."""
    import functions_framework.execution_id as framework

    taken: list[str | None] = []
    made: list[str] = []
    extract = framework._extract_context_from_headers

    def spy(headers: Any) -> Any:
        context = extract(headers)  # type: ignore[no-untyped-call]  # untyped library
        taken.append(context.execution_id)
        return context

    monkeypatch.setattr(framework, "_extract_context_from_headers", spy)

    def draw() -> str:
        made.append("drawn")
        return "drawn"

    monkeypatch.setattr(framework, "_generate_execution_id", draw)

    given = await api.get("/api/tags", headers={"X-Request-Id": "req-7", "Function-Execution-Id": "client-chosen"})
    fresh = await api.get("/api/tags")

    assert given.headers["x-request-id"] == "req-7"
    assert taken == ["req-7", fresh.headers["x-request-id"]]
    assert made == []


async def test_a_request_without_an_id_gets_a_fresh_one_and_probes_log_below_info(api: Api) -> None:
    with capture_logs(processors=[merge_log_context]) as logs:
        first = await api.get("/api/tags", headers={"X-Request-Id": "not an id: spaces"})
        second = await api.get("/api/tags")
        probe = await api.get("/health/liveness")

    ids = [first.headers["x-request-id"], second.headers["x-request-id"], probe.headers["x-request-id"]]
    assert all(len(given) == 16 and int(given, 16) >= 0 for given in ids)
    assert len(set(ids)) == 3
    finished = [entry for entry in logs if entry["event"] == "request_finished"]
    assert [entry["route"] for entry in finished] == ["/api/tags", "/api/tags"]  # the probe's line is debug
    assert [entry["request_id"] for entry in finished] == ids[:2]


async def test_unexpected_errors_are_a_json_500_with_no_detail(
    api_for: ApiFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    from quill.domain import articles

    async def broken() -> list[str]:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(articles, "tags", broken)
    api = await api_for("posts")

    with capture_logs() as logs:
        response = await api.get("/api/tags")

    assert response.status_code == 500
    assert response.json() == {"errors": {"server": ["internal error"]}}
    assert "secret" not in response.text
    assert any(entry["event"] == "request_failed" for entry in logs)
