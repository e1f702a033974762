"""Validation of the free-form fields readers send (lists of phrases, authors, seed papers,
slugs): bounded sizes, blanks dropped, duplicates removed. Bad input raises
:class:`aggregator.errors.ReaderError` naming the field."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from aggregator.errors import ReaderError
from aggregator.feeds.arxiv import split_arxiv_id

#: A list field of a profile or topic filter holds at most this many entries of at most
#: ``MAX_ENTRY_CHARS`` characters each.
MAX_LIST_ENTRIES = 200


MAX_ENTRY_CHARS = 300


MAX_INTERESTS_CHARS = 10_000


SLUG_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?\Z")


def clean_list(values: Iterable[Any] | None, name: str) -> list[str]:
    """Strip, collapse inner whitespace, drop empty and duplicate (case-insensitive) entries.

    Raises :class:`ReaderError` for a non-string entry, one over ``MAX_ENTRY_CHARS``
    characters, or more than ``MAX_LIST_ENTRIES`` entries."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values or ():
        if not isinstance(value, str):
            raise ReaderError(f"{name}: every entry must be a string, not {value!r}")
        text = " ".join(value.split())
        if not text or text.lower() in seen:
            continue
        if len(text) > MAX_ENTRY_CHARS:
            raise ReaderError(f"{name}: entry {text[:40]!r}… is longer than {MAX_ENTRY_CHARS} characters")
        seen.add(text.lower())
        out.append(text)
    if len(out) > MAX_LIST_ENTRIES:
        raise ReaderError(f"{name}: at most {MAX_LIST_ENTRIES} entries, got {len(out)}")
    return out


def normalise_seed_papers(values: Iterable[str] | None) -> list[str]:
    """arXiv ids (bare, without version) of seed papers given as ids, ``arXiv:`` references or
    abs/pdf links, in order, without duplicates (normalised with
    :func:`aggregator.feeds.arxiv.split_arxiv_id`). Raises :class:`ReaderError` naming every entry
    that holds no arXiv id."""
    ids: list[str] = []
    bad: list[str] = []
    for value in clean_list(values, "seed_papers"):
        parts = split_arxiv_id(value)
        if parts is None:
            bad.append(value)
        elif parts[0] not in ids:
            ids.append(parts[0])
    if bad:
        raise ReaderError(
            "seed_papers: not an arXiv id or link: "
            + ", ".join(repr(b) for b in bad)
            + " (expected e.g. 2606.13733 or https://arxiv.org/abs/2606.13733)"
        )
    return ids


def non_blank_strings(values: Any) -> tuple[str, ...]:
    """The non-blank strings of a JSON list column (None → empty)."""
    return tuple(str(v) for v in (values or ()) if str(v).strip())
