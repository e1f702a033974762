"""Remote images in posts' HTML become links (issue 14, finding 14).

A post's ``summary_html`` (sanitised by nh3 at ingest) may hold ``<img src="https://…">``: a
reader's client that renders it would load the image from the publisher -- or from whoever
wrote the feed -- telling them who read what and when (a tracking pixel). Before any
``summary_html`` leaves the server, :func:`without_remote_images` replaces every image whose
source is not a ``data:`` URL by a link to it, ``[image: ALT]``: the reader loads it only by
following the link (consent). The pages never render ``summary_html`` and their
Content-Security-Policy allows images from this origin only
(:mod:`aggregator.api.security_headers`); the emails carry no post HTML.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import nh3

_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_URL_SCHEMES = {"http", "https", "mailto"}


class _Attrs(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.attrs: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attrs = {k.lower(): v or "" for k, v in attrs}

    handle_startendtag = handle_starttag


def _as_link(match: re.Match[str]) -> str:
    parser = _Attrs()
    parser.feed(match.group(0))
    src, alt = parser.attrs.get("src", "").strip(), parser.attrs.get("alt", "").strip()
    if src.lower().startswith("data:"):
        return match.group(0)  # inline: loads nothing from anywhere
    label = html.escape(f"[image: {alt}]" if alt else "[image]")
    if not src.lower().startswith(("http://", "https://")):
        return label
    return f'<a href="{html.escape(src, quote=True)}">{label}</a>'


def without_remote_images(fragment: str | None) -> str | None:
    """``fragment`` with every remote ``<img>`` replaced by a link to it (labelled with its
    ``alt`` text), sanitised again (nh3 defaults, http/https/mailto links only). None → None."""
    if fragment is None or "<img" not in fragment.lower():
        return fragment
    return nh3.clean(_IMG.sub(_as_link, fragment), url_schemes=_URL_SCHEMES)
