"""Logs and metrics: structlog's production chain, JSON to stdout, and Prometheus counters.

Configured once per process on first use. Label values are function names, route
templates and status codes, never raw paths or ids, so series stay bounded.

Metrics are counted as plain numbers and handed to prometheus_client only when
``/metrics`` is scraped: the library takes ~50 ms to import, which every cold start
paid before its first request although only a scrape needs it.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import orjson
import structlog
import structlog.tracebacks

from quill.settings import get_settings

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = [
    "DEPENDENCY_ERRORS",
    "EVENTS_CONSUMED",
    "EVENTS_PUBLISHED",
    "OUTBOX_PENDING",
    "PASSWORD_HASHES",
    "RATE_LIMITED",
    "bind_log_context",
    "configure_logging",
    "current_traceparent",
    "get_logger",
    "logs_at",
    "merge_log_context",
    "metrics_text",
    "observe_request",
    "registry",
    "set_traceparent",
    "start_log_context",
]


class _Child:
    """One labelled series of a ``Family``."""

    __slots__ = ("_key", "_values")

    def __init__(self, values: dict[tuple[str, ...], float], key: tuple[str, ...]) -> None:
        self._values, self._key = values, key

    def inc(self, amount: float = 1.0) -> None:
        self._values[self._key] += amount

    def set(self, value: float) -> None:
        self._values[self._key] = value


class Family:
    """A counter or gauge as plain numbers, with prometheus_client's ``labels().inc()`` shape.

    Updated on the event loop's one thread, like the request series, so without a lock."""

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...] = (), *, gauge: bool = False) -> None:
        self.name, self.documentation, self.label_names, self.gauge = name, documentation, labels, gauge
        self.values: dict[tuple[str, ...], float] = {}
        _FAMILIES.append(self)

    def labels(self, *values: str) -> _Child:
        key = tuple(map(str, values))
        self.values.setdefault(key, 0.0)
        return _Child(self.values, key)

    def set(self, value: float) -> None:
        self.labels().set(value)


_FAMILIES: list[Family] = []

DEPENDENCY_ERRORS = Family(
    "quill_dependency_errors_total",
    "Calls to a dependency that failed and were answered by a fallback.",
    ("dependency", "operation"),
)
EVENTS_PUBLISHED = Family(
    "quill_events_published_total",
    "Outbox events sent to the broker (sent) or left pending after a failed send (failed).",
    ("outcome",),
)
EVENTS_CONSUMED = Family(
    "quill_events_consumed_total",
    "CloudEvents handled by an event function, by consumer, type and outcome.",
    ("consumer", "type", "outcome"),
)
OUTBOX_PENDING = Family(
    "quill_outbox_pending",
    "Outbox events not yet accepted by the broker, as last counted by the relay.",
    gauge=True,
)
RATE_LIMITED = Family(
    "quill_rate_limited_total",
    "Requests refused with 429, by limit.",
    ("limit",),
)
PASSWORD_HASHES = Family(
    "quill_password_hashes_total",
    "argon2id hashes computed: a new password (hash) or a login's check (verify).",
    ("operation",),
)
for _operation in ("hash", "verify"):
    PASSWORD_HASHES.labels(_operation)
for _dependency, _operation in (
    ("redis", "cache"),
    ("redis", "near_cache"),
    ("redis", "rate_limit"),
    ("redis", "revocation"),
):
    DEPENDENCY_ERRORS.labels(_dependency, _operation)
for _limit in ("login_account", "login_ip", "writes"):
    RATE_LIMITED.labels(_limit)
for _outcome in ("sent", "failed"):
    EVENTS_PUBLISHED.labels(_outcome)


_DURATION_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Requests answered, by (function, route template, method, status); and per (function,
# route template, method): a count per duration bucket (the last one past every bound)
# and the sum of durations. Label values are bounded: templates and parsed methods.
_answered: dict[tuple[str, str, str, str], int] = {}
_durations: dict[tuple[str, str, str], list[float]] = {}


def observe_request(function: str, route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request. Plain numbers, not prometheus_client's Counter and
    Histogram: those take a lock per update (~6% of a cached read), and requests are
    counted on the event loop's one thread. ``_collect`` hands them over on scrape."""
    answered = (function, route, method, str(status))
    _answered[answered] = _answered.get(answered, 0) + 1
    timed = (function, route, method)
    series = _durations.get(timed)
    if series is None:
        series = _durations[timed] = [0.0] * (len(_DURATION_BOUNDS) + 2)
    series[bisect.bisect_left(_DURATION_BOUNDS, seconds)] += 1
    series[-1] += seconds


def _collect() -> Iterator[Any]:
    """Every series in Prometheus's shape, built when /metrics is scraped."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.utils import floatToGoString

    for family in _FAMILIES:
        kind = GaugeMetricFamily if family.gauge else CounterMetricFamily
        metric = kind(family.name, family.documentation, labels=family.label_names)
        for labels, value in list(family.values.items()):
            metric.add_metric(labels, value)
        yield metric
    answered = CounterMetricFamily(
        "quill_http_requests",
        "HTTP requests answered, by function, route template, method and status.",
        labels=["function", "route", "method", "status"],
    )
    for status_labels, count in list(_answered.items()):
        answered.add_metric(status_labels, count)
    yield answered
    durations = HistogramMetricFamily(
        "quill_http_request_duration_seconds",
        "Time to answer an HTTP request, by function and route template.",
        labels=["function", "route", "method"],
    )
    bounds = [*map(floatToGoString, _DURATION_BOUNDS), "+Inf"]
    for route_labels, series in list(_durations.items()):
        cumulative = itertools.accumulate(series[:-1])
        durations.add_metric(route_labels, list(zip(bounds, cumulative, strict=True)), series[-1])
    yield durations


class _Quill:
    """The collector prometheus_client's registry asks on each scrape."""

    def collect(self) -> Iterator[Any]:
        return _collect()


_registered: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    """prometheus_client's default registry with Quill's series in it: imported and filled on
    the first call (the first scrape), so a process that is never scraped never imports it."""
    global _registered
    if _registered is None:
        from prometheus_client import REGISTRY

        REGISTRY.register(_Quill())
        _registered = REGISTRY
    return _registered


_traceparent: ContextVar[str | None] = ContextVar("quill_traceparent", default=None)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the request being handled, carried into the events it emits."""
    return _traceparent.get()


def set_traceparent(value: str | None) -> None:
    _traceparent.set(value)


_log_context: ContextVar[dict[str, Any] | None] = ContextVar("quill_log_context", default=None)


def start_log_context(**fields: Any) -> dict[str, Any]:
    """Fields every log line of this request (or event) carries, replacing any before;
    returned, to read what the request bound since (``quill.edge.RequestContext``).

    One context variable holding a dict: structlog's ``bind_contextvars`` keeps one
    variable per key and walks the whole context on every line, ~5% of a cached read."""
    _log_context.set(fields)
    return fields


def bind_log_context(**fields: Any) -> None:
    context = _log_context.get()
    if context is None:
        _log_context.set(fields)
    else:
        context.update(fields)


def merge_log_context(logger: Any, method: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """The structlog processor that adds the request's fields to a line."""
    context = _log_context.get()
    return {**context, **event_dict} if context else event_dict


_configured = False
_level = logging.INFO


def logs_at(level: int) -> bool:
    """Whether a line at ``level`` would be written: a caller can skip building it."""
    return level >= _level


def configure_logging() -> None:
    """Set up structlog (and route stdlib logging through it) once per process."""
    global _configured, _level
    if _configured:
        return
    _configured = True
    settings = get_settings()
    level = _level = logging.getLevelNamesMapping()[settings.log_level.upper()]
    # Every request writes a line, so the JSON path is structlog's fast one: orjson
    # straight to bytes on stdout (stdlib json and print cost ~10% of a cached read).
    renderer: structlog.typing.Processor
    factory: structlog.typing.WrappedLogger
    if settings.log_json:
        renderer = structlog.processors.JSONRenderer()
        line_renderer: structlog.typing.Processor = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        factory = structlog.BytesLoggerFactory(sys.stdout.buffer)
    else:
        renderer = line_renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        factory = structlog.PrintLoggerFactory(sys.stdout)
    shared: list[structlog.typing.Processor] = [
        merge_log_context,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            # Tracebacks as data, without local variables: locals hold tokens and passwords.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            line_renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    for name in ("psycopg", "psycopg.pool", "uvicorn.error"):
        library = logging.getLogger(name)
        library.handlers = [handler]
        library.setLevel(max(level, logging.WARNING))
        library.propagate = False


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    """A lazy logger: safe at import time, configured by the first ``configure_logging()``."""
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


def metrics_text() -> tuple[bytes, str]:
    """The exposition of every series, and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry()), CONTENT_TYPE_LATEST
