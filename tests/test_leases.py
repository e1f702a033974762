"""Short leases renewed by a heartbeat (issue 14 finding 11), on SQLite and PostgreSQL:

* a worker SIGKILLed in the middle of a refit holds the "rank" lease for one short lease at
  most (not 30 minutes): another worker then takes it over and the refit completes;
* while the refit runs its lease is renewed, so a long job is never taken over;
* a holder whose lease was taken over finds out loudly (an error logged, ``LeaseLost``);
* feed claims are renewed while a fetch pass runs, and ``aggregator fetch --all`` reports the
  feeds it skipped because another process held them.
"""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import ROOT, Replay
from test_me_api import INTERESTS, make_settings
from test_readers import load_papers
from typer.testing import CliRunner

from aggregator.cli.app import app
from aggregator.config import get_settings, load_feeds_file
from aggregator.feeds.claims import claim_feeds
from aggregator.store import locks
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, JobLock, RankModel
from aggregator.worker import refresh, scheduler

#: a short lease for the tests (AGGREGATOR_JOB_LEASE_SECONDS; 60 s by default), renewed every
#: 2/3 s
LEASE = 2.0

_REFIT_FOREVER = """
import sys, time
from aggregator.config import Interests, Settings
from aggregator.store.db import make_engine
from aggregator.worker import scheduler
from aggregator.worker import tasks

def refit_that_never_ends(*args, **kwargs):
    print("refitting", flush=True)
    time.sleep(600)

tasks.update_ranking = refit_that_never_ends
url = sys.argv[1]
settings = Settings(database_url=url, job_lease_seconds=float(sys.argv[2]))
scheduler.ranking_job(make_engine(url), settings, Interests(text="large language models"))
"""


def _rank_row(engine: sa.Engine) -> tuple[str, dt.datetime]:
    with engine.connect() as c:
        row = c.execute(sa.select(JobLock.holder, JobLock.lease_until).where(JobLock.name == "rank")).one()
    return row.holder, row.lease_until


@pytest.mark.slow
def test_a_sigkilled_refit_is_taken_over_within_one_short_lease(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, job_lease_seconds=LEASE)
    script = tmp_path / "refit.py"
    script.write_text(_REFIT_FOREVER)
    proc = subprocess.Popen(
        [sys.executable, str(script), database_url, str(LEASE)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "refitting", proc.stdout.read()
        holder, _ = _rank_row(engine)
        # the refit outlives its lease several times over: the heartbeat keeps it
        time.sleep(3 * LEASE)
        assert scheduler.ranking_job(engine, settings, INTERESTS) == 0
        assert _rank_row(engine)[0] == holder and proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    killed_at = dt.datetime.now(dt.UTC)
    _, until = _rank_row(engine)
    # the dead holder's lease runs out within one short lease of its death (was 30 minutes)
    assert until <= killed_at + dt.timedelta(seconds=LEASE)
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(RankModel)) == 0
    scored = 0
    while scored == 0:
        now = dt.datetime.now(dt.UTC)
        assert now < until + dt.timedelta(seconds=60), "no takeover a minute after the lease ran out"
        scored = scheduler.ranking_job(engine, settings, INTERESTS)
        if scored == 0:
            assert now < until + dt.timedelta(seconds=LEASE), "lease free, yet not taken over"
            time.sleep(0.1)
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(RankModel)) == 1
    assert scored > 100
    assert _rank_row(engine)[1] < dt.datetime.now(dt.UTC)  # released after the refit


def test_a_lease_taken_over_fails_loudly(engine: sa.Engine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="aggregator.store.locks")
    with locks.lease(engine, "rank", 0.6, holder="worker-a") as held:
        assert held
        with engine.begin() as c:  # worker-a stalled past its lease; worker-b took the job
            c.execute(
                sa.update(JobLock)
                .where(JobLock.name == "rank")
                .values(holder="worker-b", lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60))
            )
        deadline = time.monotonic() + 30
        while not held.heartbeat.lost.is_set():  # type: ignore[union-attr]
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with pytest.raises(locks.LeaseLost, match="'rank' lease was lost"):
            held.check()
    assert "'rank' lease was lost" in caplog.text
    assert _rank_row(engine)[0] == "worker-b"  # worker-a's exit did not release worker-b's lease
    assert not locks.try_acquire(engine, "rank", 60, holder="worker-c")


def test_ranking_job_rolls_back_when_its_lease_is_lost(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, job_lease_seconds=60)
    real = locks.Lease.check

    def taken_over(self: locks.Lease) -> None:  # as if a renewal found another holder
        if self.name == "rank":
            raise locks.LeaseLost("the 'rank' lease was lost: another process took it over")
        real(self)

    monkeypatch.setattr(locks.Lease, "check", taken_over)
    assert scheduler.ranking_job(engine, settings, INTERESTS) == 0
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(RankModel)) == 0
    monkeypatch.setattr(locks.Lease, "check", real)
    assert scheduler.ranking_job(engine, settings, INTERESTS) > 100
    # `aggregator fetch` and `backfill` refit under the same lease
    assert locks.try_acquire(engine, "rank", 60, holder="another-worker")
    assert scheduler.refit_now(engine, settings, INTERESTS, None) is None
    locks.release(engine, "rank", holder="another-worker")
    assert (scheduler.refit_now(engine, settings, INTERESTS, None) or 0) > 100


@pytest.mark.slow
def test_feed_claims_are_renewed_while_a_pass_runs(
    replay: Replay, engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    slow = replay.url("/_fault/slow-6/static/blogs/olshansk-the_batch-2026-06-04-rss2-feedgen.xml")
    settings = make_settings(database_url, tmp_path, job_lease_seconds=1.5)
    feeds = replay.feeds_toml(tmp_path, only=[], extra=f'\n[[feeds]]\nname = "slow blog"\nurl = "{slow}"\n')
    done: list[refresh.RefreshReport] = []
    thread = threading.Thread(
        target=lambda: done.append(refresh.refresh_feeds(engine, settings, load_feeds_file(feeds)))
    )
    thread.start()
    try:
        time.sleep(4)  # over two and a half claims: without renewal another process could claim it now
        with session_factory(engine)() as s:
            other = claim_feeds(s, dt.datetime.now(dt.UTC), 60, include_all=True)
        assert other.feeds == [] and [h.name for h in other.held] == ["slow blog"]
    finally:
        thread.join(timeout=60)
    assert [(o.name, o.state) for o in done[0].outcomes] == [("slow blog", "new")]
    with engine.connect() as c:
        assert c.execute(sa.select(Feed.lease_until)).scalar_one() is None  # released when stored


def test_fetch_all_reports_feeds_held_by_another_process(
    replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    feeds = replay.feeds_toml(tmp_path, only=["arXiv cs.CL", "Lil'Log"])
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    for key, value in {
        "AGGREGATOR_DATABASE_URL": url,
        "AGGREGATOR_FEEDS_FILE": str(feeds),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0.2",
        "AGGREGATOR_ARXIV_API_URL": replay.url("/api/query"),
    }.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        first = runner.invoke(app, ["fetch", "--all"], env={"COLUMNS": "200"})
        assert first.exit_code == 0, first.output
        assert "0 failed, 0 skipped (held by another process)" in first.output
        engine = sa.create_engine(url)
        held_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
        with engine.begin() as c:  # another process is fetching Lil'Log
            c.execute(sa.update(Feed).where(Feed.name == "Lil'Log").values(lease_until=held_until))
        engine.dispose()
        replay.log(clear=True)
        second = runner.invoke(app, ["fetch", "--all"], env={"COLUMNS": "200"})
    finally:
        get_settings.cache_clear()
    assert second.exit_code == 0, second.output
    row = next(line for line in second.output.splitlines() if "Lil'Log" in line)
    assert "skipped" in row and f"held by another process until {held_until:%H:%M:%S} UTC" in row
    assert "1 skipped (held by another process)" in second.output
    assert "unchanged" in next(line for line in second.output.splitlines() if "arXiv cs.CL" in line)
    assert not any("lilianweng" in r["path"] for r in replay.log())


@pytest.mark.slow
def test_a_slow_email_send_keeps_its_claim(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    """A send slower than the claim's lease: the claim is renewed, so a run starting later does
    not take the row and send it twice; killed senders are covered in test_email_faults."""
    from test_email import SmtpServer, add_reader, mail_settings

    from aggregator.mail import send

    smtp = SmtpServer().start()
    try:
        smtp.handler.delay = 3 * LEASE
        add_reader(engine, "slow@example.com", weekday=0, at="00:00")  # due now, whatever the day
        settings = mail_settings(database_url, tmp_path, smtp.port, email_lease_seconds=LEASE / 2)
        first: list[send.SendReport] = []
        thread = threading.Thread(target=lambda: first.append(send.send_due(engine, settings)))
        thread.start()
        deadline = time.monotonic() + 60
        while smtp.handler.data_count < 1:  # the message is in DATA
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(2 * LEASE)  # four leases after the claim
        second = send.send_due(engine, settings)
        thread.join(timeout=60)
    finally:
        smtp.stop()
    assert second.sent == 0 and first[0].sent == 1
    assert smtp.handler.recipients() == ["slow@example.com"]


@pytest.mark.slow
def test_a_feed_claim_taken_over_mid_pass_is_left_to_the_new_holder(
    replay: Replay, engine: sa.Engine, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="aggregator.worker")
    slow = replay.url("/_fault/slow-4/static/blogs/olshansk-the_batch-2026-06-04-rss2-feedgen.xml")
    settings = make_settings(database_url, tmp_path, job_lease_seconds=1.5)
    feeds = replay.feeds_toml(tmp_path, only=[], extra=f'\n[[feeds]]\nname = "slow blog"\nurl = "{slow}"\n')
    done: list[refresh.RefreshReport] = []
    thread = threading.Thread(
        target=lambda: done.append(refresh.refresh_feeds(engine, settings, load_feeds_file(feeds)))
    )
    thread.start()
    theirs = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    try:
        deadline = time.monotonic() + 60
        while not any("olshansk" in r["path"] for r in replay.log()):  # our fetch is under way
            assert time.monotonic() < deadline
            time.sleep(0.05)
        with engine.begin() as c:  # our pass stalled past its claim; another process claimed the feed
            c.execute(sa.update(Feed).values(lease_until=theirs))
    finally:
        thread.join(timeout=60)
    assert [(o.name, o.state, o.error) for o in done[0].outcomes] == [("slow blog", "skipped", refresh.LOST)]
    assert "feed claims lost to another process" in caplog.text
    with engine.connect() as c:
        row = c.execute(sa.select(Feed.lease_until, Feed.last_status)).one()
    assert row.last_status is None and abs((row.lease_until - theirs).total_seconds()) < 0.01  # left to them
