"""``quill bench versus``: what counts as served, and how the report judges the ratios."""

from __future__ import annotations

from typing import Any

import pytest

from quill_tools.bench.report import markdown
from quill_tools.bench.versus import served_per_second


def _cell(rate: float, requests: int, errors: int, p99: float = 5.0) -> dict[str, Any]:
    return {"requests_per_second": rate, "requests": requests, "errors": errors, "p99_ms": p99}


def test_only_successful_answers_count_as_served() -> None:
    assert served_per_second([_cell(1000, 2000, 0), _cell(800, 1600, 400)]) == pytest.approx((1000 + 600) / 2)
    assert served_per_second([_cell(0, 0, 0)]) == 0.0


def _pair(kind: str, ratio: float) -> dict[str, Any]:
    return {
        "kind": kind,
        "concurrency": 32,
        "seconds_per_slice": 2.0,
        "slice_ratios": [ratio, ratio],
        "served_per_second": 1000 * ratio,
        "over_served_per_second": 1000.0,
        "served_ratio": ratio,
        "errors": 0,
        "over_errors": 3,
        "steal_pct": 0.5,
        "slices": {"route": [_cell(1, 1, 0, 4.0), _cell(1, 1, 0, 6.0)], "over": [_cell(1, 1, 0, 20.0)] * 2},
    }


def _report(routes: dict[str, dict[str, Any]]) -> str:
    result = {
        "at": "now",
        "command": "quill bench versus --against http://other",
        "against": {"name": "fastapi", "url": "http://other"},
        "client": "wrk",
        "seed": {"users": 50, "articles_per_user": 20, "follows": 5, "prefix": "vsx"},
        "routes": routes,
    }
    return markdown("versus", result)


def test_the_report_says_when_quill_is_ahead_everywhere_and_at_three_times() -> None:
    report = _report({"list": _pair("read", 4.0), "create": _pair("write", 3.5), "login": _pair("unjudged", 0.5)})
    assert "| list | read | 4000 | 1000 | 4.00 | 5.0 | 20.0 | 0 | 3 | 0.5 |" in report
    assert "(all but login): yes." in report  # login behind is not judged
    assert "(the aim): yes." in report


def test_the_report_names_each_route_behind_and_each_under_three_times() -> None:
    report = _report({"list": _pair("read", 4.0), "user": _pair("read", 0.9), "create": _pair("write", 2.0)})
    assert "(all but login): NO, behind on user." in report
    assert "(the aim): NO: user 0.90x, create 2.00x." in report


def test_a_route_the_other_served_nothing_of_is_ahead_only_if_quill_served_something() -> None:
    served = {**_pair("read", 1.0), "served_ratio": None, "served_per_second": 10.0}
    neither = {**_pair("write", 1.0), "served_ratio": None, "served_per_second": 0.0}
    report = _report({"list": served, "create": neither})
    assert "| list | read | 10 | 1000 | - |" in report
    assert "(all but login): NO, behind on create." in report
