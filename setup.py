"""The one build step pyproject.toml cannot declare: ship, inside the wheel, the files Quill
reads beside its code, so a plain ``pip install .`` runs ``quill dev`` with no checkout.

They are copied to ``quill/_tree`` with the checkout's layout (``functions/<name>/main.py``,
``knative/routing.yaml``, ``eventing/``), where ``quill.routing.ROOT`` finds them. An
editable install and the image read the checkout itself and get no copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
PACKAGES = ("quill", "quill_tools")


def tree_files() -> list[Path]:
    """What is read beside the code, relative to the checkout."""
    entries = sorted(
        path.relative_to(HERE) for path in (HERE / "functions").glob("*/main.py") if path.parent.name not in PACKAGES
    )
    eventing = sorted(path.relative_to(HERE) for path in (HERE / "eventing").rglob("*") if path.is_file())
    return [*entries, Path("knative/routing.yaml"), *eventing]


class BuildWithTree(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "quill" / "_tree"
        for relative in tree_files():
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / relative, target / relative)


setup(cmdclass={"build_py": BuildWithTree})
