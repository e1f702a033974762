"""Crash safety: SIGKILL the worker in the middle of an ingest, restart it, and check that no
item is lost or duplicated (items, their sources and each feed's ETag commit together)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Replay

from aggregator.config import Settings, load_feeds_file
from aggregator.store.db import make_engine, upgrade
from aggregator.store.tables import Feed, Item, ItemSource
from aggregator.worker import refresh

FULL = "/static/arxiv-rss/all-archives-2024-11-28-rss2-FULL-aioarxiv.xml"


def _state(engine: sa.Engine) -> tuple[set[str], int, int]:
    with engine.connect() as c:
        keys = set(c.execute(sa.select(Item.key)).scalars())
        n_items = c.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one()
        n_sources = c.execute(sa.select(sa.func.count()).select_from(ItemSource)).scalar_one()
    return keys, n_items, n_sources


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started by the test; none outlives it, whatever happens."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.slow
def test_sigkill_mid_ingest_then_restart_loses_and_duplicates_nothing(
    replay: Replay, database_url: str, tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    extra = f'\n[[feeds]]\nname = "arXiv FULL"\nurl = "{replay.url(FULL)}"\nkind = "arxiv"\n'
    slow = replay.url("/_fault/slow-4/static/blogs/olshansk-the_batch-2026-06-04-rss2-feedgen.xml")
    extra += f'\n[[feeds]]\nname = "slow blog"\nurl = "{slow}"\nkind = "blog"\n'  # keeps each pass open
    feeds = replay.feeds_toml(tmp_path, extra=extra)

    # the reference: one uninterrupted pass into a separate SQLite database
    ref_url = f"sqlite:///{tmp_path / 'reference.db'}"
    ref = make_engine(ref_url)
    upgrade(ref)
    refresh.refresh_feeds(
        ref,
        Settings(database_url=ref_url, feeds_file=feeds, arxiv_delay_seconds=0.2),  # type: ignore[call-arg]
        load_feeds_file(feeds),
        include_all=True,
    )
    expected_keys, expected_items, expected_sources = _state(ref)
    assert expected_items > 2500
    ref.dispose()

    engine = make_engine(database_url)
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": database_url,
        "AGGREGATOR_FEEDS_FILE": str(feeds),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0.2",
        "AGGREGATOR_SCHEDULER_TICK_SECONDS": "1",
        "AGGREGATOR_METRICS_PORT": "0",
    }
    kills = 0
    for attempt in range(3):  # kill it three times, each while some feeds are done and others are not
        log = (tmp_path / f"worker{attempt}.log").open("w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "worker"], env=env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            with engine.connect() as c:
                done = c.execute(
                    sa.select(sa.func.count()).select_from(Feed).where(Feed.last_status.is_not(None))
                ).scalar_one()
                total = c.execute(sa.select(sa.func.count()).select_from(Feed)).scalar_one()
            if total and done >= total:
                break
            if done > attempt * 4:  # some feeds stored, others mid-fetch or mid-ingest
                proc.send_signal(signal.SIGKILL)
                kills += 1
                break
            time.sleep(0.02)
        if proc.poll() is None and kills <= attempt:
            proc.terminate()
        proc.wait(timeout=30)
        log.close()
        with engine.begin() as c:  # a killed worker's claims would expire after one lease (60 s); now
            c.execute(sa.update(Feed).values(lease_until=None))
    assert kills >= 2, "the worker finished before it could be killed"

    # restart and let it finish
    log = (tmp_path / "final.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "worker"], env=env, stdout=log, stderr=log)
    spawned.append(proc)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with engine.connect() as c:
                pending = c.execute(
                    sa.select(sa.func.count()).select_from(Feed).where(Feed.last_status.is_(None))
                ).scalar_one()
            if pending == 0:
                break
            time.sleep(0.2)
        time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    keys, n_items, n_sources = _state(engine)
    assert keys == expected_keys  # nothing lost (an ETag never outlives its items) ...
    assert (n_items, n_sources) == (expected_items, expected_sources)  # ... and nothing twice
    engine.dispose()
