"""Which tests are slow: every test's wall and CPU seconds, and how they agree with ``slow``.

Runs pytest in this process (``-n 0``: no xdist workers; random order off, ``-p no:randomly``,
when that plugin is there), with a small plugin that times each test's whole protocol:
set-up, call and tear-down, so a test that is first to need a session fixture (the migrated
template database, feedreplay) carries its cost. Prints the slowest tests, then the
disagreements with the ``slow`` marker at ``--threshold`` seconds of wall time: tests over it
without the marker, and marked tests under half of it.

Wall seconds are what a developer waits; CPU seconds (this process and its reaped children,
from ``resource.getrusage``) say how much of that is work rather than sleeps, servers in
other processes or other load on the machine. Note the load average printed with the
figures: on a loaded machine wall seconds grow, so judge the threshold against a quiet run.

Run:  python bench/slow_tests.py [--threshold 5] [--top 40] [PYTEST ARGS ...]
e.g.  python bench/slow_tests.py tests/test_rank.py
      AGGREGATOR_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
          python bench/slow_tests.py -m postgres
Exit status: pytest's.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cpu_seconds() -> float:
    """User + system CPU seconds of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class Row:
    nodeid: str
    wall: float
    cpu: float
    slow: bool


class Timer:
    """A pytest plugin: one :class:`Row` per test that ran (skipped ones included)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
        wall, cpu = time.perf_counter(), _cpu_seconds()
        yield
        slow = item.get_closest_marker("slow") is not None
        self.rows.append(Row(item.nodeid, time.perf_counter() - wall, _cpu_seconds() - cpu, slow))


def report(rows: list[Row], threshold: float, top: int, elapsed: float) -> str:
    """The table (seconds, ``slow`` or blank, node id), slowest first, and the disagreements."""
    rows = sorted(rows, key=lambda r: r.wall, reverse=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    lines = [
        f"{len(rows)} tests, {elapsed:.1f} s wall in all, "
        f"{sum(r.cpu for r in rows):.1f} s CPU; load average now {load}",
        f"{'wall s':>8} {'cpu s':>7}  marker  test",
    ]
    lines += [f"{r.wall:8.2f} {r.cpu:7.2f}  {'slow' if r.slow else '':6}  {r.nodeid}" for r in rows[:top]]
    unmarked = [r for r in rows if r.wall > threshold and not r.slow]
    overmarked = [r for r in rows if r.slow and r.wall < threshold / 2]
    lines.append(f"\nover {threshold:g} s without the slow marker: {len(unmarked)}")
    lines += [f"{r.wall:8.2f} {r.cpu:7.2f}  {r.nodeid}" for r in unmarked]
    lines.append(f"marked slow but under {threshold / 2:g} s: {len(overmarked)}")
    lines += [f"{r.wall:8.2f} {r.cpu:7.2f}  {r.nodeid}" for r in overmarked]
    fast = [r for r in rows if not r.slow]
    lines.append(
        f"\nnot marked slow: {len(fast)} tests, {sum(r.wall for r in fast):.1f} s wall; "
        f"marked slow: {len(rows) - len(fast)} tests, {sum(r.wall for r in rows if r.slow):.1f} s wall"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threshold", type=float, default=5.0, help="seconds of wall time (default 5)")
    parser.add_argument("--top", type=int, default=40, help="rows of the table (default 40)")
    args, pytest_args = parser.parse_known_args(argv)
    os.chdir(ROOT)
    timer = Timer()
    extra = ["-p", "no:randomly"] if _has_randomly() else []
    start = time.perf_counter()
    args_ = [*extra, "-n", "0", "-q", "-p", "no:cacheprovider", *pytest_args]
    status = pytest.main(args_, plugins=[timer])
    print("\n" + report(timer.rows, args.threshold, args.top, time.perf_counter() - start))
    return int(status)


def _has_randomly() -> bool:
    import importlib.util

    return importlib.util.find_spec("pytest_randomly") is not None


if __name__ == "__main__":
    sys.exit(main())
