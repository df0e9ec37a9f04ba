"""The request series: counted as plain numbers, exposed in Prometheus's own format."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from quill.observability import metrics_text, observe_request


def _samples(function: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(metrics_text()[0].decode()):
        for sample in family.samples:
            if sample.labels.get("function") == function:
                labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k in ("le", "status")))
                found[(sample.name, labels)] = sample.value
    return found


def test_counts_by_status_and_cumulative_buckets_with_bounds_inclusive() -> None:
    route = "/api/articles/{slug}"
    for seconds, status in ((0.0004, 200), (0.001, 200), (0.003, 404), (7.0, 200)):
        observe_request("metrics-test", route, "GET", status, seconds)

    samples = _samples("metrics-test")
    assert samples[("quill_http_requests_total", (("status", "200"),))] == 3
    assert samples[("quill_http_requests_total", (("status", "404"),))] == 1
    bucket = "quill_http_request_duration_seconds_bucket"
    assert samples[(bucket, (("le", "0.001"),))] == 2  # 0.001 itself falls in le="0.001"
    assert samples[(bucket, (("le", "0.005"),))] == 3
    assert samples[(bucket, (("le", "5.0"),))] == 3
    assert samples[(bucket, (("le", "+Inf"),))] == 4
    assert samples[("quill_http_request_duration_seconds_count", ())] == 4
    assert abs(samples[("quill_http_request_duration_seconds_sum", ())] - 7.0044) < 1e-9


def test_each_route_template_is_its_own_series() -> None:
    observe_request("metrics-test-2", "/api/tags", "GET", 200, 0.002)
    observe_request("metrics-test-2", "/api/articles", "POST", 201, 0.02)

    text = metrics_text()[0].decode()
    assert 'function="metrics-test-2",method="GET",route="/api/tags",status="200"} 1.0' in text
    assert 'function="metrics-test-2",method="POST",route="/api/articles",status="201"} 1.0' in text
