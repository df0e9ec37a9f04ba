"""``steal_pct``: the share of a cell's CPU time the hypervisor gave to other guests."""

from __future__ import annotations

from collections import namedtuple

import psutil
import pytest

from quill_tools.bench.loadgen import steal_pct

# The fields psutil reports on Linux, in its order.
Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")


def _times(**values: float) -> Times:
    return Times(**{name: values.get(name, 0.0) for name in Times._fields})


def test_steal_is_its_share_of_every_cpu_second_spent_guest_time_counted_once() -> None:
    before = _times(user=10.0, idle=100.0, steal=1.0, guest=5.0)
    # 6 s user (of which 3 s ran a guest: already in user), 2 s idle, 2 s stolen: 10 s in all.
    after = _times(user=16.0, idle=102.0, steal=3.0, guest=8.0)
    assert steal_pct(before, after) == pytest.approx(20.0)


def test_no_time_spent_or_no_steal_field_is_no_steal() -> None:
    Plain = namedtuple("Plain", "user system idle")  # what psutil reports where steal is not counted
    assert steal_pct(Plain(1.0, 1.0, 1.0), Plain(2.0, 1.0, 3.0)) == 0.0
    same = _times(user=1.0)
    assert steal_pct(same, same) == 0.0


def test_this_machines_counters_give_a_share() -> None:
    before = psutil.cpu_times()
    sum(range(2_000_000))
    assert 0.0 <= steal_pct(before, psutil.cpu_times()) <= 100.0
