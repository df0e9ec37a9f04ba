"""The cold-start benchmark times starts that read compiled bytecode, as the image's do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from quill_tools.bench.coldstart import compile_sources

# Imports a module in a process that may not write bytecode (as under tox and in the
# image) and may not compile a source either: it succeeds only from compiled bytecode.
_FROM_BYTECODE_ONLY = """
import importlib.machinery, sys

def refuse(self, data, path, **kwargs):
    raise ImportError(f"compiled {path} at import")

importlib.machinery.SourceFileLoader.source_to_code = refuse
sys.path.insert(0, sys.argv[1])
import package.module
print(package.module.VALUE)
"""


def _import(folder: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-B", "-c", _FROM_BYTECODE_ONLY, str(folder)]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def test_compiled_sources_are_imported_without_compiling_them(tmp_path: Path) -> None:
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "__init__.py").write_text("")
    (tmp_path / "package" / "module.py").write_text("VALUE = 42\n")
    assert "compiled" in _import(tmp_path).stderr  # the probe does see a compile
    compile_sources(tmp_path)
    done = _import(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"


def test_a_source_that_does_not_compile_stops_the_benchmark(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def broken(:\n")
    with pytest.raises(RuntimeError, match="do not compile"):
        compile_sources(tmp_path)
