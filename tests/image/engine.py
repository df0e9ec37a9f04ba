"""The container engine for ``tox -e image``: a dockerd, the stand-in base, the wheelhouse, the image.

Nothing here can pull an image: only Debian's archive and PyPI are reachable. So the base
is a stand-in built with debootstrap from the mirror apt already uses (Debian bookworm's
Python 3.11, as in the real base), cached under ``QUILL_IMAGE_CACHE`` (default
``~/.cache/quill-image``) with the engine's data, and the wheels come from the lock,
downloaded on this machine (same CPython 3.11, x86_64, glibc) and checked by hash.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "runtime.lock"
CACHE = Path(os.environ.get("QUILL_IMAGE_CACHE") or Path.home() / ".cache" / "quill-image")
LABEL = "io.quill.image-test"  # on every container the suite starts, so leftovers can be found

SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "python-is-python3", "ca-certificates")
BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What the build context holds: what .dockerignore lets through, plus the wheelhouse.
CONTEXT = ("Dockerfile", ".dockerignore", "functions", "knative/routing.yaml", "eventing", "requirements")


class EngineError(RuntimeError):
    """The engine, the base or the build failed; the message says which step and why."""


def run(
    args: list[str], *, timeout: float, check: bool = True, env: dict[str, str] | None = None, what: str = ""
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:
        raise EngineError(f"{what or args[0]}: no answer within {timeout:.0f} s: {' '.join(args)[:300]}") from None
    if check and done.returncode != 0:
        raise EngineError(
            f"{what or args[0]} failed ({done.returncode}): {' '.join(args)[:300]}\n"
            f"--- stdout ---\n{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-4000:]}"
        )
    return done


@dataclass(frozen=True)
class Docker:
    """The ``docker`` CLI bound to one engine (``host`` is its DOCKER_HOST, or None for the default)."""

    host: str | None

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.host:
            env["DOCKER_HOST"] = self.host
        # The engine's built-in BuildKit (no frontend image to fetch, no buildx needed).
        env["DOCKER_BUILDKIT"] = "1"
        return env

    def __call__(
        self, *args: str, timeout: float = 120, check: bool = True, what: str = ""
    ) -> subprocess.CompletedProcess[str]:
        return run([docker_cli(), *args], timeout=timeout, check=check, env=self.env, what=what or f"docker {args[0]}")

    def answers(self) -> bool:
        try:
            return self("version", "--format", "{{.Server.Version}}", timeout=10, check=False).returncode == 0
        except EngineError:
            return False


def docker_cli() -> str:
    """The CLI of the engine's own package when there is one (Debian's docker.io: /usr/bin/docker).

    A newer CLI without the buildx plugin refuses DOCKER_BUILDKIT=1; the engine's own CLI
    drives the BuildKit built into dockerd.
    """
    chosen = os.environ.get("QUILL_DOCKER_CLI") or ("/usr/bin/docker" if Path("/usr/bin/docker").is_file() else "")
    chosen = chosen or shutil.which("docker") or ""
    if not chosen:
        raise EngineError("no docker CLI: apt-get install -y docker.io")
    return chosen


@contextmanager
def engine() -> Iterator[Docker]:
    """A dockerd that answers: the one already running, or one started here and stopped after."""
    existing = Docker(os.environ.get("DOCKER_HOST"))
    if existing.answers():
        yield existing
        return
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise EngineError("no dockerd: apt-get install -y docker.io debootstrap")
    data_root = CACHE / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    # Short: containerd's sockets live under the exec root, and unix socket paths are capped at 108 bytes.
    exec_root = Path(tempfile.mkdtemp(prefix="qdx-", dir="/tmp"))
    docker = Docker(f"unix://{exec_root}/docker.sock")
    log = (CACHE / "dockerd.log").open("w")
    process = subprocess.Popen(
        [
            dockerd,
            "--iptables=false",
            "--ip6tables=false",
            "--bridge=none",
            "--storage-driver=overlay2",
            f"--data-root={data_root}",
            f"--exec-root={exec_root}",
            f"--pidfile={exec_root}/docker.pid",
            f"--host={docker.host}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not docker.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                raise EngineError(f"dockerd did not start; see {CACHE / 'dockerd.log'}")
            time.sleep(0.5)
        yield docker
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the containerd it started is in its session too
            process.wait(timeout=10)
        log.close()
        shutil.rmtree(exec_root, ignore_errors=True)


def remove_leftovers(docker: Docker) -> None:
    """Containers a killed earlier run of this suite left behind (found by label, never by name)."""
    found = docker("ps", "-aq", "--filter", f"label={LABEL}").stdout.split()
    if found:
        docker("rm", "-f", *found, timeout=60)


def debian_mirror() -> str:
    """The Debian archive apt already uses here (read at run time; never written into the repo)."""
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(
                line.split(":", 1) for line in stanza.splitlines() if ":" in line and not line.startswith("#")
            )
            suites = fields.get("Suites", "").split()
            if SUITE in suites and "Types" in fields and "deb" in fields["Types"].split():
                return fields["URIs"].split()[0]
    listing = Path("/etc/apt/sources.list")
    if listing.is_file():
        for line in listing.read_text().splitlines():
            words = [word for word in line.split() if not word.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    raise EngineError(f"no Debian {SUITE} mirror in /etc/apt/sources.list(.d)")


def standin_base(docker: Docker) -> str:
    """The stand-in for the real base: Debian bookworm minbase with its python3, imported once."""
    key = hashlib.sha256(f"{SUITE} minbase {' '.join(BASE_PACKAGES)} {BASE_PATH}".encode()).hexdigest()[:12]
    tag = f"quill-standin-base:{SUITE}-{key}"
    if docker("image", "inspect", tag, check=False).returncode == 0:
        return tag
    tarball = CACHE / f"standin-{SUITE}-{key}.tar"
    if not tarball.is_file():
        if shutil.which("debootstrap") is None:
            raise EngineError("no debootstrap: apt-get install -y debootstrap")
        work = Path(tempfile.mkdtemp(prefix="quill-rootfs-", dir=CACHE))
        try:
            rootfs = work / "rootfs"
            run(
                [
                    "debootstrap",
                    "--variant=minbase",
                    f"--include={','.join(BASE_PACKAGES)}",
                    SUITE,
                    str(rootfs),
                    debian_mirror(),
                ],
                timeout=900,
                what="debootstrap",
            )
            for leftover in ("var/lib/apt/lists", "var/cache/apt/archives"):
                for item in (rootfs / leftover).glob("*"):
                    if item.is_file():
                        item.unlink()
            partial = tarball.with_suffix(".partial")
            run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], timeout=300, what="tar")
            partial.rename(tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    docker("import", "--change", f"ENV PATH={BASE_PATH}", str(tarball), tag, timeout=300)
    return tag


# The image's interpreter: any CPython 3.11.x on x86_64 Linux (the stand-in base has
# Debian's 3.11.2, the real base 3.11.10). A lock line is fetched if its marker holds for one.
_IMAGE_PYTHONS = ("3.11.0", "3.11.2", "3.11.3", "3.11.99")


def _image_requirements() -> str:
    """The lock's lines whose markers can hold in the image, markers dropped, hashes kept."""
    from packaging.markers import Marker

    kept = []
    for line in LOCK.read_text().replace("\\\n", " ").splitlines():
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        requirement, _, hashes = line.partition(" --hash")
        pin, _, marker = requirement.partition(";")
        if marker.strip():
            base = {"sys_platform": "linux", "platform_system": "Linux", "implementation_name": "cpython"}
            base |= {"platform_python_implementation": "CPython", "platform_machine": "x86_64"}
            environments = [{**base, "python_full_version": v, "python_version": "3.11"} for v in _IMAGE_PYTHONS]
            if not any(Marker(marker.strip()).evaluate(env) for env in environments):
                continue
        kept.append(f"{pin.strip()} --hash{hashes}")
    return "\n".join(kept) + "\n"


def wheelhouse() -> Path:
    """Every wheel the lock names for the image, checked against its hashes (CPython 3.11, x86_64 Linux)."""
    if (sys.version_info[:2], platform.machine(), sys.platform) != ((3, 11), "x86_64", "linux"):
        raise EngineError("the wheelhouse is built for the image's CPython 3.11 on x86_64 Linux: run on such a host")
    key = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:16]
    folder = CACHE / f"wheels-{key}"
    if (folder / ".complete").is_file():
        return folder
    for stale in CACHE.glob("wheels-*"):  # an older lock's
        shutil.rmtree(stale, ignore_errors=True)
    folder.mkdir(parents=True)
    requirements = folder / ".requirements.txt"
    requirements.write_text(_image_requirements())
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            "--dest",
            str(folder),
            "-r",
            str(requirements),
        ],
        timeout=600,
        what="pip download (the wheelhouse)",
    )
    (folder / ".complete").write_text(key)
    return folder


def build(docker: Docker, base: str, tag: str) -> float:
    """Build the image from the lock and a copy of the repository's context; return seconds taken."""
    wheels = wheelhouse()
    with tempfile.TemporaryDirectory(prefix="quill-context-") as scratch:
        context = Path(scratch)
        for name in CONTEXT:
            source, target = ROOT / name, context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target)  # .dockerignore (copied too) filters, as in a real build
            else:
                shutil.copy2(source, target)
        shutil.copytree(wheels, context / "wheels", ignore=shutil.ignore_patterns(".*"))
        started = time.monotonic()
        docker(
            "build",
            "--network",
            "none",  # the lock and the wheelhouse are all it may use
            "--build-arg",
            f"PYTHON_IMAGE={base}",
            "--tag",
            tag,
            str(context),
            timeout=900,
            what="docker build",
        )
        return time.monotonic() - started


def main(argv: list[str]) -> None:
    """``python -m tests.image.engine wheels [DEST]``: the wheelhouse ``docker build`` needs, in DEST (./wheels)."""
    if not argv or argv[0] != "wheels":
        raise SystemExit("usage: python -m tests.image.engine wheels [DEST]")
    dest = Path(argv[1] if len(argv) > 1 else ROOT / "wheels")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(wheelhouse(), dest, ignore=shutil.ignore_patterns(".*"))
    print(f"{len(list(dest.glob('*.whl')))} wheels in {dest}")


if __name__ == "__main__":
    main(sys.argv[1:])
