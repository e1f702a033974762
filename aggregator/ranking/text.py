"""The ranking model's analyzer: terms a researcher would accept as a reason (issue 17).

scikit-learn's default word analyzer (``token_pattern`` + stop words, then n-grams over what
is left) made ``why`` terms nobody trusts: bigrams across punctuation and removed stop words
("rewards rlvr" from "rewards (RLVR)", "optimization grpo"), URL pieces ("github com",
"https github"), LaTeX ("propose textbf") and author surnames ("zhang", "wang"), because
authors were plain words of the text. This analyzer:

* drops URLs (``http(s)://…``, ``www.…``, ``name.com/…``) and LaTeX commands (``\\textbf``),
  and treats ``$``, braces and other punctuation as a break;
* makes unigrams of the tokens (``[a-z_][a-z0-9_]+``, as arxiv-sanity-lite's token pattern)
  that are not stop words (scikit-learn's English list plus a few markup/URL words), and
  bigrams only of two tokens adjacent in one run: never across punctuation or a stop word
  (a hyphen joins: "vision-language" gives "vision language");
* turns each author (after :data:`AUTHORS_MARK` in :func:`aggregator.ranking.tfidf.item_text`)
  into one whole-name term ``author:<first_last>``: a name still helps similarity, but it is
  never a word of the text, and ``why`` leaves ``author:`` terms out (a followed author is
  named by its own reason).
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

#: Separates the text from the author list in :func:`aggregator.ranking.tfidf.item_text`.
AUTHORS_MARK = "\x1e"
AUTHOR_SEP = "\x1f"
AUTHOR_PREFIX = "author:"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


MARKUP_WORDS = _words(
    """github https http www com org io html htm pdf abs arxiv doi url
    textbf textit texttt emph mathcal mathbf mathrm mathbb mathit frac cdot ldots leq geq sqrt
    times left right begin end cite ref href"""
)
STOP_WORDS = frozenset(ENGLISH_STOP_WORDS) | MARKUP_WORDS

_URL = re.compile(
    r"https?://\S+|www\.\S+|\b[\w.-]+\.(?:com|org|io|net|edu|ai|dev|html?)(?:/\S*)?", re.IGNORECASE
)
#: A text :data:`_URL` can match holds one of these, in any case (:func:`_may_hold_url`).
_URL_HINTS = ("http", "www.", ".com", ".org", ".io", ".net", ".edu", ".ai", ".dev", ".htm")
_URL_HINT = re.compile("|".join(map(re.escape, _URL_HINTS)), re.IGNORECASE)
_LATEX = re.compile(r"\\[a-zA-Z]+\*?|\\.")
# a token, or a piece that ends a run (any other non-space, non-hyphen character)
_SCAN = re.compile(r"[a-z_][a-z0-9_]+|[0-9a-z]+|[^\sa-z0-9_\-]+")
_BREAK = ""


def author_term(name: str) -> str:
    """``"Wei  Zhang"`` → ``"author:wei_zhang"`` (case-folded, no spaces: never a bigram)."""
    return AUTHOR_PREFIX + "_".join(name.casefold().split())


class _Pieces(dict[str, str]):
    """A cache: a ``_SCAN`` match → itself when it is a term token, else ``_BREAK``
    (punctuation, a number, a one-letter token or a stop word end the run). At most a
    million entries are kept."""

    def __missing__(self, piece: str) -> str:
        c = piece[0]
        ok = (c.isalpha() or c == "_") and len(piece) >= 2 and piece not in STOP_WORDS
        token = piece if ok else _BREAK
        if len(self) < 1_000_000:
            self[piece] = token
        return token


_PIECES = _Pieces()


def _runs_tokens(text: str) -> list[str]:
    return list(map(_PIECES.__getitem__, _SCAN.findall(_clean(text).casefold())))


def analyze(text: str) -> list[str]:
    """The terms of one document (unigrams, in-run bigrams, ``author:`` names), in order and
    with repeats (counts are term frequencies). See the module docstring."""
    body, _, authors = text.partition(AUTHORS_MARK)
    tokens = _runs_tokens(body)
    terms = [t for t in tokens if t]
    terms += [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False) if a and b]
    if authors:
        terms += [author_term(a) for a in authors.split(AUTHOR_SEP) if a.strip()]
    return terms


def is_quiet_term(term: str) -> bool:
    """True for a term ``why`` never names: an ``author:`` name or a filler word alone
    (:data:`FILLER`)."""
    return term.startswith(AUTHOR_PREFIX) or term in FILLER


#: Too generic to be a reason alone (fine inside a phrase: "large language models"); from the
#: filler the issue names and the trends module's weak words, and pieces of a profile's phrases
#: that a text uses in another sense: "fine" of "fine-tuning" in "fine-grained", "use" of "tool
#: use" in "to use more data", "test" of "test-time" in "we test this" (the digest of 2026-06-15).
FILLER = _words(
    """large level learning time model models data network networks training dataset datasets
    benchmark language image images system systems high low better best good end real world scale
    multi single analysis accuracy quality evaluation approach design information feature features
    representation representations generation process output input method methods algorithm
    setting way ability number set case application applications result results domain type
    structure value values task tasks performance framework propose proposed novel new based
    use uses used using fine test augmented efficient effective efficiently"""
)


# --- why: whole phrases ------------------------------------------------------------------------


def _singular(word: str) -> str:
    """A plural's singular by the regular English rules ("policies" → "policy", "models" →
    "model"); other words unchanged ("process", "corpus", "analysis")."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@functools.lru_cache(maxsize=65536)
def twin_key(term: str) -> str:
    """The form a term shares with its singular/plural twin ("vla models" and "vla model")."""
    words = term.split(" ")
    return " ".join([*words[:-1], _singular(words[-1])])


#: A bigram is a fragment of a longer phrase when a word continuing it is this common: the
#: documents of "b x" (x and its plural together) over those of "a b". "large language" (1,403
#: papers of June 2026) is continued by "language model(s)" (2,280), "novel view" (56) by "view
#: synthesis" (53); "real world" (689) is not by "world scenarios" (52), nor "test time" (167) by
#: "time scaling" (39).
FRAGMENT_SHARE = 0.5
#: ... and when the continuation is what its first word is usually part of: the documents of
#: "b x" over those of "b". "language" is in "language model(s)" in 88 % of its papers, "view" in
#: "view synthesis" in 12 %; "study" is in "study shows" in 1 % ("ablation study" stays).
FOLLOW_SHARE = 0.3


def fragment_continuations(terms: Sequence[str], df: Iterable[float]) -> dict[str, frozenset[str]]:
    """For each bigram of ``terms`` that is a fragment (:data:`FRAGMENT_SHARE`,
    :data:`FOLLOW_SHARE`; a second word that is not a term of its own completes nothing), the
    words that complete it: "large language" → {"model", "models"}. ``df``: each term's
    document frequency (same length as ``terms``). One pass over the bigrams (0.05–0.12 s of CPU
    for the 28,045 terms of ``bench/rank_speed.py``'s model)."""
    groups: dict[str, dict[str, list]] = {}  # first word → twin of the second → [df, forms]
    bigrams: list[tuple[str, str, str, float]] = []
    words: dict[str, float] = {}  # unigram → df
    for term, d in zip(terms, df, strict=True):
        a, space, b = term.partition(" ")
        if not space or " " in b or term.startswith(AUTHOR_PREFIX):
            if not space:
                words[term] = float(d)
            continue
        bigrams.append((term, a, b, float(d)))
        entry = groups.setdefault(a, {}).setdefault(twin_key(b), [0.0, []])
        entry[0] += float(d)
        entry[1].append(b)
    out: dict[str, frozenset[str]] = {}
    for term, _, b, d in bigrams:
        following = groups.get(b)
        least = max(FRAGMENT_SHARE * d, FOLLOW_SHARE * words.get(b, math.inf))
        if following:
            nexts = [w for total, forms in following.values() if total >= least for w in forms]
            if nexts:
                out[term] = frozenset(nexts)
    return out


def _continue(
    parts: list[list[str]], names: list[str], line: str, continuations: dict[str, frozenset[str]]
) -> None:
    """Complete, in place, a fragment entry (a bigram of ``continuations``) with the word that
    follows it wherever the text writes it, when that word completes it: "large language" is
    "large language models" in a text that says "large language models" (or "… model" and
    "… models": the form written most), and "multimodal large" "multimodal large language
    models". Left alone when the text continues it otherwise once."""
    for i in range(len(parts)):
        # a completed phrase may end in a fragment again ("multimodal large" → "… language" →
        # "… models"); each step lengthens it by a word the text writes, so this ends
        while (nexts := continuations.get(" ".join(parts[i][-2:]))) and len(parts[i]) < 6:
            found = _words_after(line, names[i])
            if not found or not all(w in nexts for w in found):
                break
            word = Counter(found).most_common(1)[0][0]
            parts[i], names[i] = [*parts[i], word], f"{names[i]} {word}"


def _words_after(line: str, phrase: str) -> list[str]:
    """The token after each occurrence of ``phrase`` in a :func:`_token_line` ("" after a break)."""
    needle = f" {phrase} "
    out: list[str] = []
    at = line.find(needle)
    while at >= 0:
        start = at + len(needle)
        out.append(line[start : line.find(" ", start)])  # the line ends with a space
        at = line.find(needle, at + 1)
    return out


@functools.lru_cache(maxsize=8)
def _ends(phrases: frozenset[str]) -> tuple[frozenset[str], frozenset[str]]:
    """The first and the last words of the connector phrases."""
    return frozenset(p.split(" ")[0] for p in phrases), frozenset(p.split(" ")[-1] for p in phrases)


def _connectable(terms: list[str], phrases: Collection[str]) -> bool:
    if not phrases:
        return False
    firsts, lasts = _ends(frozenset(phrases))
    split = [t.split(" ") for t in terms]
    if not any(w[-1] in firsts for w in split) or not any(w[0] in lasts for w in split):
        return False
    pairs = ((a[-1], b[0]) for a in split for b in split if a is not b)
    return any(f"{x} {c} {y}" in phrases for x, y in pairs for c in CONNECTORS)


def _overlaps(terms: list[str]) -> bool:
    split = [t.split(" ") for t in terms if " " in t]
    return any(a[-1] == b[0] for a in split for b in split if a is not b)


#: Function words a phrase may hold inside ("mixture of experts", "chain of thought", "text to
#: image"); the trends phrase model's connectors (aggregator.trends.terms.CONNECTORS) that
#: join noun phrases. Which "x of y" are phrases is learned per model: :func:`connector_phrases`.
CONNECTORS = ("of", "to")
_CONNECTED = re.compile(r"(?<![a-z0-9_])([a-z_][a-z0-9_]+)[\s\-]+(of|to)[\s\-]+(?=([a-z_][a-z0-9_]+))")


def _clean(text: str) -> str:
    """``text`` without LaTeX commands and URLs (each replaced by a break)."""
    if "\\" in text:
        text = _LATEX.sub(" . ", text)
    if _may_hold_url(text):  # a cheap test first: the full pattern costs 80 µs a text
        text = _URL.sub(" . ", text)
    return text


def _may_hold_url(text: str) -> bool:
    """Whether :data:`_URL` can match ``text``: :data:`_URL_HINT` finds it. For an ASCII text
    (most abstracts) the same test is a substring search of the lower-cased text (3 µs against
    28 µs for the pattern on a 1,400-character abstract); case-insensitive matching of other
    text has Unicode cases ("ſ" matches "s"), which the pattern keeps."""
    if text.isascii():
        low = text.lower()
        return any(h in low for h in _URL_HINTS)
    return _URL_HINT.search(text) is not None


def connector_phrases(texts: Sequence[str], min_docs: int = 5, share: float = 0.25) -> list[str]:
    """The collocations "x of y" / "x to y" of a corpus (``texts``: item texts, authors after
    :data:`AUTHORS_MARK` ignored): x and y term words (not stop words), written in ≥ ``min_docs``
    texts, and y follows "x of" (and x precedes "of y") in ≥ ``share`` of the texts that write
    "x of …" ("… of y"). On the June 2026 papers: "chain of thought", "text to image", "mixture
    of experts", "coarse to fine", "signal to noise", "degrees of freedom", "theory of mind", …;
    never "scaling of policies". Sorted."""
    tri: Counter[tuple[str, str, str]] = Counter()
    for text in texts:
        low = _clean(text.partition(AUTHORS_MARK)[0].casefold())
        tri.update({(m[1], m[2], m[3]) for m in _CONNECTED.finditer(low)})
    left: Counter[tuple[str, str]] = Counter()
    right: Counter[tuple[str, str]] = Counter()
    for (a, c, b), n in tri.items():
        left[a, c] += n
        right[c, b] += n
    return sorted(
        f"{a} {c} {b}"
        for (a, c, b), n in tri.items()
        if n >= min_docs
        and n >= share * left[a, c]
        and n >= share * right[c, b]
        and _PIECES[a]
        and _PIECES[b]
    )


@functools.lru_cache(maxsize=8192)
def _token_line(text: str) -> str:
    """The text's :func:`_runs_tokens` joined by spaces, with a space at each end: a break (an
    empty token) leaves two spaces, so a phrase is found only within a run; a connector word
    (:data:`CONNECTORS`) stays as itself. Cached: the same items are explained for many readers."""
    return " " + " ".join(map(_LINE_PIECES.__getitem__, _SCAN.findall(_clean(text).casefold()))) + " "


_LINE_PIECES = _Pieces({c: c for c in CONNECTORS})  # as _PIECES, but a connector stays itself


def _joinable(a: list[str], b: list[str], phrases: Collection[str]) -> list[str] | None:
    """``a`` and ``b`` (words of two terms) as one phrase when they overlap by a word, or when
    "last of a, connector, first of b" is one of ``phrases``; else None."""
    if len(a) >= 2 and len(b) >= 2 and a[-1] == b[0]:
        return a + b[1:]
    if not phrases:
        return None
    for c in CONNECTORS:
        if f"{a[-1]} {c} {b[0]}" in phrases:
            return [*a, c, *b]
    return None


def _join_pairs(
    parts: list[list[str]], names: list[str], weights: list[float], phrases: Collection[str], line: str
) -> list[list[str]]:
    """Join, in place, two entries the text (``line``) writes as one phrase (:func:`_joinable`),
    one pair at a time until none is left; their weights add up. Returns the terms that were
    joined into another entry."""
    spent: list[list[str]] = []
    joined = True
    while joined:
        joined = False
        for i, a in enumerate(parts):
            for j, b in enumerate(parts):
                words = None if i == j else _joinable(a, b, phrases)
                if words is None:
                    continue
                phrase = " ".join(words)
                if f" {phrase} " in line:
                    spent.append(b)
                    parts[i], names[i], weights[i] = words, phrase, weights[i] + weights[j]
                    del parts[j], names[j], weights[j]
                    joined = True
                    break
            if joined:
                break
    return spent


def _complete(parts: list[list[str]], names: list[str], spent: list[list[str]], line: str) -> None:
    """Complete, in place, a phrase entry that a term already joined into another entry also
    overlaps, where the text writes the longer phrase: "large language" with "language models"
    taken by "vision language models" is "large language models" when the text says both. The
    entry keeps its weight (the spent term's weight counts once, where it went)."""
    done = False
    while not done:
        done = True
        for i, a in enumerate(parts):
            for b in spent:
                words = _joinable(a, b, ()) or _joinable(b, a, ())
                if words is not None and len(words) > len(a) and f" {' '.join(words)} " in line:
                    parts[i], names[i] = words, " ".join(words)
                    done = False


def join_phrases(
    why: list[tuple[str, float]],
    text: str,
    phrases: Collection[str] = (),
    continuations: dict[str, frozenset[str]] | None = None,
) -> list[tuple[str, float]]:
    """``why`` entries (term, weight; best first) as whole phrases of ``text`` (the item's title
    and abstract): two phrases that overlap by a word and that the text writes as one are one
    entry ("large language" + "language models" → "large language models", when the text says
    "large language models"), two terms that the text joins with a connector forming one of the
    model's ``phrases`` (:func:`connector_phrases`) are one ("mixture" + "experts" → "mixture of
    experts"), and a singular and its plural are one ("policies", "policy"); the weights add up.
    A fragment left alone ("large language", when "language models" is not among the terms) is
    completed by the word the text writes after it, when ``continuations``
    (:func:`fragment_continuations` of the model) says that word completes it.
    The bigram model cannot see a longer phrase; the text can. Returns the entries best first
    (never more than given)."""
    terms = [t for t, _ in why]
    keys = [twin_key(t) for t in terms]
    last_words = {twin_key(t.split(" ")[-1]) for t in terms if " " in t}
    alone = {k for t, k in zip(terms, keys, strict=True) if " " not in t}
    connectable = _connectable(terms, phrases)
    continuations = continuations or {}
    fragments = any(t in continuations for t in terms)
    joinable = len(set(keys)) < len(keys) or last_words & alone or _overlaps(terms) or connectable
    if not joinable and not fragments:
        return why
    line = _token_line(text.partition(AUTHORS_MARK)[0])
    names, weights = list(terms), [w for _, w in why]
    parts = [n.split(" ") for n in names]
    if joinable:
        spent = _join_pairs(parts, names, weights, phrases if connectable else (), line)
        _complete(parts, names, spent, line)
    if fragments:
        _continue(parts, names, line, continuations)
        if not joinable and names == terms:  # nothing to join and no fragment completed
            return why
    # a word alone that a longer entry ends with ("expert" beside "mixture of experts") is part of it
    ends = {twin_key(n.split(" ")[-1]): twin_key(n) for n in names if " " in n}
    merged: dict[str, tuple[str, float]] = {}
    for name, weight in sorted(zip(names, weights, strict=True), key=lambda nw: " " not in nw[0]):
        key = ends.get(twin_key(name), twin_key(name)) if " " not in name else twin_key(name)
        first, total = merged.get(key, (name, 0.0))
        merged[key] = (first, total + weight)
    return sorted(merged.values(), key=lambda tw: -tw[1])
