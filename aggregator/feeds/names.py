"""Feed names readers give (issue 14, finding 9): cleaned of invisible characters, and compared
so that a reader's feed cannot pass for another feed ("OpenAI Blog", "0penAI blog",
"OpenAI\\u200bBlog", "ОpenAI Blog" with a Cyrillic О are one name).

:func:`clean_name` is what is stored: one line, no control, format (Unicode category ``Cf``:
zero-width spaces and joiners, bidi embeddings, overrides and isolates, soft hyphen, BOM...)
or other default-ignorable characters (variation selectors, combining grapheme joiner, Hangul
fillers...), runs of white space made one space, at most :data:`MAX_NAME` characters.

:func:`name_keys` is how names are compared; two names *look alike* when they share a key
(:func:`look_alike`). A key is built, after :func:`clean_name`, by dropping white space,
dashes, connector punctuation and combining marks, applying NFKC, and mapping every
character to its class of Unicode confusables (UTS #39, ``confusables.txt``, as shipped by
the ``confusable-homoglyphs`` package), case-folding and mapping again until nothing changes.
There are two keys: one that maps confusables before case-folding ("OpenAl" with a lower-case
L is "OpenAI") and one that folds case first ("openai" is "OpenAI").

The confusables table maps each source character to one prototype (a star in the graph the
package stores both ways); every character of a star is mapped to one representative of it,
its prototype when that is the only character with several neighbours or a sequence of
several characters. Pure functions; the table is loaded once, on first use (about 30 ms).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterable

#: Longest feed name (the ``feeds.name`` column).
MAX_NAME = 300

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Default-ignorable code points that are not category Cf (DerivedCoreProperties.txt), plus the
# blank-looking Braille pattern and Hangul fillers.
_IGNORABLE = frozenset(
    [0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0]
    + list(range(0x180B, 0x1810))
    + list(range(0xFE00, 0xFE10))
    + list(range(0xE0100, 0xE01F0))
)
_DROP_IN_KEY = frozenset({"Zs", "Zl", "Zp", "Pd", "Pc", "Mn", "Me"})


def _invisible(ch: str) -> bool:
    return ord(ch) in _IGNORABLE or unicodedata.category(ch) in ("Cf", "Cc", "Cs", "Co", "Cn")


def clean_name(name: str | None) -> str | None:
    """``name`` on one line: control characters become spaces, invisible ones (format
    characters, bidi controls, variation selectors and other default-ignorables, unassigned
    and private-use code points) are dropped, white space runs become one space; at most
    :data:`MAX_NAME` characters. None when nothing visible is left (or ``name`` is None)."""
    if name is None:
        return None
    text = _CONTROL.sub(" ", name)
    text = "".join(ch for ch in text if not _invisible(ch))
    text = " ".join(text.split())[:MAX_NAME].strip()
    return text or None


_LOADING = threading.Lock()


def _representatives() -> dict[str, str]:
    """Each confusable character → the representative of its class (see the module doc),
    built once (by one thread; the others wait for it)."""
    with _LOADING:
        return _build_representatives()


@functools.cache
def _build_representatives() -> dict[str, str]:
    from confusable_homoglyphs import utils  # the package's loader of its data files

    table: dict[str, list[dict[str, str]]] = utils.load("confusables.json")
    neighbours: dict[str, set[str]] = {}
    for char, entries in table.items():
        char = _strip_marks(char)
        for entry in entries:
            other = _strip_marks(entry["c"])
            if char and other and char != other:
                neighbours.setdefault(char, set()).add(other)
                neighbours.setdefault(other, set()).add(char)
    reps: dict[str, str] = {}
    seen: set[str] = set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        group, todo = {start}, [start]
        while todo:
            for other in neighbours[todo.pop()]:
                if other not in group:
                    group.add(other)
                    todo.append(other)
        seen |= group
        rep = max(group, key=lambda c: (len(neighbours[c]) > 1, len(c) > 1, -len(c), [-ord(x) for x in c]))
        for member in group:
            if len(member) == 1:
                reps[member] = rep
    return reps


def _strip_marks(text: str) -> str:
    """``text`` without the left-to-right marks the package puts around right-to-left glyphs."""
    return "".join(ch for ch in text if not _invisible(ch))


def _map(text: str) -> str:
    reps = _representatives()
    return "".join(reps.get(ch, ch) for ch in text)


def _drop_in_key(text: str) -> str:
    return "".join(ch for ch in text if unicodedata.category(ch) not in _DROP_IN_KEY)


def _settle(text: str, fold_first: bool) -> str:
    for _ in range(4):
        before = text
        if fold_first:
            text = _map(unicodedata.normalize("NFKC", text.casefold()))
        else:
            text = unicodedata.normalize("NFKC", _map(text)).casefold()
        text = _drop_in_key(unicodedata.normalize("NFD", text))
        if text == before:
            break
    return text


@functools.lru_cache(maxsize=4096)
def name_keys(name: str) -> frozenset[str]:
    """The comparison keys of a feed name (see the module doc); empty for a blank name."""
    text = clean_name(name) or ""
    text = _drop_in_key(unicodedata.normalize("NFKD", text))
    if not text:
        return frozenset()
    return frozenset({_settle(text, False), _settle(text, True)})


def look_alike(a: str, b: str) -> bool:
    """Whether two feed names can pass for one another (they share a :func:`name_keys` key)."""
    return bool(name_keys(a) & name_keys(b))


def first_look_alike(name: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` that ``name`` looks like, or None."""
    keys = name_keys(name)
    if not keys:
        return None
    return next((other for other in others if keys & name_keys(other)), None)
