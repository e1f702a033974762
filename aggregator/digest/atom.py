"""The personal Atom feed (RFC 4287) of a reader's digest, built with ElementTree: one entry
per item, each day's best first, with abstract and PDF links for papers. Characters XML 1.0
forbids are dropped from feed text."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from fastapi import Request

from aggregator.digest import badges, personal
from aggregator.store.tables import Reader

_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


ATOM_NS = "http://www.w3.org/2005/Atom"


def _x(text: str | None) -> str:
    """Text safe for XML 1.0 (control characters removed); ElementTree escapes the rest."""
    return _XML_BAD.sub("", text or "")


#: authors named per Atom entry (a few papers have hundreds; the rest are summed up as "et al.")
ATOM_AUTHORS = 50


def arxiv_links(arxiv_id: str) -> tuple[str, str]:
    """The abstract page and the PDF of an arXiv paper."""
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"


def atom_feed(
    request: Request, reader: Reader, days: list[personal.ReaderDigest], start: dt.date, end: dt.date
) -> bytes:
    """Atom 1.0 (RFC 4287) of a reader's digests of the local days ``start``..``end``, UTF-8
    bytes: ``days`` newest day first, each day's items best first. Entry ids are the items'
    API URLs (stable); ``published``/``updated`` the announcement/publication time; one
    ``author`` per author (at most :data:`ATOM_AUTHORS`); the summary (plain text) is the
    abstract, then the source and what matched. A paper links its abstract page
    (``rel="alternate"``) and its PDF (``rel="related" type="application/pdf"``)."""

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, tag, attrs)
        if text is not None:
            el.text = _x(text)
        return el

    entries = [(d, e) for d in days for e in d.items]
    feed = ET.Element("feed", xmlns=ATOM_NS)
    sub(feed, "id", f"urn:aggregator:reader:{reader.id}:digest")
    span = end.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
    sub(feed, "title", f"aggregator digest for {reader.email} · {span}")
    newest = max((e.entry.published for _, e in entries), default=dt.datetime.now(dt.UTC))
    sub(feed, "updated", newest.astimezone(dt.UTC).isoformat())
    sub(sub(feed, "author"), "name", "aggregator")
    sub(feed, "link", rel="alternate", href=str(request.url_for("reader_digest_page")))
    sub(feed, "generator", "aggregator")
    for d, e in entries:
        item = e.entry
        api_url = str(request.url_for("get_item", item_id=str(item.id)))
        when = item.published.astimezone(dt.UTC).isoformat()
        entry = sub(feed, "entry")
        sub(entry, "id", api_url)
        sub(entry, "title", item.title)
        if item.arxiv_id:
            abstract, pdf = arxiv_links(item.arxiv_id)
            sub(entry, "link", rel="alternate", href=_x(abstract))
            sub(entry, "link", rel="related", type="application/pdf", href=_x(pdf), title="PDF")
        else:
            sub(entry, "link", rel="alternate", href=_x(item.url or api_url))
        sub(entry, "published", when)
        sub(entry, "updated", when)
        for name in item.authors[:ATOM_AUTHORS] or [item.source]:
            sub(sub(entry, "author"), "name", name)
        for slug in e.topics:
            sub(entry, "category", term=slug)
        for category in item.categories[:8]:
            sub(entry, "category", term=category)
        lines = [item.summary[:4000]] if item.summary else []
        lines += badges.add_to_atom_entry(entry, item)  # venue badge, code/project links
        if len(item.authors) > ATOM_AUTHORS:
            lines.append(f"Authors: {', '.join(item.authors[:ATOM_AUTHORS])} et al. ({len(item.authors)})")
        about = [f"From {item.source}"]
        if d.digest.ranked:
            about.append(f"score {item.score:.3f}")
        why = ", ".join(str(w["term"]) for w in item.why)
        if why:
            about.append(f"matched: {why}")
        lines.append(" · ".join(about))
        sub(entry, "summary", "\n\n".join(lines), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
