"""Parsing a search query (``GET /api/search?q=``) into terms, phrases, authors and arXiv ids.

The syntax, after web search engines and arxiv-sanity-lite:

* plain words match words of the title, abstract, authors or arXiv id (stemmed: "models"
  finds "model"); all must match;
* ``"a quoted phrase"`` matches those words in a row;
* ``author:"Yann LeCun"`` (or ``author:LeCun``) matches an author name;
* an arXiv id (``2406.01234``, ``2406.01234v2``, ``hep-th/9901001``) or an arXiv abs/PDF link
  (``https://arxiv.org/abs/2406.01234``, ``arxiv.org/pdf/2406.01234v1.pdf``) finds that paper.

Refused with :class:`BadQuery` (HTTP 422, with a message): an empty query, more than
:data:`MAX_CHARS` characters, an odd number of ``"``, and a query of stop words only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Longest query accepted, in characters.
MAX_CHARS = 300
#: Most words and phrases in one query.
MAX_PARTS = 24

#: English function words that carry no topic (the PostgreSQL ``english`` stop list's core).
STOP_WORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
    ]
)

_ARXIV_NEW = r"\d{4,5}\.\d{4,5}"  # YYMM.NNNNN (5 digits before the dot: bench/load.py's synthetic ids)
_ARXIV_OLD = r"[a-z][a-z.-]*/\d{7}"
ARXIV_ID = re.compile(rf"(?:arxiv:)?({_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?", re.IGNORECASE)
ARXIV_LINK = re.compile(
    rf"(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/({_ARXIV_NEW}|{_ARXIV_OLD})(?:v\d+)?(?:\.pdf)?/?",
    re.IGNORECASE,
)
_PART = re.compile(r'author:"([^"]*)"|author:(\S+)|"([^"]*)"|(\S+)', re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)


class BadQuery(ValueError):
    """A query that cannot be searched; the message says why (HTTP 422)."""


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: ``words`` (lower case, stop words dropped), ``phrases`` and ``authors``
    (each a tuple of lower-case words), ``arxiv_ids`` (without version)."""

    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()
    authors: tuple[tuple[str, ...], ...] = ()
    arxiv_ids: tuple[str, ...] = ()
    text: str = field(default="", compare=False)

    def key(self) -> tuple[object, ...]:
        return (self.words, self.phrases, self.authors, self.arxiv_ids)


def words_of(text: str) -> tuple[str, ...]:
    """The lower-case words of ``text`` (letters, digits, underscore; any script)."""
    return tuple(w.lower() for w in _WORD.findall(text))


def parse(text: str) -> Query:
    """``text`` as a :class:`Query`. Raises :class:`BadQuery` (see the module docstring)."""
    text = text.strip()
    if not text:
        raise BadQuery("the query is empty")
    if len(text) > MAX_CHARS:
        raise BadQuery(f"the query is {len(text)} characters long; at most {MAX_CHARS} are searched")
    if text.count('"') % 2:
        raise BadQuery('unbalanced quotes: close the quoted phrase with a second "')
    words: list[str] = []
    phrases: list[tuple[str, ...]] = []
    authors: list[tuple[str, ...]] = []
    ids: list[str] = []
    for m in _PART.finditer(text):
        quoted_author, bare_author, phrase, token = m.groups()
        if quoted_author is not None or bare_author is not None:
            name = words_of(quoted_author if quoted_author is not None else bare_author)
            if name:
                authors.append(name)
        elif phrase is not None:
            found = words_of(phrase)
            if len(found) == 1 and found[0] not in STOP_WORDS:
                words.append(found[0])
            elif len(found) > 1:
                phrases.append(found)
        elif (link := ARXIV_LINK.fullmatch(token)) or (link := ARXIV_ID.fullmatch(token)):
            ids.append(link.group(1).lower())
        else:
            words.extend(w for w in words_of(token) if w not in STOP_WORDS)
    if len(words) + len(phrases) + len(authors) + len(ids) > MAX_PARTS:
        raise BadQuery(f"too many words: at most {MAX_PARTS} words, phrases and authors")
    if not (words or phrases or authors or ids):
        raise BadQuery("nothing to search for: the query has only stop words or punctuation")
    return Query(tuple(words), tuple(phrases), tuple(authors), tuple(dict.fromkeys(ids)), text)
