"""The deployment spec of every function: the single source for its func.yaml and Knative Service.

``quill deploy --write`` renders ``functions/<name>/func.yaml``, the root ``func.yaml``
and ``knative/services/<name>.yaml`` from this table; a test fails if the committed
files drift from it, or if a function exists without an entry here.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUNDLE", "FUNCTIONS", "NAMESPACE", "FunctionSpec", "by_name"]

NAMESPACE = "quill"


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    invoke: str  # "http" (RealWorld routes) or "cloudevent" (fed by Triggers or a PingSource)
    description: str
    emits_events: bool = False  # gets K_SINK from the SinkBinding
    signs_tokens: bool = False  # holds the JWT private key
    verifies_tokens: bool = False  # holds the JWT public keys
    cluster_local: bool = True
    max_scale: int = 10
    target: int = 80  # concurrent requests per replica the autoscaler aims for
    container_concurrency: int = 100
    timeout_seconds: int = 30
    cpu_request: str = "100m"
    memory_request: str = "96Mi"
    memory_limit: str = "256Mi"

    @property
    def description_line(self) -> str:
        return self.description.rstrip(".")


FUNCTIONS: tuple[FunctionSpec, ...] = (
    FunctionSpec(
        "login",
        "http",
        "Registration, login, the current user, token refresh and logout, and the JWKS.",
        emits_events=True,
        signs_tokens=True,
        verifies_tokens=True,
        # argon2id takes ~19 MiB and ~50 ms of CPU per hash: fewer requests per replica.
        target=16,
        container_concurrency=20,
        cpu_request="250m",
        memory_request="128Mi",
        memory_limit="384Mi",
    ),
    FunctionSpec(
        "profile",
        "http",
        "Public profiles and following.",
        emits_events=True,
        verifies_tokens=True,
    ),
    FunctionSpec(
        "posts",
        "http",
        "Articles, the feed, favorites, comments, tags and search.",
        emits_events=True,
        verifies_tokens=True,
        max_scale=20,
    ),
    FunctionSpec("cache", "cloudevent", "Drops cached views that embed data another function changed.", max_scale=5),
    FunctionSpec("search", "cloudevent", "Keeps the full-text index of articles.", max_scale=5),
    FunctionSpec(
        "importer",
        "cloudevent",
        "Turns article-import events from outside producers into articles.",
        emits_events=True,
        max_scale=5,
    ),
    FunctionSpec("deadletter", "cloudevent", "The broker's dead-letter sink.", max_scale=2),
    FunctionSpec(
        "outbox",
        "cloudevent",
        "Relays outbox events that could not be sent at write time; woken by a PingSource.",
        emits_events=True,
        max_scale=1,
        timeout_seconds=120,
    ),
)

BUNDLE = FunctionSpec(
    "bundle",
    "http",
    "Every route in one service, for small installs (the root func.yaml).",
    emits_events=True,
    signs_tokens=True,
    verifies_tokens=True,
    cluster_local=False,
    target=50,
    container_concurrency=50,
    cpu_request="250m",
    memory_request="160Mi",
    memory_limit="512Mi",
)


def by_name(name: str) -> FunctionSpec:
    for spec in (*FUNCTIONS, BUNDLE):
        if spec.name == name:
            return spec
    raise LookupError(name)
