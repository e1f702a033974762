"""Terms: the normalised uni-, bi- and trigrams of a text (see the package doc)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import compress, repeat
from operator import add, and_, mul

MAX_N = 4


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

#: Words that can sit inside a phrase but never begin or end one ("mixture of experts",
#: "chain of thought", "state of the art", "text to image"): a subset of gensim's
#: ``ENGLISH_CONNECTOR_WORDS`` (gensim.models.phrases), whose phrase scoring ignores them too.
CONNECTORS = _words("of the to for and")

# The small hand list: what term statistics cannot show. Reporting verbs, evaluative adjectives
# and adverbs of abstracts ("we propose", "extensive experiments", "significantly outperforms")
# are not noun-phrase material, so they end a phrase the way a stop word does (a crude
# noun-phrase pattern); LaTeX, URL and feed-markup debris is not language. Everything else that
# is merely common or evenly spread ("test set", "percentage point", "model") is learned out by
# topicality (:mod:`.lexicon`), not listed here.
DOMAIN_STOP_WORDS = _words(
    """
    propose proposed proposes proposing present presents presented introduce introduces introduced
    introducing paper papers novel sota demonstrate demonstrates demonstrated show shows shown
    showing achieve achieves achieved achieving outperform outperforms outperformed outperforming
    extensive extensively significant significantly existing previous prior recent recently
    current using leverage leverages leveraging effective effectively efficiently improve
    improves improved improving furthermore moreover additionally specifically particularly
    various including include includes however whereas finally respectively superior
    competitive comprehensive comprehensively remarkable promising substantially consistently
    validate validates enable enables enabling address addresses addressing publicly
    github https http www com org html abs pdf arxiv et al ie eg etc vs via
    mathcal mathbf mathrm mathbb frac text textbf textit emph cdot ldots leq geq sqrt times
    upvote upvotes thumbnail img src alt
    """
)

STOP_WORDS = (ENGLISH_STOP_WORDS - CONNECTORS) | DOMAIN_STOP_WORDS

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


#: A token's code for :func:`_gram_list`: 0 a break, 3 a connector, 2 (the default) content.
_CODES = {_BREAK: 0, **dict.fromkeys(CONNECTORS, 3)}
_CODE = _CODES.get
_IS_CONTENT = (2).__eq__
_BOTH_CONTENT = (4).__eq__


def _gram_list(tokens: list[str], max_n: int = MAX_N) -> list[str]:
    """Every 1..``max_n``-gram of a token list (``_BREAK`` between runs), with repeats, that
    does not span a break and begins and ends with a content word (connectors only inside).

    Built with C-level ``map``/``compress`` over the whole list (no per-run Python loop): the
    product of the tokens' codes (:data:`_CODES`) in a gram is 0 when it spans a break, and the
    product of its first and last codes is 4 when both are content words; a gram's string is
    only made where it is kept.
    """
    t = tokens
    codes = list(map(_CODE, t, repeat(2)))
    found = list(compress(t, map(_IS_CONTENT, codes)))
    if max_n >= 2 and len(t) > 1:
        spaced = list(map(add, t, repeat(" ")))
        product = codes
        for n in range(2, max_n + 1):
            product = list(map(mul, product, codes[n - 1 :]))
            edges = map(_BOTH_CONTENT, map(mul, codes, codes[n - 1 :]))
            keep = list(map(and_, map(bool, product), edges))
            grams: Iterable[str] = compress(spaced, keep)
            for j in range(1, n - 1):
                grams = map(add, grams, compress(spaced[j:], keep))
            found.extend(map(add, grams, compress(t[n - 1 :], keep)))
    if found and max(map(len, found)) > 200:
        found = [g for g in found if len(g) <= 200]
    return found


def _grams(tokens: list[str], max_n: int = MAX_N) -> set[str]:
    """The distinct grams of :func:`_gram_list`."""
    return set(_gram_list(tokens, max_n))


def terms_of_runs(token_runs: Iterable[Sequence[str]], max_n: int = MAX_N) -> set[str]:
    """The distinct 1..``max_n``-grams inside the runs that begin and end with a content word."""
    flat: list[str] = []
    for run in token_runs:
        flat.extend(run)
        flat.append(_BREAK)
    return _grams(flat, max_n)


def gram_counts(text: str) -> Counter[str]:
    """Occurrences of each candidate gram (:func:`extract_terms`'s terms) in ``text``: the
    term frequencies the lexicon's residual IDF and phrase scores need."""
    return Counter(_gram_list(_tokens(text)))


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
