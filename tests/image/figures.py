"""The figures in docs/deploy.md: image size, container cold start, from the image and its base.

    QUILL_IMAGE_TESTS=1 .tox/image/bin/python -m tests.image.figures

Cold start is from `docker run` to the first 200 of a real request (not a health probe),
for `posts`, `login` and a floor: a bare functions-framework function served the same way
(uvicorn, the same wheels, the same base), run as the overlay runs them. Seven rounds,
interleaved, median reported. RSS per function is printed by `tox -e image` itself
(test_memory_after_first_requests_is_within_limits), after the run's requests.
"""

from __future__ import annotations

import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psycopg

from tests.conftest import MACHINE_POSTGRES
from tests.image import engine
from tests.image.conftest import Deployment, Image, Sink, free_port
from tests.image.manifests import config_maps, ed25519_keys, fill_secrets, image_of, workloads
from tests.manifest.validation import ROOT, render

ROUNDS = 7
# What functions-framework's aio function needs at run time: its closure in the lock.
FLOOR_PACKAGES = {
    "functions-framework", "flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "blinker", "click",
    "cloudevents", "deprecation", "packaging", "starlette", "anyio", "idna", "typing-extensions", "uvicorn",
    "h11", "httptools", "uvloop",
}  # fmt: skip
FLOOR_MAIN = """\
from functions_framework.aio import http
from starlette.requests import Request
from starlette.responses import PlainTextResponse


@http
async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")
"""
FLOOR_SERVE = (
    "import os, uvicorn, functions_framework.aio as ff; "
    "uvicorn.run(ff.create_asgi_app(target='hello', source='/app/main.py'), host='0.0.0.0', "
    "port=int(os.environ['PORT']), ws='none', access_log=False, log_level='warning')"
)
FLOOR_DOCKERFILE = f"""\
ARG PYTHON_IMAGE
FROM ${{PYTHON_IMAGE}} AS builder
COPY wheels /wheels
COPY requirements.txt /requirements.txt
RUN python -m venv /opt/pip && python -m venv --without-pip /opt/floor \\
 && /opt/pip/bin/pip --python /opt/floor/bin/python install --no-index --find-links /wheels --require-hashes \\
      --no-deps -r /requirements.txt

FROM ${{PYTHON_IMAGE}}
COPY --from=builder /opt/floor /opt/floor
COPY main.py /app/main.py
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8080
USER 65532:65532
ENTRYPOINT ["/opt/floor/bin/python", "-c", "{FLOOR_SERVE}"]
"""


def build_floor(docker: engine.Docker, base: str) -> str:
    tag = "quill-floor:figures"
    wheels = engine.wheelhouse()
    lines = [
        line for line in engine._image_requirements().splitlines() if line.split("==", 1)[0].lower() in FLOOR_PACKAGES
    ]
    assert len(lines) == len(FLOOR_PACKAGES), lines
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch)
        shutil.copytree(wheels, context / "wheels", ignore=shutil.ignore_patterns(".*"))
        (context / "requirements.txt").write_text("\n".join(lines) + "\n")
        (context / "main.py").write_text(FLOOR_MAIN)
        (context / "Dockerfile").write_text(FLOOR_DOCKERFILE)
        docker(
            "build", "--network", "none", "--build-arg", f"PYTHON_IMAGE={base}", "-t", tag, str(context), timeout=600
        )
    return tag


def first_200(url: str, started: float, timeout: float = 60) -> float:
    with httpx.Client(timeout=2) as client:
        while time.monotonic() - started < timeout:
            try:
                if client.get(url).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            time.sleep(0.005)
    raise AssertionError(f"{url} never answered 200")


def main() -> None:
    overlay = render(ROOT / "infra" / "overlays" / "dev")
    found = {workload.name: workload for workload in workloads(overlay)}
    name = f"quill_figures_{secrets.token_hex(3)}"
    with psycopg.connect(MACHINE_POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    database = str(psycopg.conninfo.make_conninfo(MACHINE_POSTGRES, dbname=name))
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        with engine.engine() as docker:
            engine.remove_leftovers(docker)
            base = engine.standin_base(docker)
            tag = image_of(list(found.values()))
            took = engine.build(docker, base, tag)
            size = int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout)
            base_size = int(docker("image", "inspect", "--format", "{{.Size}}", base).stdout)
            floor = build_floor(docker, base)
            floor_size = int(docker("image", "inspect", "--format", "{{.Size}}", floor).stdout)
            keys = ed25519_keys()
            filled = fill_secrets(
                {
                    ("quill-db", "url"): database,
                    ("quill-redis", "url"): f"redis://127.0.0.1:{redis_port}/0",
                    ("quill-jwt", "private.pem"): keys.private_pem,
                    ("quill-jwt", "public.pem"): keys.public_pem,
                }
            )
            run = Deployment(
                docker,
                Image(tag, took),
                keys,
                filled,
                config_maps(overlay),
                database,
                "",
                Sink("http://127.0.0.1:9/"),
                overlay,
                secrets.token_hex(3),
            )
            job = run.container_for(found["quill-migrate"])
            run.start(job)
            assert run.wait_exit(job, 120) == 0, run.logs(job)
            docker("rm", job.name)
            real = {"posts": "/api/articles", "login": "/.well-known/jwks.json"}
            timings: dict[str, list[float]] = {"posts": [], "login": [], "floor": []}
            for round_ in range(ROUNDS):
                for target in ("posts", "login", "floor"):
                    if target == "floor":
                        port = free_port()
                        container = f"quill-floor-{round_}"
                        argv = ["run", "--detach", "--name", container, "--label", engine.LABEL, "--network", "host"]
                        argv += ["--read-only", "--cap-drop", "ALL", "--memory", str(256 * 2**20)]
                        argv += ["--env", f"PORT={port}", floor]
                        started = time.monotonic()
                        docker(*argv)
                        timings[target].append(first_200(f"http://127.0.0.1:{port}/", started))
                        docker("rm", "--force", container)
                        continue
                    service = run.container_for(found[target])
                    service.name += f"-{round_}"
                    run.start(service)
                    timings[target].append(first_200(service.url + real[target], service.started))
                    docker("rm", "--force", service.name)
            engine.remove_leftovers(docker)
    finally:
        redis.terminate()
        redis.wait(10)
        with psycopg.connect(MACHINE_POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
    mib = 2**20
    layers = (size - base_size) / mib
    print(f"image {size / mib:.0f} MiB (stand-in base {base_size / mib:.0f} MiB, Quill's layers {layers:.0f} MiB)")
    print(f"floor image {floor_size / mib:.0f} MiB; build from the cached wheelhouse {took:.1f} s")
    for target, values in timings.items():
        runs = " ".join(f"{value * 1000:.0f}" for value in values)
        print(f"cold start {target}: median {statistics.median(values) * 1000:.0f} ms ({runs} ms)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
