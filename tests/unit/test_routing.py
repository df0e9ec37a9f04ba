"""The router built from knative/routing.yaml sends each RealWorld path to its owner."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from quill.errors import NotFoundError
from quill.routing import FUNCTIONS_DIR, load_module, load_rules, resolve

OWNERS = {
    ("POST", "/api/users"): "login",
    ("POST", "/api/users/login"): "login",
    ("GET", "/api/user"): "login",
    ("PUT", "/api/user"): "login",
    ("GET", "/api/profiles/{username}"): "profile",
    ("POST", "/api/profiles/{username}/follow"): "profile",
    ("DELETE", "/api/profiles/{username}/follow"): "profile",
    ("GET", "/api/articles"): "posts",
    ("GET", "/api/articles/feed"): "posts",
    ("POST", "/api/articles"): "posts",
    ("GET", "/api/articles/{slug}"): "posts",
    ("PUT", "/api/articles/{slug}"): "posts",
    ("DELETE", "/api/articles/{slug}"): "posts",
    ("GET", "/api/articles/{slug}/comments"): "posts",
    ("POST", "/api/articles/{slug}/comments"): "posts",
    ("DELETE", "/api/articles/{slug}/comments/{id}"): "posts",
    ("POST", "/api/articles/{slug}/favorite"): "posts",
    ("DELETE", "/api/articles/{slug}/favorite"): "posts",
    ("GET", "/api/tags"): "posts",
    ("POST", "/api/users/refresh"): "login",
    ("POST", "/api/users/logout"): "login",
    ("GET", "/.well-known/jwks.json"): "login",
}


def _concrete(template: str) -> str:
    return re.sub(r"\{[^}]+\}", "sample-value", template)


@pytest.mark.parametrize(("route", "owner"), OWNERS.items(), ids=[f"{m} {p}" for m, p in OWNERS])
def test_every_route_resolves_to_the_function_that_serves_it(route: tuple[str, str], owner: str) -> None:
    method, template = route
    assert resolve(load_rules(), _concrete(template)) == owner
    endpoint, _ = load_module(owner).FUNCTION.match(method, _concrete(template))
    assert endpoint.path == template


def test_every_endpoint_of_every_function_is_routed_to_it() -> None:
    rules = load_rules()
    for name in ("login", "profile", "posts"):
        function = load_module(name).FUNCTION
        for endpoint in function.endpoints:
            if endpoint.path.startswith(("/health", "/metrics", "/version")):
                continue
            assert resolve(rules, _concrete(endpoint.path)) == name, endpoint.path


def test_users_prefix_does_not_swallow_user() -> None:
    rules = load_rules()
    assert resolve(rules, "/api/user") == "login"
    assert resolve(rules, "/api/userx") is None
    assert resolve(rules, "/health/readiness") is None


def test_a_route_removed_from_the_file_is_gone(tmp_path: Path) -> None:
    source = (FUNCTIONS_DIR.parent / "knative" / "routing.yaml").read_text()
    trimmed = source.replace("        - uri:\n            exact: /api/tags\n", "")
    assert trimmed != source
    (tmp_path / "routing.yaml").write_text(trimmed)
    assert resolve(load_rules(tmp_path / "routing.yaml"), "/api/tags") is None


API_OWNERS = {route: owner for route, owner in OWNERS.items() if route[1].startswith("/api/")}


@pytest.mark.parametrize(("route", "owner"), API_OWNERS.items(), ids=[f"{m} {p}/" for m, p in API_OWNERS])
def test_every_route_with_a_trailing_slash_goes_to_the_same_function_and_endpoint(
    route: tuple[str, str], owner: str
) -> None:
    method, template = route
    path = _concrete(template) + "/"
    assert resolve(load_rules(), path) == owner
    endpoint, _ = load_module(owner).FUNCTION.match(method, path)
    assert endpoint.path == template


def test_a_trailing_slash_names_no_other_resource() -> None:
    posts = load_module("posts").FUNCTION
    assert posts.match("GET", "/api/articles/")[0].path == "/api/articles"  # the list, not a slug ""
    assert posts.match("GET", "/api/articles/feed/")[0].path == "/api/articles/feed"
    with pytest.raises(NotFoundError):
        posts.match("GET", "/api/articles//")
