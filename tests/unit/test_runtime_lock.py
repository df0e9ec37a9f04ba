"""requirements/runtime.lock, which the image installs, still covers pyproject.toml's dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "runtime.lock"


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _entries() -> list[str]:
    """The lock's requirement lines, continuation lines joined."""
    joined = LOCK.read_text().replace("\\\n", " ").splitlines()
    return [line.strip() for line in joined if line.strip() and not line.lstrip().startswith("#")]


def _pins() -> dict[str, str]:
    pins = {}
    for entry in _entries():
        name, version = entry.partition(" --hash")[0].partition(";")[0].strip().split("==")
        pins[_normal(name)] = version
    return pins


def test_every_dependency_is_pinned_within_its_range() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _pins()
    stale = []
    for text in project["dependencies"]:
        requirement = Requirement(text)
        pinned = pins.get(_normal(requirement.name))
        if pinned is None or not requirement.specifier.contains(pinned, prereleases=True):
            stale.append(f"{text} (locked: {pinned})")
    assert not stale, f"requirements/runtime.lock is stale, run requirements/lock: {stale}"


def test_every_pin_carries_hashes() -> None:
    entries = _entries()
    assert len(entries) > 10
    assert [entry.split()[0] for entry in entries if "--hash=sha256:" not in entry] == []
