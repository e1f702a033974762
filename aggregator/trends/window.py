"""The items of a report's window: labels, coined names, examples and blog attention."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Item, ItemLink
from aggregator.trends.counts import _batched, item_scopes
from aggregator.trends.report import TrendItem, _Cand
from aggregator.trends.terms import _BREAK, _NORMAL, _NUMBER_UNIT, _RAW_TOKEN, _tokens, item_text

MAX_EXAMPLES = 6


class _WindowItems:
    """The items published in a window (every scope), read once and shared by the scopes'
    reports of one refresh: their post links, token case statistics (for labels and coined
    names) and, lazily, their normalised texts (for examples and blog attention)."""

    def __init__(self, session: Session, start: dt.date, end: dt.date) -> None:
        lo = dt.datetime.combine(start, dt.time(0), dt.UTC)
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
        self.rows: list[Any] = list(
            session.execute(
                sa.select(
                    Item.id, Item.kind, Item.title, Item.url, Item.summary, Item.categories, Item.published
                ).where(Item.published >= lo, Item.published < hi)
            )
        )
        self.scopes = [frozenset(item_scopes(r.kind, r.categories or ())) for r in self.rows]
        self.linked: dict[int, set[int]] = defaultdict(set)
        paper_ids = [r.id for r in self.rows if r.kind == "paper"]
        for part in _batched(paper_ids, 500):
            for post_id, paper_id in session.execute(
                sa.select(ItemLink.post_id, ItemLink.paper_id).where(ItemLink.paper_id.in_(part))
            ):
                self.linked[paper_id].add(post_id)
        self._texts: dict[int, str] = {}
        self._raw: dict[frozenset[str], Counter[str]] | None = None
        self._forms: dict[str, list[str]] = {}

    def text(self, i: int) -> str:
        """Row ``i``'s normalised tokens, space-separated with ``|`` between runs and a space at
        both ends, so ``f" {term} "`` is found exactly where the term was counted."""
        text = self._texts.get(i)
        if text is None:
            r = self.rows[i]
            text = self._texts[i] = f" {' '.join(_tokens(item_text(r.title, r.summary or '')))} "
        return text

    def raw_counts(self) -> tuple[dict[frozenset[str], Counter[str]], dict[str, list[str]]]:
        """Occurrences of each raw token (``[A-Za-z0-9]+``, case kept) per group of rows with the
        same scopes, and the raw forms of each normalised token written in upper case: one
        regex pass and one C-level count per group, so per-scope case statistics need no pass
        over the texts."""
        if self._raw is None:
            texts: dict[frozenset[str], list[str]] = defaultdict(list)
            for r, scopes in zip(self.rows, self.scopes, strict=True):
                texts[scopes].append(item_text(r.title, r.summary or ""))
            self._raw = {g: Counter(_RAW_TOKEN.findall("\n".join(t))) for g, t in texts.items()}
            forms: dict[str, list[str]] = defaultdict(list)
            for raw in set().union(*self._raw.values()):
                token = _NORMAL[raw.lower()]
                if token != _BREAK:
                    forms[token].append(raw)
            # only tokens written all-caps or with an upper-case letter after the first somewhere
            # can be labelled upper-case or count as names ("The" is neither)
            self._forms = {
                t: f for t, f in forms.items() if any(r.isupper() or r[1:] != r[1:].lower() for r in f)
            }
        return self._raw, self._forms

    def view(self, scope: str) -> _Window:
        order = sorted(
            (i for i, scopes in enumerate(self.scopes) if scope in scopes),
            key=lambda i: (
                self.rows[i].kind != "post",
                -len(self.linked.get(self.rows[i].id, ())),
                -self.rows[i].published.timestamp(),
            ),
        )
        return _Window(self, scope, order)


class _Window:
    """The window's items of one scope (a view of :class:`_WindowItems`): labels, coined-name
    test, examples and blog attention."""

    def __init__(self, items: _WindowItems, scope: str, order: list[int]) -> None:
        self.items = items
        self.scope = scope
        self.order = order  # posts, then papers by posts linking them, then newest first
        self._case: dict[str, tuple[int, int, int]] = {}
        self._docs: dict[str, frozenset[int]] = {}

    def case(self, token: str) -> tuple[int, int, int]:
        """(occurrences, all-caps occurrences, occurrences with an upper-case letter after the
        first) of a normalised token in the scope's window texts; (0, 0, 0) for a token never
        written all-caps or with an upper-case letter after the first (all that labels and names
        need to know)."""
        stats = self._case.get(token)
        if stats is None:
            groups, forms = self.items.raw_counts()
            seen = upper = coined = 0
            if token not in forms:  # never all-caps, never an inner capital
                return (0, 0, 0)
            for group, counts in groups.items():
                if self.scope not in group:
                    continue
                for raw in forms.get(token, ()):
                    n = counts.get(raw, 0)
                    if n:
                        seen += n
                        if (raw.isupper() or raw[-1] == "s" and raw[:-1].isupper()) and not raw.isdigit():
                            upper += n
                        if raw[1:] != raw[1:].lower():
                            coined += n
            stats = self._case[token] = (seen, upper, coined)
        return stats

    def label(self, term: str) -> str:
        """``term`` with acronym tokens upper-cased (when most occurrences are all-caps, a
        plural ``s`` aside: "MLLMs")."""
        out = []
        for w in term.split():
            seen, upper, _ = self.case(w)
            out.append(w.upper() if upper * 2 > seen > 0 else w)
        return " ".join(out)

    def is_name(self, token: str) -> bool:
        """A coined name or acronym: most occurrences have an upper-case letter after the first
        (``GRPO``, ``LoRA``, ``DINOv2``) or a digit (``qwen3``, ``o3``), but not a number with a
        one-letter unit (``3x``, ``7b``, ``4k``, ``3d``: a size or speed-up, not a topic), and not
        a token of two characters (``v1``, ``L1``, ``CI``, ``CV``: a version, norm or
        abbreviation with many meanings, frowned at as a topic)."""
        if len(token) < 3 or _NUMBER_UNIT.fullmatch(token):
            return False
        if any(ch.isdigit() for ch in token):
            return True
        seen, _, coined = self.case(token)
        return coined * 2 > seen > 0

    def docs(self, term: str) -> frozenset[int]:
        """The scope's window items (row indices) whose normalised text holds ``term``; cached."""
        found = self._docs.get(term)
        if found is None:
            needle = f" {term} "
            found = self._docs[term] = frozenset(i for i in self.order if needle in self.items.text(i))
        return found

    def attach_examples(self, cands: Sequence[_Cand]) -> None:
        """Find the window items behind each candidate (``examples``, ``posts``) by matching the
        normalised runs of their texts. Posts and papers linked from posts are all checked (they
        make ``posts``); other papers only until six examples are found."""
        rows, linked = self.items.rows, self.items.linked
        for c in cands:
            needle = f" {c.term} "
            posts: set[int] = set()
            for i in self.order:
                r = rows[i]
                links = linked.get(r.id)
                if r.kind != "post" and not links and len(c.examples) >= MAX_EXAMPLES:
                    break  # only unlinked papers remain: they add no posts
                if needle not in self.items.text(i):
                    continue
                if r.kind == "post":
                    posts.add(r.id)
                if links:
                    posts |= links
                if len(c.examples) < MAX_EXAMPLES:
                    c.examples.append(TrendItem(r.id, r.title, r.url, r.kind))
            c.posts = len(posts)
