"""Property-based tests of the whole HTTP API from its own OpenAPI schema (schemathesis):
no 5xx, and every response conforms to the documented schema, for anonymous requests and
for a signed-in reader. Runs against a real SQLite database holding real replayed items."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
)

from aggregator.accounts import readers
from aggregator.api.app import create_app
from aggregator.config import FeedConfig, Settings
from aggregator.feeds.ingest import sync_feeds, write_entries
from aggregator.store.db import make_engine, session_factory, upgrade
from aggregator.store.tables import Feed
from aggregator.worker import tasks as jobs

# 107 generated cases of two test functions, each under 5 s but ~85 s together
# (bench/slow_tests.py): the one module marked slow as a whole, out of the inner loop
pytestmark = pytest.mark.slow


def _app(tmp: Path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp / 'fuzz.db'}"
    feeds = tmp / "feeds.toml"
    feeds.write_text('[interests]\ntext = "reasoning in large language models"\n')
    settings = Settings(database_url=url, feeds_file=feeds, rate_limit="100000/second")  # type: ignore[call-arg]
    engine = make_engine(url)
    upgrade(engine)
    now = dt.datetime(2026, 6, 16, tzinfo=dt.UTC)
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("arXiv cs.LG", "http://127.0.0.1:9/cs.LG", "arxiv")], now)
        feed_id = s.scalar(sa.select(Feed.id))
        write_entries(s, feed_id, [paper_entry(p, "2026-06-15") for p in bulk_papers("2026-06-15")[:80]], now)
    from aggregator.config import Interests

    jobs.update_ranking(engine, settings, Interests(text="reasoning in large language models"))
    with session_factory(engine)() as s, s.begin():
        token = readers.create_reader(s, "fuzz@example.org").token
    return create_app(settings, engine), token


#: "A schema-valid request was rejected": a 422 for a value the schema cannot express (a 0-day
#: baseline, an arXiv id that does not exist) is the documented answer, not a failure. Every
#: other check stays on: no 5xx, response bodies, status codes, headers and content types as
#: documented, and schema-violating requests rejected.
SEMANTIC = [positive_data_acceptance]

# made at import (schemathesis reads the schema at collection), in the suite's temporary root
# (tests/conftest.py), and removed when the process exits: each collecting process makes one
TMP = Path(tempfile.mkdtemp(prefix="aggregator-fuzz-", dir=os.environ.get("PYTEST_DEBUG_TEMPROOT")))
atexit.register(shutil.rmtree, TMP, ignore_errors=True)
APP, TOKEN = _app(TMP)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def client() -> Iterator[asgi.ASGIClient]:
    """One in-process client for every case (schemathesis otherwise opens a requests session
    and enters the app's lifespan for each of the ~6,800 calls)."""
    with asgi.get_client(APP) as c:
        yield c


#: The cases are drawn from a fixed seed (``derandomize``): the same 25 per operation on every
#: run, so that CI does not depend on the draw (a random draw once sent ``category=false``, a
#: "wrong type" that a query string cannot tell from the category named "false").
@schema.parametrize()
@hypothesis.settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(hypothesis.HealthCheck)
)
def test_api_anonymous(case: schemathesis.Case, client: asgi.ASGIClient) -> None:
    case.call_and_validate(session=client, excluded_checks=SEMANTIC)


#: Operations that end the token they are called with (account deletion, token reissue): each
#: case gets a reader of its own, so the shared reader stays signed in for the others.
ENDS_THE_TOKEN = {("DELETE", "/api/me"), ("POST", "/api/me/token")}


def _throwaway_token() -> str:
    import uuid

    with APP.state.sessionmaker() as s, s.begin():
        return readers.create_reader(s, f"fuzz-{uuid.uuid4().hex}@example.org").token


@schema.parametrize()
@hypothesis.settings(
    max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(hypothesis.HealthCheck)
)
def test_api_signed_in(case: schemathesis.Case, client: asgi.ASGIClient) -> None:
    # The token is added to every request, so a generated "no Authorization header" case is no
    # longer negative: the checks that expect such cases to fail are left to the anonymous run.
    token = _throwaway_token() if (case.method.upper(), case.path) in ENDS_THE_TOKEN else TOKEN
    case.call_and_validate(
        session=client,
        headers={"Authorization": f"Bearer {token}"},
        excluded_checks=[*SEMANTIC, negative_data_rejection, missing_required_header],
    )


def test_schema_covers_the_api() -> None:
    paths = set(schema.raw_schema["paths"])
    assert {"/api/digest", "/api/me/digest", "/api/me/profile", "/api/trends", "/api/feeds"} <= paths
