"""``tox -e image``: the image built from the lock, every workload of the dev overlay run from it.

Collected only when ``QUILL_IMAGE_TESTS=1`` (tox sets it): the suite needs root, dockerd and
debootstrap, and takes minutes. PostgreSQL is the machine's (a throwaway database), Redis
one started here; the overlay's own PostgreSQL StatefulSet and Redis stand for those.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.conftest import MACHINE_POSTGRES
from tests.image import engine
from tests.image.manifests import (
    Keys,
    ManifestError,
    RunSpec,
    Workload,
    config_maps,
    docker_run,
    ed25519_keys,
    fill_secrets,
    http_probe,
    image_of,
    resolve_env,
    workloads,
)
from tests.manifest.validation import ROOT, render

ENABLED = os.environ.get("QUILL_IMAGE_TESTS") == "1"
collect_ignore_glob = [] if ENABLED else ["test_*.py"]

READY_WITHIN = 60.0  # seconds from `docker run` to the first 200 of the readiness probe


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["ce-id"]

    @property
    def type(self) -> str:
        return self.headers["ce-type"]


@dataclass
class Sink:
    """K_SINK for the producers, as the SinkBinding gives them the broker: records binary-mode events."""

    url: str
    accepted: list[Received] = field(default_factory=list)
    refused: list[Received] = field(default_factory=list)
    refusing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def of_type(self, type_: str) -> list[Received]:
        with self.lock:
            return [event for event in self.accepted if event.type == type_]


def _sink_server(sink_holder: list[Sink]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            sink = sink_holder[0]
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            event = Received({key.lower(): value for key, value in self.headers.items()}, body)
            with sink.lock:
                refusing = sink.refusing
                (sink.refused if refusing else sink.accepted).append(event)
            self.send_response(503 if refusing else 202)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture(scope="session")
def sink() -> Iterator[Sink]:
    holder: list[Sink] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _sink_server(holder))
    holder.append(Sink(f"http://127.0.0.1:{server.server_address[1]}/"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def docker() -> Iterator[engine.Docker]:
    with engine.engine() as started:
        engine.remove_leftovers(started)
        try:
            yield started
        finally:
            engine.remove_leftovers(started)


@pytest.fixture(scope="session")
def overlay() -> list[dict[str, Any]]:
    return render(ROOT / "infra" / "overlays" / "dev")


@dataclass(frozen=True)
class Image:
    tag: str
    build_seconds: float


@pytest.fixture(scope="session")
def image(docker: engine.Docker, overlay: list[dict[str, Any]]) -> Image:
    """Built from the lock, tagged as the overlay names it, so each container runs ``image:`` as rendered."""
    base = engine.standin_base(docker)
    tag = image_of(workloads(overlay))
    return Image(tag, engine.build(docker, base, tag))


@pytest.fixture(scope="session")
def database() -> Iterator[str]:
    name = f"quill_image_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(MACHINE_POSTGRES, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
    except psycopg.Error as exc:
        pytest.fail(f"the image run needs the machine's PostgreSQL at {MACHINE_POSTGRES}: {exc}")
    yield str(psycopg.conninfo.make_conninfo(MACHINE_POSTGRES, dbname=name))
    with psycopg.connect(MACHINE_POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("the image run needs redis-server (apt-get install -y redis-server)")
    port = free_port()
    folder = tempfile.mkdtemp(prefix="quill-image-redis-")
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", folder],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class Container:
    workload: Workload
    name: str
    spec: RunSpec
    port: int | None = None
    started: float = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class Deployment:
    docker: engine.Docker
    image: Image
    keys: Keys
    secrets: dict[str, dict[str, str]]
    maps: dict[str, dict[str, str]]
    database_url: str
    redis_url: str
    sink: Sink
    overlay: list[dict[str, Any]]
    run_id: str
    migrate_output: str = ""
    services: dict[str, Container] = field(default_factory=dict)
    jobs: dict[str, Container] = field(default_factory=dict)

    def logs(self, container: Container) -> str:
        done = self.docker("logs", container.name, check=False, timeout=30)
        return (done.stdout + done.stderr)[-6000:]

    def state(self, container: Container) -> dict[str, Any]:
        done = self.docker("inspect", "--format", "{{json .State}}", container.name, timeout=30)
        state: dict[str, Any] = json.loads(done.stdout)
        return state

    def container_for(self, workload: Workload, extra_env: dict[str, str] | None = None) -> Container:
        env = resolve_env(workload, self.maps, self.secrets)
        port = None
        if workload.kind == "Service":
            ports = workload.container.get("ports", [])
            if len(ports) != 1:
                raise ManifestError(f"Service/{workload.name}: expected one port, found {ports}")
            # On a cluster Knative sets PORT to the containerPort (8080) and its queue-proxy fronts
            # it; here every container shares the host's network, so each gets its own PORT.
            port = free_port()
            env["PORT"] = str(port)
            env.update(K_SERVICE=workload.name, K_CONFIGURATION=workload.name, K_REVISION=f"{workload.name}-00001")
            if self._bound_to_sink(workload):
                env["K_SINK"] = self.sink.url
        env.update(extra_env or {})
        return Container(workload, f"quill-{self.run_id}-{workload.name}", docker_run(workload, env), port)

    def _bound_to_sink(self, workload: Workload) -> bool:
        """What the overlay's SinkBindings do: K_SINK for each Service their selector matches."""
        for binding in self.overlay:
            if binding["kind"] != "SinkBinding":
                continue
            subject = binding["spec"]["subject"]
            if subject.get("kind") != "Service" or not subject.get("apiVersion", "").startswith("serving.knative"):
                raise ManifestError(f"SinkBinding {binding['metadata']['name']}: subject not mapped: {subject}")
            wanted = subject.get("selector", {}).get("matchLabels")
            if wanted is None and subject.get("name") == workload.name:
                return True
            if wanted is not None and all(workload.labels.get(k) == v for k, v in wanted.items()):
                return True
        return False

    def start(self, container: Container) -> None:
        container.started = time.monotonic()
        self.docker(*container.spec.argv(container.name, engine.LABEL), timeout=60, what=f"docker run {container.name}")

    def wait_exit(self, container: Container, timeout: float) -> int:
        done = self.docker("wait", container.name, timeout=timeout, what=f"docker wait {container.name}")
        return int(done.stdout.strip())

    def wait_ready(self, container: Container) -> float:
        """Probe the readiness path as the manifest declares it until 200; return seconds from `docker run`."""
        path, port = http_probe(container.workload, "readinessProbe")
        declared = container.workload.container["ports"][0]["containerPort"]
        if port is not None and port != declared:
            raise ManifestError(f"{container.workload.name}: readiness probe port {port} is not the container's")
        # Knative's queue-proxy probes aggressively until the first success; so does this.
        deadline = container.started + READY_WITHIN
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(container.url + path).status_code == 200:
                        return time.monotonic() - container.started
                except httpx.TransportError:
                    pass
                if not self.state(container)["Running"]:
                    raise AssertionError(
                        f"{container.name} exited before its readiness probe {path} answered 200:\n"
                        f"{self.logs(container)}"
                    )
                time.sleep(0.05)
        raise AssertionError(
            f"{container.name}: readiness probe {path} on port {container.port} did not answer 200 "
            f"within {READY_WITHIN:.0f} s:\n{self.logs(container)}"
        )


@pytest.fixture(scope="session")
def deployment(
    docker: engine.Docker,
    image: Image,
    overlay: list[dict[str, Any]],
    database: str,
    redis_url: str,
    sink: Sink,
) -> Iterator[Deployment]:
    """The migrations Job run to completion, then every Knative Service started and ready."""
    keys = ed25519_keys()
    filled = fill_secrets(
        {
            ("quill-db", "url"): database,
            ("quill-redis", "url"): redis_url,
            ("quill-jwt", "private.pem"): keys.private_pem,
            ("quill-jwt", "public.pem"): keys.public_pem,
        }
    )
    found = Deployment(
        docker, image, keys, filled, config_maps(overlay), database, redis_url, sink, overlay, secrets.token_hex(3)
    )
    try:
        for workload in workloads(overlay):
            if workload.kind == "Job":
                job = found.container_for(workload)
                found.jobs[workload.name] = job
                found.start(job)
                code = found.wait_exit(job, timeout=120)
                found.migrate_output = found.logs(job)
                assert code == 0, f"Job {workload.name} exited {code}:\n{found.migrate_output}"
        services = [workload for workload in workloads(overlay) if workload.kind == "Service"]
        for workload in services:
            container = found.container_for(workload)
            found.services[workload.name] = container
            found.start(container)
        for container in found.services.values():
            found.wait_ready(container)
        yield found
    finally:
        names = [container.name for container in (*found.jobs.values(), *found.services.values())]
        if names:
            docker("rm", "--force", *names, check=False, timeout=120)


def container_rss_kib(docker: engine.Docker, name: str) -> int:
    """Resident memory of the container's main process (PID 1 inside), in KiB."""
    pid = docker("inspect", "--format", "{{.State.Pid}}", name, timeout=30).stdout.strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {name}")


def remote_ports(docker: engine.Docker, name: str) -> set[int]:
    """The remote ports of the established TCP connections the container's main process holds."""
    pid = docker("inspect", "--format", "{{.State.Pid}}", name, timeout=30).stdout.strip()
    inodes = set()
    for link in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(link)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and fields[9] in inodes:  # 01: ESTABLISHED
                ports.add(int(fields[2].rsplit(":", 1)[1], 16))
    return ports


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test shows the end of every container's log: the cause is usually there."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    found = getattr(item, "funcargs", {}).get("deployment")
    if report.when == "call" and report.failed and isinstance(found, Deployment):
        for name, container in found.services.items():
            tail = "\n".join(found.logs(container).splitlines()[-20:])
            report.sections.append((f"container log: {name} (last 20 lines)", tail))
