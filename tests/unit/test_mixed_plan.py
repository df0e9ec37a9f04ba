"""The mixed scenario's signed-in majority: the shares of the plan are the ones it claims."""

from __future__ import annotations

from quill_tools.bench.load import ANONYMOUS_ACTIONS
from quill_tools.bench.mixed import plan

ACCOUNTS = [{"username": f"user{n}", "token": f"token{n}", "slug": f"slug-{n}"} for n in range(4)]


def _signed_in(headers: tuple[tuple[str, str], ...]) -> bool:
    return any(name == "Authorization" for name, _ in headers)


def test_seventy_percent_of_the_requests_come_from_signed_in_users() -> None:
    scenario = plan(ACCOUNTS, signed_in_share=0.7)
    assert scenario.weights is not None
    total = sum(scenario.weights)
    signed_in = sum(w for r, w in zip(scenario.requests, scenario.weights, strict=True) if _signed_in(r.headers))
    assert abs(signed_in / total - 0.7) < 0.01


def test_signed_in_users_send_their_token_on_lists_and_anonymous_ones_only_read() -> None:
    scenario = plan(ACCOUNTS, signed_in_share=0.7)
    reads = {"/api/articles?limit=20", "/api/tags", "/api/articles?tag=topic1&limit=20"}
    lists = [r for r in scenario.requests if r.path in reads]
    assert any(_signed_in(r.headers) for r in lists)
    assert not all(_signed_in(r.headers) for r in lists)
    for anonymous in (r for r in scenario.requests if not _signed_in(r.headers)):
        assert anonymous.method == "GET"
        assert "feed" not in anonymous.path
    assert {"list", "article", "profile", "tags", "tag_filter"} == {name for name, _ in ANONYMOUS_ACTIONS}


def test_the_original_mix_keeps_its_anonymous_lists() -> None:
    scenario = plan(ACCOUNTS)
    assert all(not _signed_in(r.headers) for r in scenario.requests if r.path == "/api/articles?limit=20")
