"""The rendered dev overlay, run for real from the image: wiring that schemas cannot see.

The tests run in file order against one deployment (conftest.py): what the image holds,
the migrations Job, every Service ready, requests across functions, every Trigger's
events, the outbox relay, and last, SIGTERM on every container.
"""

from __future__ import annotations

import collections
import json
import re
import shlex
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml

from quill_tools.broker.config import TriggerConfig
from quill_tools.broker.filters import matches
from tests.image import engine
from tests.image.conftest import Container, Deployment, Image, container_rss_kib, free_port, remote_ports
from tests.image.manifests import ed25519_keys, func_env, http_probe, memory_bytes
from tests.manifest.validation import ROOT

CATALOG = [entry["type"] for entry in yaml.safe_load((ROOT / "eventing" / "catalog.yaml").read_text())["types"]]
WORD = f"zq{uuid.uuid4().hex[:10]}"  # a word no other article has, for the search index


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Token {token}"}


def _json_from_python_in_image(docker: engine.Docker, image: Image, code: str) -> Any:
    """What ``code``, run by the image's Python with no network, prints as JSON."""
    done = docker("run", "--rm", "--network", "none", "--entrypoint", "python", image.tag, "-c", code)
    return json.loads(done.stdout)


def test_image_holds_only_what_the_functions_run(docker: engine.Docker, image: Image) -> None:
    probe = (
        "import importlib.util, json; "
        "print(json.dumps({m: importlib.util.find_spec(m) is not None for m in "
        "['pip', 'setuptools', 'pkg_resources', 'wheel', 'gunicorn', 'uvicorn_worker', 'watchdog', 'watchfiles', "
        "'websockets', 'dotenv', 'flask', 'uvloop', 'httptools', 'quill', 'quill_tools']}))"
    )
    found = _json_from_python_in_image(docker, image, probe)
    absent = ["pip", "setuptools", "pkg_resources", "wheel", "gunicorn", "uvicorn_worker", "watchdog", "watchfiles"]
    assert not any(found[name] for name in [*absent, "websockets", "dotenv", "quill_tools"]), found
    # functions_framework imports flask at its top (even for .aio); uvloop and httptools serve every request.
    assert all(found[name] for name in ("flask", "uvloop", "httptools", "quill")), found
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image.tag).stdout.strip()
    assert user == "65532:65532"


def test_quill_and_every_library_in_the_image_are_compiled_so_no_start_compiles(
    docker: engine.Docker, image: Image
) -> None:
    """A read-only container cannot write bytecode, so a source without it would be compiled
    on every cold start (~25 ms for Quill's own modules): the build compiles them all.
    (The standard library is Debian's, compiled by its packages.)"""
    probe = (
        "import importlib.util, json, pathlib, sysconfig; "
        "roots = [pathlib.Path('/app/functions'), pathlib.Path(sysconfig.get_path('purelib'))]; "
        "sources = [p for root in roots for p in root.rglob('*.py')]; "
        "print(json.dumps({'sources': len(sources), 'uncompiled': "
        "[str(p) for p in sources if not pathlib.Path(importlib.util.cache_from_source(str(p))).is_file()]}))"
    )
    found = _json_from_python_in_image(docker, image, probe)
    assert found["sources"] > 100, found  # Quill's own and every library's
    assert found["uncompiled"] == [], found


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_image_holds_exactly_the_lock(docker: engine.Docker, image: Image) -> None:
    listing = (
        "import importlib.metadata as m, json; "
        "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))"
    )
    listed = _json_from_python_in_image(docker, image, listing)
    installed = {_normal(name): version for name, version in listed.items()}
    pinned, unconditional = {}, set()
    for line in engine.LOCK.read_text().replace("\\\n", " ").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            pin, _, rest = line.partition(" --hash")[0].partition(";")
            name, version = pin.strip().split("==")
            pinned[_normal(name)] = version
            if not rest.strip():
                unconditional.add(_normal(name))
    assert {name: version for name, version in installed.items() if pinned.get(name) != version} == {}, (
        "the image holds packages the lock does not pin"
    )
    assert unconditional <= set(installed), f"not installed: {sorted(unconditional - set(installed))}"


def test_migrations_job_completes_and_can_run_again(deployment: Deployment) -> None:
    assert "migrations applied: 0001_core" in deployment.migrate_output, deployment.migrate_output
    (job,) = deployment.jobs.values()
    again = deployment.container_for(job.workload)
    again.name += "-again"
    deployment.jobs[job.workload.name + "-again"] = again
    deployment.start(again)
    assert deployment.wait_exit(again, timeout=120) == 0, deployment.logs(again)
    assert "none (up to date)" in deployment.logs(again)
    for container in (job, again):
        assert deployment.docker("diff", container.name).stdout == "", "the Job wrote outside its volumes"


def test_every_service_is_ready_and_live(deployment: Deployment) -> None:
    assert set(deployment.services) == {
        "login",
        "profile",
        "posts",
        "cache",
        "search",
        "importer",
        "deadletter",
        "outbox",
    }
    with httpx.Client(timeout=5) as client:
        for container in deployment.services.values():
            assert container.workload.container["ports"][0]["containerPort"] == 8080
            path, _ = http_probe(container.workload, "livenessProbe")
            assert client.get(container.url + path).status_code == 200, container.name
            context = container.workload.container.get("securityContext", {})
            if context.get("runAsNonRoot"):
                pid = deployment.docker("inspect", "--format", "{{.State.Pid}}", container.name).stdout.strip()
                uids = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line[:4] == "Uid:")
                assert "0" not in uids.split()[1:], f"{container.name} runs as root: {uids}"


@dataclass(frozen=True)
class Story:
    username: str
    token: str
    slug: str  # created, updated, favorited and unfavorited
    title: str  # its title after the update
    deleted_slug: str


@pytest.fixture(scope="module")
def story(deployment: Deployment) -> Story:
    login, profile, posts = (deployment.services[name].url for name in ("login", "profile", "posts"))
    username = f"writer{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=10) as client:
        user = {"username": username, "email": f"{username}@example.com", "password": "password123"}
        registered = client.post(login + "/api/users", json={"user": user})
        assert registered.status_code == 201, registered.text
        logged_in = client.post(
            login + "/api/users/login", json={"user": {"email": user["email"], "password": user["password"]}}
        )
        assert logged_in.status_code == 200, logged_in.text
        token = logged_in.json()["user"]["token"]
        me = client.get(login + "/api/user", headers=_auth(token))
        assert me.status_code == 200, me.text
        assert me.json()["user"]["username"] == username
        changed = client.put(login + "/api/user", headers=_auth(token), json={"user": {"bio": "writes in containers"}})
        assert changed.status_code == 200, changed.text
        # The token login signed (private key) is verified by the others (public key).
        seen = client.get(profile + f"/api/profiles/{username}", headers=_auth(token))
        assert seen.status_code == 200, seen.text
        assert seen.json()["profile"]["bio"] == "writes in containers"

        article = {"title": f"Containers {WORD}", "description": "from the image", "body": f"{WORD} body"}
        created = client.post(posts + "/api/articles", headers=_auth(token), json={"article": article})
        assert created.status_code == 201, created.text
        slug = created.json()["article"]["slug"]
        title = f"Containers, revised {WORD}"
        updated = client.put(posts + f"/api/articles/{slug}", headers=_auth(token), json={"article": {"title": title}})
        assert updated.status_code == 200, updated.text
        slug = updated.json()["article"]["slug"]
        favorited = client.post(posts + f"/api/articles/{slug}/favorite", headers=_auth(token))
        assert favorited.status_code == 200, favorited.text
        assert favorited.json()["article"]["favorited"] is True
        unfavorited = client.delete(posts + f"/api/articles/{slug}/favorite", headers=_auth(token))
        assert unfavorited.status_code == 200
        assert unfavorited.json()["article"]["favorited"] is False
        doomed = client.post(
            posts + "/api/articles",
            headers=_auth(token),
            json={"article": {"title": f"Doomed {WORD}", "description": "d", "body": "b"}},
        )
        assert doomed.status_code == 201, doomed.text
        deleted_slug = doomed.json()["article"]["slug"]
        deleted = client.delete(posts + f"/api/articles/{deleted_slug}", headers=_auth(token))
        assert deleted.status_code in (200, 204), deleted.text
        assert client.get(posts + f"/api/articles/{deleted_slug}").status_code == 404
        assert client.get(posts + "/api/articles/feed").status_code == 401  # no token, no feed
    return Story(username, token, slug, title, deleted_slug)


def test_a_token_from_login_works_across_functions(story: Story, deployment: Deployment) -> None:
    posts = deployment.services["posts"].url
    mine = httpx.get(posts + f"/api/articles?author={story.username}", headers=_auth(story.token), timeout=10)
    assert mine.status_code == 200, mine.text
    assert [article["title"] for article in mine.json()["articles"]] == [story.title]


def _triggers(overlay: list[dict[str, Any]]) -> list[TriggerConfig]:
    found = []
    for obj in overlay:
        if obj["kind"] == "Trigger":
            spec = obj["spec"]
            found.append(
                TriggerConfig(
                    obj["metadata"]["name"],
                    spec["subscriber"]["ref"]["name"],
                    dict(spec.get("filter", {}).get("attributes", {})),
                    list(spec.get("filters", [])),
                )
            )
    return found


def _deliver(client: httpx.Client, container: Container, headers: dict[str, str], body: bytes) -> httpx.Response:
    """POST one event to a subscriber in binary mode, as the broker does."""
    return client.post(container.url + "/", headers=headers, content=body)


def _event(type_: str, data: dict[str, Any], source: str = "/test/image") -> tuple[dict[str, str], bytes]:
    headers = {
        "ce-specversion": "1.0",
        "ce-id": str(uuid.uuid4()),
        "ce-type": type_,
        "ce-source": source,
        "content-type": "application/json",
    }
    return headers, json.dumps(data).encode()


def _produced(deployment: Deployment, type_: str) -> tuple[dict[str, str], bytes] | None:
    """An event the producers sent to K_SINK, as they sent it (binary mode: ce-* headers)."""
    sent = deployment.sink.of_type(type_)
    if not sent:
        return None
    event = sent[-1]
    assert event.headers.get("ce-specversion") == "1.0", f"{type_} did not arrive in binary mode"
    headers = {k: v for k, v in event.headers.items() if k.startswith("ce-") or k == "content-type"}
    return headers, event.body


def test_every_trigger_delivers_what_its_filter_accepts(story: Story, deployment: Deployment) -> None:
    triggers = _triggers(deployment.overlay)
    assert {trigger.subscriber for trigger in triggers} == {"cache", "search", "importer"}
    store = redis.Redis.from_url(deployment.redis_url)
    posts = deployment.services["posts"].url
    with httpx.Client(timeout=10) as client, psycopg.connect(deployment.database_url, autocommit=True) as conn:
        for trigger in triggers:
            subscriber = deployment.services[trigger.subscriber]
            accepted = [type_ for type_ in CATALOG if matches(trigger, {"type": type_})]
            assert accepted, f"Trigger {trigger.name} accepts no catalogued type"
            for type_ in accepted:
                if type_ == "io.quill.article.import.requested.v1":
                    data = {"author": story.username, "title": f"Imported {WORD}", "description": "d", "body": "b"}
                    event = _event(type_, data, source="/test/importer")
                else:
                    produced = _produced(deployment, type_)
                    assert produced is not None, f"no write produced {type_}, which Trigger {trigger.name} accepts"
                    event = produced
                stale = f"quill:article:{story.slug}"
                if trigger.subscriber == "cache" and type_ == "io.quill.article.updated.v1":
                    store.set(stale, json.dumps({"article": {"title": "stale"}}))
                answer = _deliver(client, subscriber, *event)
                assert answer.status_code == 202, (
                    f"{trigger.subscriber} answered {answer.text!r} to {type_}:\n{deployment.logs(subscriber)}"
                )
                assert answer.content == b"", "a reply body makes the broker treat it as a reply event"
                row = conn.execute(
                    "SELECT 1 FROM processed_events WHERE consumer = %s AND event_id = %s",
                    (trigger.subscriber, event[0]["ce-id"]),
                ).fetchone()
                assert row is not None, f"{trigger.subscriber} did not record {type_} as processed"
                again = _deliver(client, subscriber, *event)  # a redelivery changes nothing
                assert again.status_code == 202, again.text
                if trigger.subscriber == "cache" and type_ == "io.quill.article.updated.v1":
                    assert b"stale" not in (store.get(stale) or b""), "cache left the stale view in Redis"
            rejected = [type_ for type_ in CATALOG if type_ not in accepted]
            for type_ in rejected:
                # The filter keeps these away: the subscriber must not be one that needs them.
                answer = _deliver(client, subscriber, *_event(type_, {"id": 1}))
                assert answer.status_code == 400, f"{trigger.subscriber} takes {type_}, which its Trigger drops"
        found = client.get(posts + f"/api/articles?q={WORD}").json()["articles"]
        assert story.title in [article["title"] for article in found], f"search did not index the article: {found}"
        imported = client.get(posts + f"/api/articles?author={story.username}").json()["articles"]
        assert f"Imported {WORD}" in [article["title"] for article in imported], "importer did not publish"
    store.close()


def test_dead_letter_sink_keeps_what_it_is_sent(deployment: Deployment) -> None:
    sinks = {
        obj["spec"]["delivery"]["deadLetterSink"]["ref"]["name"]
        for obj in deployment.overlay
        if obj["kind"] in ("Trigger", "Broker") and "deadLetterSink" in obj["spec"].get("delivery", {})
    }
    assert sinks == {"deadletter"}
    headers, body = _event("io.quill.article.created.v1", {"id": -1})
    answer = httpx.post(deployment.services["deadletter"].url + "/", headers=headers, content=body, timeout=10)
    assert answer.status_code == 202, answer.text
    with psycopg.connect(deployment.database_url) as conn:
        kept = conn.execute(
            "SELECT count(*) FROM dead_letters WHERE event ->> 'id' = %s", (headers["ce-id"],)
        ).fetchone()
    assert kept == (1,)


def test_outbox_relay_sends_every_committed_event_exactly_once(story: Story, deployment: Deployment) -> None:
    sink = deployment.sink
    posts = deployment.services["posts"].url
    with httpx.Client(timeout=10) as client:
        sink.refusing = True  # the broker is away: the writes succeed and their events wait
        try:
            commented = client.post(
                posts + f"/api/articles/{story.slug}/comments",
                headers=_auth(story.token),
                json={"comment": {"body": "while the broker was away"}},
            )
            assert commented.status_code in (200, 201), commented.text
        finally:
            sink.refusing = False
        assert sink.refused, "the comment's event never reached K_SINK"
        ping_headers, ping_body = _event("dev.knative.sources.ping", {"reason": "relay pending outbox events"})
        relayed = client.post(deployment.services["outbox"].url + "/", headers=ping_headers, content=ping_body)
        assert relayed.status_code == 202, relayed.text
    with psycopg.connect(deployment.database_url) as conn:
        committed = [row[0] for row in conn.execute("SELECT event_id::text FROM outbox").fetchall()]
        waiting = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
    assert waiting == (0,), "events still wait in the outbox after the relay ran"
    arrived = collections.Counter(event.id for event in sink.accepted)
    assert set(arrived) == set(committed), (
        f"missing: {set(committed) - set(arrived)}, not committed: {set(arrived) - set(committed)}"
    )
    assert all(count == 1 for count in arrived.values()), f"sent more than once: {arrived.most_common(3)}"


def test_every_container_talks_only_to_the_servers_it_was_given(deployment: Deployment) -> None:
    """A missing DATABASE_URL or REDIS_URL falls back to 127.0.0.1's default ports, which on the
    host's network are the machine's own servers: only the connections show such a mismatch."""
    redis_port = int(deployment.redis_url.rsplit(":", 1)[1].split("/")[0])
    database_port = psycopg.conninfo.conninfo_to_dict(deployment.database_url).get("port") or 5432
    sink_port = int(deployment.sink.url.rsplit(":", 1)[1].strip("/"))
    allowed = {redis_port, int(database_port), sink_port}
    with httpx.Client(timeout=5) as client:
        for container in deployment.services.values():
            client.get(container.url + "/health/readiness")  # opens the pools if they were idle
    for name, container in deployment.services.items():
        ports = remote_ports(deployment.docker, container.name)
        assert ports <= allowed, f"{name} is connected to ports {sorted(ports - allowed)}, not given to it"
        env = {item["name"] for item in container.workload.container.get("env", [])}
        if "REDIS_URL" in env and name in {"login", "posts", "cache"}:
            assert redis_port in ports, f"{name} has no connection to the Redis it was given"


def test_memory_after_first_requests_is_within_limits(deployment: Deployment) -> None:
    for name, container in deployment.services.items():
        rss = container_rss_kib(deployment.docker, container.name)
        limit = container.workload.container["resources"]["limits"]["memory"]
        print(f"rss {name}: {rss / 1024:.1f} MiB (limit {limit})")
        assert rss * 1024 < memory_bytes(limit), f"{name} uses {rss} KiB"


def test_sigterm_drains_a_request_in_flight(story: Story, deployment: Deployment) -> None:
    posts = deployment.services["posts"]
    timeout = posts.workload.timeout_seconds
    assert timeout is not None
    body_started = threading.Event()
    title = f"In flight {WORD}"
    document = json.dumps({"article": {"title": title, "description": "d", "body": "b"}}).encode()

    def slowly() -> Iterator[bytes]:
        yield document[:10]
        body_started.set()
        time.sleep(2.0)  # SIGTERM arrives while the request is half-sent
        yield document[10:]

    results: list[httpx.Response | BaseException] = []

    def send() -> None:
        try:
            headers = {**_auth(story.token), "content-type": "application/json", "content-length": str(len(document))}
            results.append(httpx.post(posts.url + "/api/articles", headers=headers, content=slowly(), timeout=30))
        except BaseException as exc:
            results.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    assert body_started.wait(10)
    time.sleep(0.3)
    started = time.monotonic()
    deployment.docker("stop", "--time", str(timeout), posts.name, timeout=timeout + 30)
    took = time.monotonic() - started
    sender.join(30)
    state = deployment.state(posts)
    assert state["ExitCode"] == 0, f"posts exited {state['ExitCode']} on SIGTERM:\n{deployment.logs(posts)}"
    assert took < timeout, f"posts took {took:.1f} s to stop, more than its timeoutSeconds {timeout}"
    assert results, "the request in flight never returned"
    assert isinstance(results[0], httpx.Response), f"the request in flight was lost: {results}"
    assert results[0].status_code == 201, results[0].text
    with psycopg.connect(deployment.database_url) as conn:
        assert conn.execute("SELECT count(*) FROM articles WHERE title = %s", (title,)).fetchone() == (1,)


def test_every_container_stops_cleanly_and_wrote_nothing(deployment: Deployment) -> None:
    for container in deployment.services.values():
        timeout = container.workload.timeout_seconds
        assert timeout is not None
        if deployment.state(container)["Running"]:
            started = time.monotonic()
            deployment.docker("stop", "--time", str(timeout), container.name, timeout=timeout + 30)
            took = time.monotonic() - started
            assert took < timeout, f"{container.name} took {took:.1f} s to stop (timeoutSeconds {timeout})"
        state = deployment.state(container)
        assert state["ExitCode"] == 0, f"{container.name}: {state}"
        assert not state["OOMKilled"], f"{container.name}: {state}"
        diff = deployment.docker("diff", container.name).stdout
        assert diff == "", f"{container.name} wrote outside its volumes:\n{diff}"


def _examples() -> list[str]:
    """The `docker run` lines of the Dockerfile's header, continuation lines joined."""
    lines = [line.removeprefix("#").strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    found, current = [], ""
    for line in lines:
        if line.startswith("docker run") or current:
            current += line.removesuffix("\\").strip() + " "
            if not line.endswith("\\"):
                found.append(current.strip())
                current = ""
    return found


def test_the_dockerfile_examples_run_as_written(
    docker: engine.Docker, image: Image, database: str, redis_url: str
) -> None:
    migrate, serve = _examples()
    port = free_port()
    name = f"quill-example-{uuid.uuid4().hex[:6]}"

    def as_here(line: str) -> str:
        # Only what this machine needs: its engine has no bridge (so host network and a
        # PORT of its own instead of -p), and the image and servers have other names here.
        line = line.replace("postgresql://…", shlex.quote(database)).replace("redis://…", shlex.quote(redis_url))
        line = line.replace("-p 8080:8080", f"-e PORT={port} --detach --name {name}")
        line = line.replace(
            "docker run", f"{shlex.quote(engine.docker_cli())} run --network host --label {engine.LABEL}"
        )
        return re.sub(r" quill( migrate)?$", lambda found: f" {image.tag}{found.group(1) or ''}", line)

    with tempfile.TemporaryDirectory() as scratch:
        Path(scratch, "public.pem").write_text(ed25519_keys().public_pem)
        for line in (migrate, serve):
            done = subprocess.run(
                ["bash", "-c", as_here(line)], cwd=scratch, env=docker.env, capture_output=True, text=True, timeout=120
            )
            assert done.returncode == 0, f"{as_here(line)}\n{done.stdout}{done.stderr}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/tags", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            logs = docker("logs", name, check=False)
            pytest.fail(f"the Dockerfile's Run example never answered:\n{logs.stdout}{logs.stderr}")
    finally:
        docker("rm", "--force", name, check=False)


def test_the_bundle_runs_as_the_root_func_yaml_deploys_it(story: Story, deployment: Deployment) -> None:
    """The ninth target: `func deploy` at the repository root, every route in one process."""
    func = yaml.safe_load((ROOT / "func.yaml").read_text())
    env = func_env(func, deployment.maps, deployment.secrets)
    port = free_port()
    env |= {"PORT": str(port), "K_SINK": deployment.sink.url}  # the SinkBinding matches its emits-events label
    limit = func["deploy"]["options"]["resources"]["limits"]["memory"]
    name = f"quill-{deployment.run_id}-bundle"
    flags = ["--network", "host", "--memory", str(memory_bytes(limit)), "--cap-drop", "ALL"]
    # As func deploys it (no user, so the image's), plus a read-only root as the Services have: the image
    # needs only /tmp.
    flags += ["--security-opt", "no-new-privileges", "--read-only", "--tmpfs", "/tmp:rw,mode=1777"]  # noqa: S108
    argv = ["run", "--detach", "--name", name, "--label", engine.LABEL, *flags]
    argv += [item for key, value in sorted(env.items()) for item in ("--env", f"{key}={value}")]
    deployment.docker(*argv, deployment.image.tag, timeout=60)
    try:
        base = f"http://127.0.0.1:{port}"
        health = func["deploy"]["healthEndpoints"]
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=5) as client:
            while True:
                try:
                    if client.get(base + health["readiness"]).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"bundle never got ready:\n{deployment.docker('logs', name, check=False).stderr}")
                time.sleep(0.05)
            assert client.get(base + health["liveness"]).status_code == 200
            credentials = {"email": f"{story.username}@example.com", "password": "password123"}
            logged_in = client.post(base + "/api/users/login", json={"user": credentials})
            assert logged_in.status_code == 200, logged_in.text
            mine = client.get(base + "/api/user", headers=_auth(logged_in.json()["user"]["token"]))
            assert mine.status_code == 200, mine.text
            assert client.get(base + "/api/tags").status_code == 200
        deployment.docker("stop", "--time", "30", name, timeout=60)
        assert deployment.docker("inspect", "--format", "{{.State.ExitCode}}", name).stdout.strip() == "0"
        assert deployment.docker("diff", name).stdout == ""
    finally:
        deployment.docker("rm", "--force", name, check=False)
