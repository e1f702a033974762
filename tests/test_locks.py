"""Job leases in the database: one holder at a time, taken over after expiry, on both databases."""

from __future__ import annotations

import threading
import time

import sqlalchemy as sa

from aggregator.store.locks import lease, release, try_acquire


def test_one_holder_at_a_time_and_takeover_after_expiry(engine: sa.Engine) -> None:
    assert try_acquire(engine, "rank", 60, holder="worker-a")
    assert not try_acquire(engine, "rank", 60, holder="worker-b")
    assert try_acquire(engine, "rank", 60, holder="worker-a")  # re-entrant for its holder
    assert try_acquire(engine, "trends", 60, holder="worker-b")  # other names are independent
    release(engine, "rank", holder="worker-b")  # not the holder: no effect
    assert not try_acquire(engine, "rank", 60, holder="worker-c")
    release(engine, "rank", holder="worker-a")
    assert try_acquire(engine, "rank", 0.2, holder="worker-c")
    time.sleep(0.3)  # worker-c died: its lease runs out
    assert try_acquire(engine, "rank", 60, holder="worker-d")


def test_racing_threads_get_exactly_one_lease(engine: sa.Engine) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(6)

    def contend(i: int) -> None:
        barrier.wait()
        results.append(try_acquire(engine, "email", 60, holder=f"w{i}"))

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]


def test_lease_context_manager_releases(engine: sa.Engine) -> None:
    with lease(engine, "rank", 60) as held:
        assert held
        assert not try_acquire(engine, "rank", 60, holder="someone-else")
    assert try_acquire(engine, "rank", 60, holder="someone-else")


def test_turns_space_every_holder_alike(engine: sa.Engine) -> None:
    """The arXiv turn row (aggregator.feeds.pacing): never re-entrant, busy while a request
    runs, then free ``spacing`` seconds after its end, whoever asks."""
    from aggregator.store.locks import end_turn, try_take_turn

    assert try_take_turn(engine, "arxiv:h", 30, holder="a") == 0.0
    assert 29 < try_take_turn(engine, "arxiv:h", 30, holder="a") <= 30  # its own holder waits too
    assert 29 < try_take_turn(engine, "arxiv:h", 30, holder="b") <= 30
    end_turn(engine, "arxiv:h", 0.0, holder="b")  # not the holder: no effect
    assert try_take_turn(engine, "arxiv:h", 30, holder="b") > 29
    end_turn(engine, "arxiv:h", 20, holder="a")  # ended: the next may start 20 s later
    assert 19 < try_take_turn(engine, "arxiv:h", 30, holder="b") <= 20
    end_turn(engine, "arxiv:h", 0.0, holder="a")
    assert try_take_turn(engine, "arxiv:h", 30, holder="b") == 0.0
    assert try_take_turn(engine, "arxiv:h", 30, holder="a") > 29


def test_renew_keeps_a_lease_and_reports_a_takeover(engine: sa.Engine) -> None:
    from aggregator.store.locks import renew

    assert try_acquire(engine, "rank", 0.2, holder="a")
    assert renew(engine, "rank", 60, holder="a")
    time.sleep(0.3)
    assert not try_acquire(engine, "rank", 60, holder="b")  # renewed past its first 0.2 s
    assert not renew(engine, "rank", 60, holder="b")  # b never held it
    release(engine, "rank", holder="a")
    assert try_acquire(engine, "rank", 60, holder="b")
    assert not renew(engine, "rank", 60, holder="a")  # taken over: a finds out
