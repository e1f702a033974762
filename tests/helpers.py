"""Helpers shared by the test modules (plain functions; fixtures live in ``conftest.py``)."""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from aggregator.store.tables import Feed

if TYPE_CHECKING:
    import sqlalchemy as sa

    from aggregator.config import Settings


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_feed(
    session: Session,
    name: str = "bulk",
    url: str | None = None,
    kind: str = "arxiv",
    now: dt.datetime | None = None,
) -> int:
    """Insert a feed row (not scheduled by feeds.toml) and return its id; flushes, never commits."""
    feed = Feed(
        url=url or f"test://{name}",
        name=name,
        kind=kind,
        created_at=now or dt.datetime.now(dt.UTC),
        error_count=0,
        disabled=False,
        tags=[],
    )
    session.add(feed)
    session.flush()
    return feed.id


def signin_link(app: object, email: str, purpose: str | None = None) -> str:
    """The path of a fresh sign-in link (``/signin/link?t=…``) for the reader with ``email`` on
    ``app`` (a FastAPI app): the token :func:`aggregator.accounts.links.issue_link` makes for
    the mail, without the mail (no hourly limit). ``purpose`` by default is the link the reader
    would have: the verification link while the address is unverified (so the API token of the
    sign-up keeps working), else a sign-in link. Tests that are not about mail use it through
    :func:`sign_in`; ``tests/test_accounts.py`` takes the link from a real mail instead."""
    from urllib.parse import quote

    from aggregator.accounts import links, readers
    from aggregator.mail.tokens import signing_key

    state = app.state  # type: ignore[attr-defined]
    with state.sessionmaker() as session:
        reader = readers.reader_by_email(session, email)
        assert reader is not None, f"no reader {email}"
        key = signing_key(session, state.settings)
        purpose = purpose or ("signin" if reader.email_verified_at else "verify")
        token = links.issue_link(session, reader.id, purpose, key, per_hour=10**6)  # type: ignore[arg-type]
        session.commit()
    assert token is not None
    return f"/signin/link?t={quote(token, safe='')}"


def csrf_of(html: str) -> str:
    """The value of the first ``csrf_token`` field of a page."""
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def sign_in(client: Any, email: str) -> None:
    """Sign ``client`` (a ``fastapi.testclient.TestClient``) in as the reader with ``email``
    through the real link pages: GET the link's confirmation page, POST its button."""
    page = client.get(signin_link(client.app, email))
    assert page.status_code == 200, page.text
    used = client.post(
        "/signin/link",
        data={"t": hidden_field(page.text, "t"), "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert used.status_code == 303, used.text


def hidden_field(html: str, name: str) -> str:
    marker = f'name="{name}" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


@contextlib.contextmanager
def serve(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    """The app served by a real uvicorn on a free loopback port (in a thread); yields its base
    URL. Waits up to 30 s for start-up, and for the thread at exit."""
    import uvicorn

    from aggregator.api.app import create_app

    port = free_port()
    config = uvicorn.Config(
        create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start within 30 s"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def glued_separators(html: str) -> list[str]:
    """Where a page's visible text has a "·" separator touching a word ("cs.CV· Jun"): Jinja's
    ``trim_blocks``/``lstrip_blocks`` take the line breaks around block tags, so a part of a
    line that starts with a tag must bring its own space. Returns the snippets (none: good)."""
    import html as html_lib
    import re

    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    text = html_lib.unescape(re.sub(r"<[^>]+>", "", body))
    return [m.group(0) for m in re.finditer(r".{0,20}(?:\S·|·\S).{0,20}", text)]
