"""The links researchers use, for the outputs that are not web pages: the Atom feed and the
weekly email (issue 13: "every paper links to its abstract and its PDF, in the pages, the Atom
feed and the weekly email"; code and project links; the accepted venue as a badge).

Pure functions over a :class:`aggregator.digest.public.DigestEntry` (its ``abs_url``,
``pdf_url``, ``venue_label``, ``venue_workshop`` and ``links`` fields, filled from the
``items`` columns by :func:`aggregator.digest.cards.links_fields`; venues and links come from
:mod:`aggregator.feeds.venues`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from aggregator.digest.public import DigestEntry

#: Atom category scheme of the venue badge (``term`` = canonical venue, ``label`` = badge text)
VENUE_SCHEME = "urn:aggregator:venue"
#: code and project links shown per item (the extractor keeps at most 6)
MAX_LINKS = 4


@dataclass(frozen=True, slots=True)
class PaperLinks:
    """An item's links: ``abs_url``/``pdf_url`` (arXiv papers, else None), the venue badge
    text (``NeurIPS 2025 (Oral)``, ``ICML 2026 Workshop``; None when no acceptance was found)
    and its canonical ``venue``, and ``code``/``project`` URLs (at most :data:`MAX_LINKS`)."""

    abs_url: str | None = None
    pdf_url: str | None = None
    venue: str | None = None
    venue_label: str | None = None
    workshop: bool = False
    code: list[str] = field(default_factory=list)
    project: list[str] = field(default_factory=list)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """``(label, url)`` in reading order: Abstract, PDF, Code, Project (numbered when
        there are several)."""
        out = []
        if self.abs_url:
            out.append(("Abstract", self.abs_url))
        if self.pdf_url:
            out.append(("PDF", self.pdf_url))
        for name, urls in (("Code", self.code), ("Project", self.project)):
            out += [(name if len(urls) == 1 else f"{name} {i}", u) for i, u in enumerate(urls, 1)]
        return out


def paper_links(entry: DigestEntry) -> PaperLinks:
    """The :class:`PaperLinks` of one digest entry (abstract and PDF from the arXiv id when
    the entry has none)."""
    abs_url = entry.abs_url or (f"https://arxiv.org/abs/{entry.arxiv_id}" if entry.arxiv_id else None)
    pdf_url = entry.pdf_url or (f"https://arxiv.org/pdf/{entry.arxiv_id}" if entry.arxiv_id else None)
    links = entry.links or []
    return PaperLinks(
        abs_url=abs_url,
        pdf_url=pdf_url,
        venue=entry.venue,
        venue_label=entry.venue_label,
        workshop=entry.venue_workshop,
        code=[link["url"] for link in links if link.get("kind") == "code"][:MAX_LINKS],
        project=[link["url"] for link in links if link.get("kind") == "project"][:MAX_LINKS],
    )


def add_to_atom_entry(element: ET.Element, entry: DigestEntry) -> list[str]:
    """Add an entry's venue and code/project links to its Atom ``<entry>`` (RFC 4287):
    ``<category scheme="urn:aggregator:venue" term="NeurIPS" label="NeurIPS 2025 (Oral)"/>``
    and one ``<link rel="related" title="code"|"project" href=…/>`` per link (the abstract
    page and PDF links are the caller's). Returns lines for the entry's plain-text summary
    (``Venue: …``, ``Code: …``, ``Project: …``, ``PDF: …``), since most feed readers show no
    categories or related links."""
    found = paper_links(entry)
    lines = []
    if found.venue and found.venue_label:
        badge = {"scheme": VENUE_SCHEME, "term": found.venue, "label": found.venue_label}
        ET.SubElement(element, "category", badge)
        lines.append(f"Venue: {found.venue_label}")
    for kind, urls in (("code", found.code), ("project", found.project)):
        for url in urls:
            ET.SubElement(element, "link", {"rel": "related", "href": url, "title": kind})
        if urls:
            lines.append(f"{kind.capitalize()}: {' '.join(urls)}")
    if found.pdf_url:
        lines.append(f"PDF: {found.pdf_url}")
    return lines
