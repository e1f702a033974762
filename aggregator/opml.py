"""OPML 2.0 (http://opml.org/spec2.opml): read a subscription list into feed configs, write the
feeds table as one, and import feeds into the database.

Imported feeds live in the ``feeds`` table only (tagged ``"opml"``, scheduled like the others);
``feeds.toml`` stays the configuration of the feeds it lists, and syncing it leaves imported
feeds alone. To stop following an imported feed, disable it in the database (or list it in
``feeds.toml`` and remove it from there later).
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .settings import FeedConfig
from .store.tables import Feed

#: Tag put on every feed added by an OPML import; :func:`aggregator.ingest.sync_feeds` keeps
#: such feeds scheduled although ``feeds.toml`` does not list them.
OPML_TAG = "opml"
#: An OPML document larger than this (bytes) is refused.
MAX_OPML_BYTES = 5 * 1024 * 1024


class OpmlError(ValueError):
    """The document is not OPML we can read; the message says why."""


def parse_opml(data: bytes | str) -> list[FeedConfig]:
    """The feeds of an OPML document: every ``<outline>`` with an http(s) ``xmlUrl``, nested
    folders included (a folder's ``text`` becomes a tag), first occurrence of a URL kept.
    ``kind`` is "arxiv" for arxiv.org URLs, otherwise left to detection. Raises
    :class:`OpmlError` for a document that is too large, not well-formed XML, uses a DTD
    (refused: entity expansion), or is not ``<opml>``."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    if len(raw) > MAX_OPML_BYTES:
        raise OpmlError(f"OPML document larger than {MAX_OPML_BYTES // (1024 * 1024)} MiB")
    if b"<!DOCTYPE" in raw[:4096].upper() or b"<!ENTITY" in raw.upper():
        raise OpmlError("OPML with a DTD or entities is not accepted")
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as err:
        raise OpmlError(f"not well-formed XML: {err}") from err
    if root.tag.rsplit("}", 1)[-1].lower() != "opml":
        raise OpmlError(f"root element is <{root.tag}>, not <opml>")
    body = root.find("body")
    if body is None:
        raise OpmlError("no <body> element")
    feeds: list[FeedConfig] = []
    seen: set[str] = set()

    def walk(node: ET.Element, tags: tuple[str, ...]) -> None:
        for outline in node.findall("outline"):
            url = (outline.get("xmlUrl") or outline.get("xmlurl") or "").strip()
            name = " ".join((outline.get("title") or outline.get("text") or "").split())
            if url:
                if url.startswith(("http://", "https://")) and url not in seen:
                    seen.add(url)
                    kind = "arxiv" if "arxiv.org" in url else None
                    feeds.append(FeedConfig(name or url, url, kind, 60, tags))  # type: ignore[arg-type]
            else:
                walk(outline, (*tags, name) if name else tags)

    walk(body, ())
    return feeds


@dataclass(slots=True)
class ImportReport:
    added: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def import_feeds(session: Session, feeds: Sequence[FeedConfig], now: dt.datetime) -> ImportReport:
    """Add feeds whose URL is not in the ``feeds`` table yet, scheduled and due now, tagged
    :data:`OPML_TAG`. A URL already there is left as it is (reported in ``existing``).
    The caller commits."""
    report = ImportReport()
    urls = [f.url for f in feeds]
    have = set(session.scalars(sa.select(Feed.url).where(Feed.url.in_(urls)))) if urls else set()
    for cfg in feeds:
        if cfg.url in have:
            report.existing.append(cfg.url)
            continue
        have.add(cfg.url)
        session.add(
            Feed(
                url=cfg.url,
                name=cfg.name[:300],
                kind=cfg.kind,
                interval_minutes=cfg.interval,
                tags=[OPML_TAG, *cfg.tags],
                scheduled=True,
                next_check_at=now,
                created_at=now,
                error_count=0,
                disabled=False,
            )
        )
        report.added.append(cfg.url)
    session.flush()
    return report


def feeds_opml(session: Session, now: dt.datetime, title: str = "aggregator feeds") -> bytes:
    """OPML 2.0 (UTF-8 bytes) of the scheduled, enabled feeds, one ``<outline type="rss">`` each
    with ``text``, ``title``, ``xmlUrl`` and (when known) ``htmlUrl``-less ``category`` tags."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now.astimezone(dt.UTC), usegmt=True)
    body = ET.SubElement(root, "body")
    rows = session.scalars(
        sa.select(Feed).where(Feed.scheduled.is_(True), Feed.disabled.is_(False)).order_by(Feed.id)
    )
    for feed in rows:
        attrs = {"type": "rss", "text": feed.name, "title": feed.title or feed.name, "xmlUrl": feed.url}
        tags = [t for t in (feed.tags or []) if isinstance(t, str) and t != OPML_TAG]
        if tags:
            attrs["category"] = ",".join(tags)
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
