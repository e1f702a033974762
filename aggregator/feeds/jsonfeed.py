"""JSON Feed 1.0 and 1.1 (https://www.jsonfeed.org/version/1.1/) → :class:`~aggregator.feeds.raw.RawFeed`.

Item fields used: ``id``, ``url`` (else ``external_url``), ``title``, ``content_html`` /
``content_text`` (the content), ``summary`` (text), ``date_published`` / ``date_modified``
(RFC 3339), ``authors`` (1.1) or ``author`` (1.0), ``tags``. Feed fields: ``title``,
``home_page_url``, ``feed_url``, ``authors``/``author``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from aggregator.feeds.raw import RawEntry, RawFeed

_VERSION_PREFIX = "https://jsonfeed.org/version/"


def looks_like_json(body: bytes, content_type: str | None) -> bool:
    """True when ``body`` is probably JSON: its first non-blank byte (after a BOM) is ``{``,
    or the ``Content-Type`` says JSON (``application/feed+json``, ``application/json``)."""
    head = body[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return True
    return bool(content_type and "json" in content_type.lower() and not head.startswith(b"<"))


def read_json_feed(body: bytes) -> RawFeed:
    """Read a JSON Feed. Never raises: JSON that does not decode, or is not a JSON Feed, gives
    no entries and a problem line that says so."""
    try:
        doc = json.loads(body.decode("utf-8-sig", errors="replace"))
    except (ValueError, RecursionError) as err:
        return RawFeed(is_feed=False, problems=[f"malformed JSON: {err} (recovered 0 entries)"])
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith(_VERSION_PREFIX):
        return RawFeed(
            is_feed=False, problems=["JSON document but not a JSON Feed (no jsonfeed.org version)"]
        )
    version = "json11" if str(doc["version"]).endswith("1.1") else "json10"
    items = doc.get("items")
    entries = [_item(i) for i in items if isinstance(i, dict)] if isinstance(items, list) else []
    home = _s(doc.get("home_page_url"))
    return RawFeed(
        version=version,
        title=_s(doc.get("title")),
        link=home or None,
        feed_id=_s(doc.get("feed_url")) or None,
        links=tuple(x for x in (home, _s(doc.get("feed_url"))) if x),
        subtitle=_s(doc.get("description")),
        authors=_authors(doc),
        entries=entries,
    )


def _s(value: object) -> str:
    return value if isinstance(value, str) else ""


def _item(item: dict[str, Any]) -> RawEntry:
    url = _s(item.get("url")) or _s(item.get("external_url"))
    guid = item.get("id")
    html_body = _s(item.get("content_html"))
    content, content_html = (html_body, True) if html_body else (_s(item.get("content_text")), False)
    tags = item.get("tags")
    return RawEntry(
        title=_s(item.get("title")),
        links=(url,) if url else (),
        guid=str(guid) if isinstance(guid, (str, int)) and str(guid) else None,
        summary=_s(item.get("summary")),
        content=content,
        content_html=content_html,
        authors=_authors(item),
        categories=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        dates=(_date(item.get("date_published")), _date(item.get("date_modified"))),
    )


def _authors(obj: dict[str, Any]) -> tuple[str, ...]:
    found = obj.get("authors")
    if not isinstance(found, list):
        found = [obj.get("author")]
    return tuple(a["name"] for a in found if isinstance(a, dict) and isinstance(a.get("name"), str))


def _date(value: object) -> dt.datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)
