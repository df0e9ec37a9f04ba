"""The k6 script for clusters runs the same mixed scenario as ``quill bench mixed``."""

from __future__ import annotations

import json
import re
from pathlib import Path

from quill_tools.bench.load import ACTIONS

K6 = Path(__file__).resolve().parents[2] / "infra" / "loadtest" / "mixed.js"


def test_the_k6_script_uses_the_benchmark_action_weights() -> None:
    found = re.search(r"^const ACTIONS = (\[.*\]);$", K6.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, "mixed.js declares its ACTIONS on one line"
    assert [tuple(pair) for pair in json.loads(found.group(1))] == list(ACTIONS)


def test_the_k6_script_thinks_half_a_second_to_one_and_a_half_like_the_benchmark() -> None:
    assert re.findall(r"sleep\((.*)\);", K6.read_text(encoding="utf-8")) == ["0.5 + Math.random()"]
