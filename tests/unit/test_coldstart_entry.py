"""The cold-start benchmark starts each function with the command the image runs."""

from __future__ import annotations

import re
from pathlib import Path

from quill_tools.bench.coldstart import IMAGE_ENTRY

DOCKERFILE = Path(__file__).parents[2] / "Dockerfile"


def test_the_benchmark_runs_the_quill_command_the_image_writes() -> None:
    """The Dockerfile writes its ``quill`` with printf; the benchmark times the same lines,
    not pip's console script (quill_tools.cli), which imports more before serving."""
    written = re.search(r"printf '#![^\\]*\\n(.*?)' > /opt/quill/bin/quill", DOCKERFILE.read_text())
    assert written is not None, "the Dockerfile no longer writes /opt/quill/bin/quill with printf"
    assert written.group(1).replace("\\n", "\n") == IMAGE_ENTRY
