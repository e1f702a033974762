"""Shared fixtures: the real data in ../shared, feedreplay on a free loopback port, and
databases. Storage tests take the ``engine`` fixture, which runs each test on SQLite and,
when ``AGGREGATOR_TEST_DATABASE_URL`` is set, on that database (PostgreSQL) as well."""

from __future__ import annotations

import fcntl
import gc
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa

from aggregator.config import get_settings
from aggregator.store.db import make_engine, upgrade

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")

SHARED = Path(os.environ.get("AGGREGATOR_SHARED_DIR", ROOT.parent / "shared")).resolve()
DATA = SHARED / "data"
FEEDREPLAY = SHARED / "tools" / "feedreplay.py"

# Pages and sign-ups are rate limited per client address (AGGREGATOR_HTML_RATE_LIMIT,
# AGGREGATOR_AUTH_RATE_LIMIT); every TestClient is one address, so the suite lifts those two
# limits. tests/test_limits.py passes its own and checks them.
os.environ.setdefault("AGGREGATOR_HTML_RATE_LIMIT", "100000/second")
os.environ.setdefault("AGGREGATOR_AUTH_RATE_LIMIT", "100000/second")
# arXiv's 3 s between requests (AGGREGATOR_ARXIV_DELAY_SECONDS) is the service's default; a
# test that only happens to reach the arXiv API (a library import, a seed paper) would wait
# it out, 3 to 6 s of nothing. The suite spaces them 0.05 s apart; the pacing tests
# (tests/test_arxiv_pacing.py, tests/test_fetch.py, tests/test_enrich.py) pass their own
# spacing and check it, and tests/test_enrich.py checks the 3 s default.
os.environ.setdefault("AGGREGATOR_ARXIV_DELAY_SECONDS", "0.05")

# Under pytest-xdist each worker (gw0, gw1, ...) is a process of its own: it gets a PostgreSQL
# database of its own, ``<db>_gw0`` (and ``<db>_gw0_template``), by rewriting the variable
# before any test module reads it; subprocesses the tests start inherit it. SQLite files live
# in each test's tmp_path, which xdist already makes per worker.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
if _WORKER:
    # xdist workers start with COLUMNS=80 and LINES=24 in their environment; a rich console
    # made at import would then fix its width at 80, and CLI output the tests read would wrap
    # where a run in one process (or a user's shell) does not.
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)
if _WORKER and os.environ.get("AGGREGATOR_TEST_DATABASE_URL"):
    _url = sa.make_url(os.environ["AGGREGATOR_TEST_DATABASE_URL"])
    os.environ["AGGREGATOR_TEST_DATABASE_URL"] = _url.set(
        database=f"{_url.database}_{_WORKER}"
    ).render_as_string(hide_password=False)

# Test databases and files go to memory (/dev/shm, a tmpfs) unless the runner chose a place:
# every SQLite commit on the disk of this machine costs a write of its own, and the suite makes
# thousands. Only the folders of failed tests are kept (``tmp_path_retention_policy``).
_SHM = Path("/dev/shm")
if "PYTEST_DEBUG_TEMPROOT" not in os.environ and _SHM.is_dir() and os.access(_SHM, os.W_OK):
    os.environ["PYTEST_DEBUG_TEMPROOT"] = str(_SHM)

#: The garbage collector's generation thresholds for the suite (CPython's: 700, 10, 10). The
#: tests allocate millions of short-lived objects (rows, tokens, requests); with the default
#: thresholds a worker spent ~8 % of its CPU in the collector. Tests that measure memory call
#: ``gc.collect()`` first.
GC_THRESHOLDS = (10_000, 20, 20)
gc.set_threshold(*GC_THRESHOLDS)

if not DATA.is_dir():  # pragma: no cover - a broken checkout, said loudly
    raise RuntimeError(f"the real data folder {DATA} is missing; tests read ../shared/data")


@pytest.fixture(autouse=True)
def _settings_read_afresh() -> Iterator[None]:
    """``get_settings()`` is cached for the process: each test reads the environment it sets
    (AGGREGATOR_DATABASE_URL, ...), never settings an earlier test left in the cache."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


#: FastAPI's caches of what kind of callable an endpoint or dependency is (lru_caches of 4,096
#: entries, keyed on the callable). Closures made by ``create_app`` (fastapi-offline's docs
#: pages, ...) hold their app, so the caches keep the last several hundred test apps alive,
#: with their engines: 2.8M objects in a worker by the end of the suite, which every full
#: garbage collection walks. A service makes one app; the suite makes one or more a test.
_FASTAPI_CALLABLE_CACHES = (
    "_is_gen_callable_cached",
    "_is_async_gen_callable_cached",
    "_is_coroutine_callable_cached",
)


@pytest.fixture(autouse=True)
def _test_apps_freed() -> Iterator[None]:
    """After each test, empty FastAPI's callable caches (:data:`_FASTAPI_CALLABLE_CACHES`;
    names missing from another FastAPI release are skipped), so its apps can be freed."""
    yield
    from fastapi.dependencies import models

    for name in _FASTAPI_CALLABLE_CACHES:
        clear = getattr(getattr(models, name, None), "cache_clear", None)
        if clear is not None:
            clear()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Move what collection made (modules, the schemathesis schema, test items: alive for the
    whole session) out of the garbage collector's generations: full collections then walk
    only what the tests make (see :data:`GC_THRESHOLDS`)."""
    gc.collect()
    gc.freeze()


@dataclass
class Replay:
    """A running feedreplay server."""

    base: str
    proc: subprocess.Popen[str]
    output: Path | None = None  # its log file, removed when it stops

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        if self.output is not None:
            self.output.unlink(missing_ok=True)

    def url(self, path: str) -> str:
        return self.base + path

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.base + path, timeout=30) as resp:
            return resp.read()

    def set_day(self, day: str) -> None:
        assert self.get(f"/_replay/day?set={day}").decode().strip() == day

    def log(self, clear: bool = False) -> list[dict]:
        return json.loads(self.get("/_replay/log" + ("?clear=1" if clear else "")))

    def feeds_toml(self, tmp_path: Path, only: list[str] | None = None, extra: str = "") -> Path:
        """The shared feeds.replay.toml pointed at this server's port, as a file in ``tmp_path``."""
        text = (SHARED / "feeds.replay.toml").read_text()
        text = text.replace("http://127.0.0.1:8765", self.base)
        if only is not None:
            blocks = text.split("[[feeds]]")
            keep = [b for b in blocks[1:] if any(f'name = "{n}"' in b for n in only)]
            text = blocks[0] + "".join("[[feeds]]" + b for b in keep)
        path = tmp_path / "feeds.toml"
        path.write_text(text + extra)
        return path


def start_feedreplay(day: str = "2026-06-15", *args: str) -> Replay:
    """Start feedreplay on a free loopback port. Its output goes to a temporary file (never a
    pipe nobody reads, which would block the server once full)."""
    import tempfile

    out = tempfile.NamedTemporaryFile("w+", prefix="feedreplay-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, str(FEEDREPLAY), "--port", "0", "--day", day, *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out.close()
    deadline = time.monotonic() + 60
    match = None
    while time.monotonic() < deadline and match is None:
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", Path(out.name).read_text())
        if match is None:
            if proc.poll() is not None:
                raise RuntimeError(f"feedreplay exited: {Path(out.name).read_text()!r}")
            time.sleep(0.05)
    if match is None:
        proc.kill()
        raise RuntimeError("feedreplay did not start within 60 s")
    return Replay(f"http://127.0.0.1:{match.group(1)}", proc, Path(out.name))


@pytest.fixture(scope="session")
def replay_server() -> Iterator[Replay]:
    """One feedreplay for the whole session; tests that change the day use ``replay``."""
    server = start_feedreplay()
    yield server
    server.stop()


@pytest.fixture
def replay(replay_server: Replay) -> Iterator[Replay]:
    """The session's feedreplay, reset to 2026-06-15 with an empty request log."""
    replay_server.set_day("2026-06-15")
    replay_server.log(clear=True)
    yield replay_server
    replay_server.set_day("2026-06-15")


def _database_urls() -> list[str]:
    urls = ["sqlite"]
    if os.environ.get("AGGREGATOR_TEST_DATABASE_URL"):
        urls.append("postgresql")
    return urls


def pytest_sessionstart(session: pytest.Session) -> None:
    """Under xdist, create this worker's PostgreSQL database if it does not exist yet (tests
    that migrate it themselves only empty it)."""
    url = os.environ.get("AGGREGATOR_TEST_DATABASE_URL")
    if not (_WORKER and url):
        return
    name = sa.make_url(url).database
    admin = sa.create_engine(_admin_url(url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
        if exists is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()


def _reset_postgres(url: str) -> None:
    """Empty the PostgreSQL database at ``url`` (for tests that migrate it themselves)."""
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _admin_url(url: str) -> sa.URL:
    """The same server, database ``postgres``: CREATE/DROP DATABASE cannot run inside the target."""
    return sa.make_url(url).set(database="postgres")


def _template_name(url: str) -> str:
    return f"{sa.make_url(url).database}_template"


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated once per session; each test copies it (a file copy, not 13+
    migrations)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> str | None:
    """A PostgreSQL template database migrated once per session (``<db>_template``); each test
    recreates the test database from it with ``CREATE DATABASE ... TEMPLATE``."""
    url = os.environ.get("AGGREGATOR_TEST_DATABASE_URL")
    if not url:
        return None
    template = _template_name(url)
    admin = sa.create_engine(_admin_url(url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{template}"'))
    engine = make_engine(str(sa.make_url(url).set(database=template)))
    upgrade(engine)
    engine.dispose()
    admin.dispose()
    return template


def _recreate_postgres(url: str, template: str) -> None:
    name = sa.make_url(url).database
    admin = sa.create_engine(_admin_url(url), isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    admin.dispose()


@pytest.fixture(params=_database_urls())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database URL: a copy of the session's migrated SQLite file, or the test
    PostgreSQL database recreated from the session's migrated template."""
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), path)
        return f"sqlite:///{path}"
    url = os.environ["AGGREGATOR_TEST_DATABASE_URL"]
    _recreate_postgres(url, request.getfixturevalue("migrated_postgres"))
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    eng = make_engine(database_url)
    yield eng
    eng.dispose()


@dataclass
class _Populated:
    """A database filled once by a build function: a SQLite file or a PostgreSQL template
    database (``ref``), and what the build returned (``value``)."""

    ref: str
    value: object


@pytest.fixture(scope="session")
def _populated() -> dict[tuple[str, str], _Populated]:
    """The session's populated templates by (name, ``sqlite``/``postgresql``)."""
    return {}


def populated_database(request: pytest.FixtureRequest, name: str, build: Callable[[sa.Engine], T]) -> T:
    """Fill the test's fresh database (``database_url``) with what ``build(engine)`` writes,
    built once per session and database kind rather than once per test.

    The first test to ask builds it on a copy of the migrated template (a SQLite file shared by
    the xdist workers, :func:`_populated_sqlite`, or a PostgreSQL database ``<db>_pop_<name>``
    of the worker's); each test then gets a copy of that (a file copy,
    or ``CREATE DATABASE ... TEMPLATE``), so tests still never see each other's writes. For
    set-up that is deterministic (real data, fixed times): ``build`` must not depend on the
    test, and its return value is shared by every test (treat it as read-only). Call it from a
    fixture before anything has connected to the test's database. Returns ``build``'s value.
    """
    database_url = request.getfixturevalue("database_url")
    kind = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    cache = request.getfixturevalue("_populated")
    done = cache.get((name, kind))
    if done is None and kind == "sqlite":
        done = cache[(name, kind)] = _populated_sqlite(request, name, build)
    elif done is None:
        ref = f"{sa.make_url(database_url).database}_pop_{name}"
        template = request.getfixturevalue("migrated_postgres")
        _recreate_postgres(str(sa.make_url(database_url).set(database=ref)), template)
        built = make_engine(str(sa.make_url(database_url).set(database=ref)))
        try:
            value = build(built)
        finally:
            built.dispose()
        done = cache[(name, kind)] = _Populated(ref, value)
    if kind == "sqlite":
        path = sa.make_url(database_url).database
        assert path is not None
        for stale in (path + "-wal", path + "-shm"):
            Path(stale).unlink(missing_ok=True)
        shutil.copyfile(done.ref, path)
    else:
        _recreate_postgres(database_url, done.ref)
    return done.value  # type: ignore[return-value]


def _populated_sqlite(
    request: pytest.FixtureRequest, name: str, build: Callable[[sa.Engine], T]
) -> _Populated:
    """:func:`populated_database`'s SQLite file ``name``, built once for the whole run: under
    xdist the workers share it (in the folder their temporary folders are in), the first to
    ask builds it while the others wait on a file lock, and ``build``'s value goes along
    pickled."""
    base = request.getfixturevalue("tmp_path_factory").getbasetemp()
    folder = (base.parent if _WORKER else base) / "populated"
    folder.mkdir(exist_ok=True)
    ref, value_file = folder / f"{name}.db", folder / f"{name}.pickle"
    with (folder / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not ref.exists():
            part = folder / f"{name}.db.part"
            shutil.copyfile(request.getfixturevalue("migrated_sqlite"), part)
            built = make_engine(f"sqlite:///{part}")
            try:
                value = build(built)
            finally:
                built.dispose()  # the last connection closed checkpoints the WAL into the file
            assert not Path(f"{part}-wal").exists(), "a connection to the template is still open"
            value_file.write_bytes(pickle.dumps(value))
            part.rename(ref)
        return _Populated(str(ref), pickle.loads(value_file.read_bytes()))


BULK = DATA / "bulk" / "daily-arxiv-ai-enhanced"


def bulk_papers(day: str) -> list[dict]:
    """Real arXiv paper metadata of one scraped day (unique ids, file order)."""
    seen: set[str] = set()
    out = []
    for line in (BULK / f"dw-dengwei-{day}.jsonl").open(encoding="utf-8"):
        paper = json.loads(line)
        if paper["id"] not in seen:
            seen.add(paper["id"])
            out.append(paper)
    return out


def paper_entry(paper: dict, day: str, version: int = 1, announce_type: str = "new"):
    """A ParsedEntry for a real bulk paper, as the arXiv RSS parser would produce it."""
    import datetime as dt

    from aggregator.types import ParsedEntry

    return ParsedEntry(
        kind="paper",
        key=f"arxiv:{paper['id']}",
        title=" ".join(paper["title"].split()),
        url=f"https://arxiv.org/abs/{paper['id']}",
        authors=tuple(paper["authors"]),
        summary=" ".join((paper.get("summary") or "").split()),
        published=dt.datetime.fromisoformat(day + "T04:00:00+00:00"),
        categories=tuple(paper["categories"]),
        primary_category=paper["categories"][0],
        arxiv_id=paper["id"],
        version=version,
        announce_type=announce_type,  # type: ignore[arg-type]
        guid=f"oai:arXiv.org:{paper['id']}v{version}",
    )


BROWSER_MODULES = ("test_browser",)


@pytest.fixture(scope="session")
def browser_site(replay_server: Replay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """``test_browser.build_site``, once a session for every browser module (a fixture defined
    in a test module and imported by others would be built again for each of them)."""
    from test_browser import build_site

    yield from build_site(replay_server, tmp_path_factory)


#: What to close once the browser tests in a row are over (the shared Chromium of test_browser).
_AFTER_BROWSER_TESTS: list[Callable[[], None]] = []


def close_after_browser_tests(close: Callable[[], None]) -> None:
    """Call ``close`` before the next test that is not a browser test, or at the session's end."""
    _AFTER_BROWSER_TESTS.append(close)


def _close_browser_things() -> None:
    while _AFTER_BROWSER_TESTS:
        _AFTER_BROWSER_TESTS.pop()()


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("browser") is None:
        _close_browser_things()


def pytest_sessionfinish(session: pytest.Session) -> None:
    _close_browser_things()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto`` (the README's test command): one worker per CPU this process may run on,
    plus one. About a quarter of the suite's wall time is waiting rather than computing
    (leases running out, arXiv spacing, servers and Chromium in other processes, slow-client
    timeouts); the extra worker computes meanwhile (measured in docs/performance.md, "The test
    suite")."""
    return len(os.sched_getaffinity(0)) + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Markers from what a test uses: ``postgres`` for the PostgreSQL run of a database test,
    ``browser`` for the Chromium tests. ``slow`` is set by hand on tests over ~5 s."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if item.module is not None and item.module.__name__.startswith(BROWSER_MODULES):
            item.add_marker(pytest.mark.browser)
    if _WORKER:
        # under xdist the slow tests go first (the sort is stable, so each worker collects the
        # same order): a 30 s test started last would keep one worker busy after the other is
        # done; the short ones at the end fill in
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
