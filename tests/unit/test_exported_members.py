"""Every module of the runtime and tooling packages declares its public names, and each of them exists."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import quill
import quill_tools

MODULES = sorted(
    info.name
    for package in (quill, quill_tools)
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}.")
    if not info.ispkg
)


@pytest.mark.parametrize("name", MODULES)
def test_module_declares_all_and_every_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    assert exported is not None, f"{name} has no __all__"
    missing = [item for item in exported if not hasattr(module, item)]
    assert missing == []
