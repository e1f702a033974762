"""OPML 2.0 (http://opml.org/spec2.opml): read a subscription list into feed configs, write the
feeds table as one, and import feeds into the database.

Imported feeds live in the ``feeds`` table only (tagged ``"opml"``, scheduled like the others);
``feeds.toml`` stays the configuration of the feeds it lists, and syncing it leaves imported
feeds alone. To stop following an imported feed, disable it in the database (or list it in
``feeds.toml`` and remove it from there later). Importing a feed the database knows but no longer
follows schedules it again.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.utils import format_datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.config import FeedConfig
from aggregator.store.tables import Feed

#: Tag put on every feed added by an OPML import; :func:`aggregator.feeds.ingest.sync_feeds` keeps
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


ImportState = Literal["added", "rescheduled", "existing"]


@dataclass(frozen=True, slots=True)
class ImportedFeed:
    """One feed of an import: its URL, its name (the stored one for a feed the database knew)
    and what the import did: ``"added"`` (a new row), ``"rescheduled"`` (a known feed that was
    unscheduled or disabled, scheduled again) or ``"existing"`` (followed already, untouched)."""

    url: str
    name: str
    state: ImportState


@dataclass(slots=True)
class ImportReport:
    """What :func:`import_feeds` did, one :class:`ImportedFeed` per feed in the document's order;
    ``added``, ``rescheduled`` and ``existing`` are the URLs in each state."""

    feeds: list[ImportedFeed] = field(default_factory=list)

    def _urls(self, state: ImportState) -> list[str]:
        return [f.url for f in self.feeds if f.state == state]

    @property
    def added(self) -> list[str]:
        return self._urls("added")

    @property
    def rescheduled(self) -> list[str]:
        return self._urls("rescheduled")

    @property
    def existing(self) -> list[str]:
        return self._urls("existing")


def import_feeds(session: Session, feeds: Sequence[FeedConfig], now: dt.datetime) -> ImportReport:
    """Follow the feeds of an import. A URL not in the ``feeds`` table yet is added, scheduled
    and due now, tagged :data:`OPML_TAG`. A known feed that is not followed any more (unscheduled,
    e.g. removed from ``feeds.toml`` or by the reader who added it, or disabled after an HTTP 410)
    is scheduled again the same way: due now, enabled, error count and last error cleared, tagged
    :data:`OPML_TAG` (so the next ``feeds.toml`` sync keeps it), and now the operator's feed
    (``reader_added`` false: a reader's limit no longer counts it); its name and items stay. A
    feed already scheduled and enabled is left as it is. The caller commits."""
    report = ImportReport()
    urls = [f.url for f in feeds]
    have = {f.url: f for f in session.scalars(sa.select(Feed).where(Feed.url.in_(urls)))} if urls else {}
    done: set[str] = set()
    for cfg in feeds:
        if cfg.url in done:
            continue
        done.add(cfg.url)
        known = have.get(cfg.url)
        if known is not None and known.scheduled and not known.disabled:
            report.feeds.append(ImportedFeed(cfg.url, known.name, "existing"))
            continue
        if known is not None:
            known.scheduled, known.disabled, known.next_check_at = True, False, now
            known.error_count, known.last_error, known.lease_until = 0, None, None
            known.reader_added, known.added_by = False, None
            if OPML_TAG not in (known.tags or []):
                known.tags = [OPML_TAG, *(known.tags or [])]
            report.feeds.append(ImportedFeed(cfg.url, known.name, "rescheduled"))
            continue
        name = cfg.name[:300]
        session.add(
            Feed(
                url=cfg.url,
                name=name,
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
        report.feeds.append(ImportedFeed(cfg.url, name, "added"))
    session.flush()
    return report


def feeds_opml(session: Session, now: dt.datetime, title: str = "aggregator feeds") -> bytes:
    """OPML 2.0 (UTF-8 bytes) of the scheduled, enabled feeds, one ``<outline type="rss">`` each
    with ``text``, ``title``, ``xmlUrl`` and (when known) ``htmlUrl``-less ``category`` tags.
    Feeds readers added are left out: the export is public and their URLs are not."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    ET.SubElement(head, "dateCreated").text = format_datetime(now.astimezone(dt.UTC), usegmt=True)
    body = ET.SubElement(root, "body")
    rows = session.scalars(
        sa.select(Feed)
        .where(Feed.scheduled.is_(True), Feed.disabled.is_(False), Feed.reader_added.is_(False))
        .order_by(Feed.id)
    )
    for feed in rows:
        attrs = {"type": "rss", "text": feed.name, "title": feed.title or feed.name, "xmlUrl": feed.url}
        tags = [t for t in (feed.tags or []) if isinstance(t, str) and t != OPML_TAG]
        if tags:
            attrs["category"] = ",".join(tags)
        ET.SubElement(body, "outline", attrs)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
