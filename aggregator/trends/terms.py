"""Terms: the normalised uni-, bi- and trigrams of a text (see the package doc)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import add, mul

MAX_N = 3


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: scikit-learn's ``ENGLISH_STOP_WORDS`` (BSD-3-Clause; from the Glasgow Information Retrieval
#: Group's list), copied so that counting does not import scikit-learn (1.4 s).
ENGLISH_STOP_WORDS = _words(
    """
    a about above across after afterwards again against all almost alone along already also although
    always am among amongst amoungst amount an and another any anyhow anyone anything anyway
    anywhere are around as at back be became because become becomes becoming been before beforehand
    behind being below beside besides between beyond bill both bottom but by call can cannot cant co
    con could couldnt cry de describe detail do done down due during each eg eight either eleven
    else elsewhere empty enough etc even ever every everyone everything everywhere except few
    fifteen fifty fill find fire first five for former formerly forty found four from front full
    further get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers
    herself him himself his how however hundred i ie if in inc indeed interest into is it its itself
    keep last latter latterly least less ltd made many may me meanwhile might mill mine more
    moreover most mostly move much must my myself name namely neither never nevertheless next nine
    no nobody none noone nor not nothing now nowhere of off often on once one only onto or other
    others otherwise our ours ourselves out over own part per perhaps please put rather re same see
    seem seemed seeming seems serious several she should show side since sincere six sixty so some
    somehow someone something sometime sometimes somewhere still such system take ten than that the
    their them themselves then thence there thereafter thereby therefore therein thereupon these
    they thick thin third this those though three through throughout thru thus to together too top
    toward towards twelve twenty two un under until up upon us very via was we well were what
    whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without would yet
    you your yours yourself yourselves
    """
)

# Paper boilerplate: these split phrases like stop words do (after "propose", "novel", … in
# arxiv-sanity-style lists, plus what the June 2026 data showed near the top unfiltered).
DOMAIN_STOP_WORDS = _words(
    """
    propose proposed proposes proposing present presents presented introduce introduces introduced
    introducing paper papers work works study studies result results method methods approach
    approaches novel new state art sota demonstrate demonstrates demonstrated show shows shown
    showing achieve achieves achieved achieving outperform outperforms outperformed outperforming
    experiment experiments experimental extensive extensively significant significantly existing
    previous prior recent recently current based using use used uses leverage leverages leveraging
    effective effectively efficient efficiently improve improves improved improving improvement
    improvements furthermore moreover additionally specifically particular particularly various
    different including include includes however while whereas key main finally respectively
    superior competitive comprehensive comprehensively remarkable promising strong stronger
    substantially substantial consistently consistent validate validates enable enables enabling
    address addresses addressing challenge challenges challenging problem problems issue issues
    task tasks performance performances framework frameworks technique techniques available code
    publicly github https http www com org html abs pdf arxiv et al ie eg etc vs via
    mathcal mathbf mathrm mathbb frac text textbf textit emph cdot ldots leq geq sqrt times
    upvote upvotes summary authors author thumbnail img src alt style
    """
)

STOP_WORDS = ENGLISH_STOP_WORDS | DOMAIN_STOP_WORDS

# Too generic to be a trend alone; still fine inside a phrase ("large language model").
WEAK_WORDS = _words(
    """
    model learning data network training dataset benchmark large language image images system
    systems high low better best good level end real world time large scale multi single
    analysis accuracy quality evaluation evaluate evaluated evaluating approach design
    information feature representation representations generation process output input
    method algorithm algorithms setting settings way ability capability number set case
    application applications result domain domains type types structure value values
    """
)

_NO_SINGULAR = _words(
    """
    bias alias atlas canvas gas lens news series species physics mathematics robotics dynamics
    statistics economics ethics graphics analytics kinematics semantics linguistics always perhaps
    its this has was does less plus thus towards across upwards sometimes whereas
    """
)

# One pass over the case-folded text: a token, or something that ends a run (punctuation, a
# dash or quote between spaces). A hyphen or slash between word characters matches neither, so
# "vision-language" gives the adjacent tokens "vision", "language".
_SCAN = re.compile(r"[a-z0-9]+|[.,;:!?()\[\]{}\"“”‘’<>|=+*&$%#@\\~^`_]+|\s[-–—']+\s|'\s|\s'")
_RAW_TOKEN = re.compile(r"[A-Za-z0-9]+")
_NUMBER_UNIT = re.compile(r"[0-9]+[a-z]")
#: Marks the end of a run in a token list (never a token: tokens are [a-z0-9]+).
_BREAK = "|"


def singular(token: str) -> str:
    """A light English singular of a case-folded token (``llms`` → ``llm``, ``policies`` →
    ``policy``, ``boxes`` → ``box``); words ending in -ss, -us, -is and a short list stay."""
    if len(token) <= 3 or not token.endswith("s") or token in _NO_SINGULAR or token[-2].isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "shes", "ches", "xes", "zes")):
        return token[:-2]
    if token.endswith(("ss", "us", "is")):
        return token
    return token[:-1]


def _normal(raw: str) -> str:
    """The normalised form of a case-folded ``[a-z0-9]+`` token; "" for a stop word, a number or
    a one-letter token (they end runs)."""
    token = singular(raw)
    if len(raw) < 2 or raw.isdigit() or raw in STOP_WORDS or token in STOP_WORDS:
        return ""
    return token


class _Normaliser(dict[str, str]):
    """A cache: a ``_SCAN`` match → its normalised token, or ``_BREAK`` for a stop word, number,
    one-letter token or punctuation. Misses are computed; at most a million entries are kept."""

    def __missing__(self, raw: str) -> str:
        token = (_normal(raw) if raw[0].isalnum() else "") or _BREAK
        if len(self) < 1_000_000:
            self[raw] = token
        return token


_NORMAL = _Normaliser()


def _tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` in order, with ``_BREAK`` wherever a run ends."""
    return list(map(_NORMAL.__getitem__, _SCAN.findall(text.casefold())))


def runs(text: str) -> list[list[str]]:
    """Normalised token runs of ``text``: lists of case-folded, singular tokens, split at
    punctuation, stop words (English + :data:`DOMAIN_STOP_WORDS`), numbers and one-letter tokens."""
    return [run for part in " ".join(_tokens(text)).split(_BREAK) if (run := part.split())]


#: A token's code for :func:`_grams`: 0 a break, 1 a weak word, 2 (the default) any other.
_CODES = {_BREAK: 0, **dict.fromkeys(WEAK_WORDS, 1)}
_CODE = _CODES.get
_IS_STRONG = (2).__eq__
_AT_LEAST_TWO = (2).__le__


def _grams(tokens: list[str], max_n: int = MAX_N) -> set[str]:
    """The distinct 1..``max_n``-grams of a token list (``_BREAK`` between runs) that do not
    span a break, without unigrams of :data:`WEAK_WORDS` and grams made only of weak words.

    Built with C-level ``map``/``compress`` over the whole list (no per-run Python loop): the
    product of the tokens' codes (:data:`_CODES`) in a gram is 0 when it spans a break, 1 when
    all its words are weak, ≥ 2 when it is kept; a gram's string is only made where it is kept.
    """
    t = tokens
    codes = list(map(_CODE, t, repeat(2)))
    found = set(compress(t, map(_IS_STRONG, codes)))
    if max_n >= 2 and len(t) > 1:
        spaced = list(map(add, t, repeat(" ")))
        product = codes
        for n in range(2, max_n + 1):
            product = list(map(mul, product, codes[n - 1 :]))
            keep = list(map(_AT_LEAST_TWO, product))
            grams: Iterable[str] = compress(spaced, keep)
            for j in range(1, n - 1):
                grams = map(add, grams, compress(spaced[j:], keep))
            found.update(map(add, grams, compress(t[n - 1 :], keep)))
    if found and max(map(len, found)) > 200:
        found = {g for g in found if len(g) <= 200}
    return found


def terms_of_runs(token_runs: Iterable[Sequence[str]], max_n: int = MAX_N) -> set[str]:
    """The distinct 1..``max_n``-grams inside the runs, without unigrams of :data:`WEAK_WORDS`
    and without phrases made only of weak words."""
    flat: list[str] = []
    for run in token_runs:
        flat.extend(run)
        flat.append(_BREAK)
    return _grams(flat, max_n)


def extract_terms(text: str) -> set[str]:
    """The distinct normalised terms (uni-, bi- and trigrams) of one text; see the module doc.
    About 160 µs for a 1,400-character abstract on the benchmark VM (one regex pass, a cached
    token map, and the n-grams built over the whole token list), 270 µs before 2026-07."""
    return _grams(_tokens(text))


def normalise_term(text: str) -> str:
    """A user-typed term in the normalised form the counts use (``"Vision-Language-Action
    models"`` → ``"vision language action model"``); stop words are dropped."""
    return " ".join(t for t in _tokens(text) if t != _BREAK)


def item_text(title: str, summary: str) -> str:
    return f"{title}. {summary}"
