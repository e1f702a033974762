"""Library export and import: BibTeX (bibtexparser 2.x), RIS (rispy) and CSL-JSON.

Export writes each saved item once. An arXiv paper follows arXiv's own "Export BibTeX
citation" convention (the abstract page's button, e.g. https://arxiv.org/bibtex/1706.03762):
``@misc{vaswani2017attention, title, author = {A and B}, year, eprint, archivePrefix = {arXiv},
primaryClass, url = {https://arxiv.org/abs/ID}}``; a blog post is an ``@misc`` with its URL
and ``howpublished`` (its feed). Tags go to ``keywords``, the note to ``note`` (RIS ``KW``/``N1``,
CSL ``keyword``/``note``). RIS type ``GEN`` (arXiv preprints) or ``ELEC`` (posts), with the
arXiv DOI ``10.48550/arXiv.ID`` (DataCite DOIs arXiv assigns to every paper). CSL-JSON follows
the CSL 1.0.2 schema (type ``article`` for preprints, ``post-weblog`` for posts).

Import parses a file into :class:`Reference` entries and finds an arXiv id in ``eprint``,
``url``, a ``doi`` ``10.48550/arXiv.…``, ``note``/``journal``/``howpublished`` text
(``arXiv:2401.01234``) — in that order. A malformed file raises :class:`CitationError` naming
the (1-based) line.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import bibtexparser
import rispy
from bibtexparser.model import Entry, Field

from aggregator.feeds.arxiv import split_arxiv_id

Format = Literal["bibtex", "ris", "csl"]


class CitationError(ValueError):
    """A file that cannot be read; the message names the line."""


@dataclass(frozen=True, slots=True)
class Work:
    """What an export needs of one saved item."""

    item_id: int
    title: str
    authors: Sequence[str]
    published: dt.datetime
    url: str | None
    arxiv_id: str | None
    primary_category: str | None
    source: str
    tags: Sequence[str] = ()
    note: str = ""
    venue: str | None = None


# --- export --------------------------------------------------------------------------------------

_STOP = frozenset(
    ["a", "an", "the", "of", "on", "in", "for", "to", "and", "with", "from", "by", "at", "is", "are"]
    + ["via", "towards", "toward"]
)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def cite_key(work: Work) -> str:
    """arXiv's key shape: first author's family name, year, first two significant title words,
    lower-case ASCII (``vaswani2017attentionneed``)."""
    family = re.sub(r"[^a-z]", "", _ascii(work.authors[0].split()[-1]).lower()) if work.authors else ""
    words = [w for w in re.findall(r"[a-z0-9]+", _ascii(work.title).lower()) if w not in _STOP]
    return (family or "item") + str(work.published.year) + "".join(words[:2])


def _braces_ok(text: str) -> str:
    """``text`` with braces dropped when unbalanced (they would end the BibTeX value)."""
    depth = 0
    for ch in text:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            break
    return text if depth == 0 else text.replace("{", "").replace("}", "")


def to_bibtex(works: Sequence[Work]) -> str:
    """The works as BibTeX text (written by bibtexparser), keys made unique with a, b, …."""
    library = bibtexparser.Library()
    used: dict[str, int] = {}
    for w in works:
        key = cite_key(w)
        n = used.get(key, 0)
        used[key] = n + 1
        if n:
            key += chr(ord("a") + n - 1) if n <= 26 else str(n)
        fields = [
            Field("title", _braces_ok(w.title)),
            Field("author", _braces_ok(" and ".join(w.authors) or w.source)),
        ]
        fields.append(Field("year", str(w.published.year)))
        if w.arxiv_id:
            fields += [Field("eprint", w.arxiv_id), Field("archivePrefix", "arXiv")]
            if w.primary_category:
                fields.append(Field("primaryClass", w.primary_category))
            fields.append(Field("url", f"https://arxiv.org/abs/{w.arxiv_id}"))
        else:
            fields += [Field("howpublished", _braces_ok(w.source)), Field("url", w.url or "")]
        if w.tags:
            fields.append(Field("keywords", _braces_ok(", ".join(w.tags))))
        if w.note:
            fields.append(Field("note", _braces_ok(w.note)))
        library.add(Entry("misc", key, fields))
    return bibtexparser.write_string(library)


def _split_name(name: str) -> tuple[str, str]:
    """``(family, given)`` of ``First Middle Last`` (particles such as ``van der`` kept with the family)."""
    parts = name.split()
    if len(parts) <= 1:
        return name, ""
    i = len(parts) - 1
    while i > 1 and parts[i - 1].lower() in {"van", "von", "der", "de", "den", "del", "da", "di", "la", "le"}:
        i -= 1
    return " ".join(parts[i:]), " ".join(parts[:i])


def to_ris(works: Sequence[Work]) -> str:
    """The works as RIS text (written by rispy)."""
    refs: list[dict[str, Any]] = []
    for w in works:
        ref: dict[str, Any] = {
            "type_of_reference": "GEN" if w.arxiv_id else "ELEC",
            "title": w.title,
            "authors": [", ".join(p for p in _split_name(a) if p) for a in w.authors] or [w.source],
            "year": str(w.published.year),
            "date": w.published.strftime("%Y/%m/%d"),
            "urls": [f"https://arxiv.org/abs/{w.arxiv_id}" if w.arxiv_id else (w.url or "")],
        }
        if w.arxiv_id:
            ref["doi"] = f"10.48550/arXiv.{w.arxiv_id}"
            ref["publisher"] = "arXiv"
            ref["number"] = w.arxiv_id
        else:
            ref["publisher"] = w.source
        if w.tags:
            ref["keywords"] = list(w.tags)
        if w.note:
            ref["notes"] = [w.note]
        refs.append(ref)
    return str(rispy.dumps(refs))


def to_csl(works: Sequence[Work]) -> list[dict[str, Any]]:
    """The works as CSL-JSON items (a JSON array once serialised)."""
    out = []
    for w in works:
        item: dict[str, Any] = {
            "id": cite_key(w) + f"-{w.item_id}",
            "type": "article" if w.arxiv_id else "post-weblog",
            "title": w.title,
            "author": [
                {"family": f, "given": g} if g else {"literal": f} for f, g in map(_split_name, w.authors)
            ],
            "issued": {"date-parts": [[w.published.year, w.published.month, w.published.day]]},
            "URL": f"https://arxiv.org/abs/{w.arxiv_id}" if w.arxiv_id else w.url,
        }
        if w.arxiv_id:
            item |= {
                "DOI": f"10.48550/arXiv.{w.arxiv_id}",
                "number": w.arxiv_id,
                "publisher": "arXiv",
                "genre": "Preprint",
            }
        else:
            item["container-title"] = w.source
        if w.tags:
            item["keyword"] = ", ".join(w.tags)
        if w.note:
            item["note"] = w.note
        out.append(item)
    return out


# --- import --------------------------------------------------------------------------------------


@dataclass(slots=True)
class Reference:
    """One entry of an imported file: where it starts (1-based line), its title, and the
    arXiv id found in it (None when there is none)."""

    line: int
    title: str
    arxiv_id: str | None
    tags: list[str] = field(default_factory=list)


_DOI = re.compile(r"10\.48550/arxiv\.(\S+)", re.IGNORECASE)
_ARXIV_TEXT = re.compile(r"arxiv[:\s/.]*(?:abs/|pdf/)?(\S+)", re.IGNORECASE)


def find_arxiv_id(
    eprint: str = "", url: str = "", doi: str = "", notes: Sequence[str] = (), prefix: str = ""
) -> str | None:
    """The arXiv id of an entry: its ``eprint`` (unless ``archivePrefix`` names another
    archive), an arxiv.org ``url``, a ``10.48550/arXiv.`` DOI, or ``arXiv:ID`` in free text."""
    candidates = []
    if eprint and (not prefix or prefix.lower() == "arxiv"):
        candidates.append(eprint)
    if url and "arxiv.org" in url.lower():
        candidates.append(url)
    if doi and (m := _DOI.search(doi)):
        candidates.append(m.group(1))
    for text in notes:
        candidates += [m.group(1) for m in _ARXIV_TEXT.finditer(text or "")]
    for text in candidates:
        found = split_arxiv_id(text.strip())
        if found is not None:
            return found[0]
    return None


def _plain(text: str) -> str:
    """BibTeX text without braces, LaTeX commands' backslashes and extra whitespace."""
    text = re.sub(r"\\[a-zA-Z]+\s*", "", text)
    return " ".join(text.replace("{", "").replace("}", "").split())


def normalise_title(title: str) -> str:
    """Compare key of titles: NFKC, case folded, only letters and digits, single spaces."""
    text = unicodedata.normalize("NFKC", _plain(title)).casefold()
    return " ".join(re.findall(r"\w+", text))


def sniff(text: str, filename: str | None = None) -> Format:
    """The format of an uploaded file, from its name's suffix, else its first character(s)."""
    name = (filename or "").lower()
    for suffix, fmt in ((".bib", "bibtex"), (".bibtex", "bibtex"), (".ris", "ris"), (".json", "csl")):
        if name.endswith(suffix):
            return fmt  # type: ignore[return-value]
    head = text.lstrip()
    if head[:1] in "[{":
        return "csl"
    if re.match(r"(?m)^TY  - ", head) or re.search(r"(?m)^TY  - ", head[:2000]):
        return "ris"
    return "bibtex"


def parse_bibtex(text: str) -> list[Reference]:
    """References of a BibTeX file; CitationError at the first block that does not parse."""
    library = bibtexparser.parse_string(text)
    for block in library.failed_blocks:
        if type(block).__name__ != "DuplicateBlockKeyBlock":
            raise CitationError(
                f"BibTeX: line {(block.start_line or 0) + 1}: this entry is malformed ({block.error})"
            )
    out = []
    for e in library.entries:
        f = {k.lower(): str(v.value) for k, v in e.fields_dict.items()}
        notes = [f.get(k, "") for k in ("note", "journal", "howpublished", "annote", "number")]
        arxiv_id = find_arxiv_id(
            f.get("eprint", ""), f.get("url", ""), f.get("doi", ""), notes, f.get("archiveprefix", "")
        )
        tags = [t.strip() for t in f.get("keywords", "").split(",") if t.strip()]
        out.append(Reference((e.start_line or 0) + 1, _plain(f.get("title", "")), arxiv_id, tags))
    return out


_RIS_TAG = re.compile(r"^([A-Z][A-Z0-9])  -( |$)")


def _check_ris(text: str) -> None:
    """Raise CitationError at the first line out of place: a tag outside a ``TY``…``ER``
    record, a ``TY`` inside one, or a record never closed."""
    open_at = 0
    for n, line in enumerate(text.splitlines(), 1):
        m = _RIS_TAG.match(line.lstrip("\ufeff"))
        if m is None:
            if line.strip() and not open_at:
                raise CitationError(f"RIS: line {n}: text outside a record (records start with 'TY  - ')")
            continue
        tag = m.group(1)
        if tag == "TY":
            if open_at:
                raise CitationError(
                    f"RIS: line {n}: a new record starts before the one of line {open_at} ended (ER)"
                )
            open_at = n
        elif not open_at:
            raise CitationError(f"RIS: line {n}: tag {tag} outside a record (records start with 'TY  - ')")
        elif tag == "ER":
            open_at = 0
    if open_at:
        raise CitationError(f"RIS: line {open_at}: this record has no end (ER  - )")


def parse_ris(text: str) -> list[Reference]:
    """References of a RIS file (read by rispy after a line check)."""
    _check_ris(text)
    starts = [n for n, line in enumerate(text.splitlines(), 1) if line.lstrip("\ufeff").startswith("TY  - ")]
    out = []
    for line, ref in zip(starts, rispy.loads(text.lstrip("\ufeff")), strict=False):
        urls = ref.get("urls") or []
        notes = list(ref.get("notes") or []) + [
            str(ref.get(k) or "") for k in ("number", "journal_name", "secondary_title")
        ]
        arxiv_id = find_arxiv_id("", " ".join(urls), str(ref.get("doi") or ""), notes)
        title = str(ref.get("title") or ref.get("primary_title") or "")
        out.append(Reference(line, title, arxiv_id, list(ref.get("keywords") or [])))
    return out


def parse_csl(text: str) -> list[Reference]:
    """References of a CSL-JSON file (an array of items, or one item)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise CitationError(f"CSL-JSON: line {err.lineno}: {err.msg}") from err
    items = data if isinstance(data, list) else [data]
    out = []
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise CitationError(f"CSL-JSON: item {n} is not an object")
        notes = [str(item.get(k) or "") for k in ("note", "number", "container-title", "archive_location")]
        arxiv_id = find_arxiv_id("", str(item.get("URL") or ""), str(item.get("DOI") or ""), notes)
        keywords = [k.strip() for k in str(item.get("keyword") or "").split(",") if k.strip()]
        out.append(Reference(n, str(item.get("title") or ""), arxiv_id, keywords))
    return out


def parse(text: str, fmt: Format) -> list[Reference]:
    """References of ``text`` in ``fmt``; CitationError for a malformed file."""
    return {"bibtex": parse_bibtex, "ris": parse_ris, "csl": parse_csl}[fmt](text)
