"""arXiv's category taxonomy: the category ids and archives, and a check with a "did you mean"
hint. Source: https://arxiv.org/category_taxonomy (as of 2026)."""

from __future__ import annotations

import difflib
from typing import Final

_TAXONOMY: Final[dict[str, str]] = {
    "astro-ph": "CO EP GA HE IM SR",
    "cond-mat": "dis-nn mes-hall mtrl-sci other quant-gas soft stat-mech str-el supr-con",
    "cs": "AI AR CC CE CG CL CR CV CY DB DC DL DM DS ET FL GL GR GT HC IR IT LG LO MA MM MS NA NE NI OH OS "
    "PF PL RO SC SD SE SI SY",
    "econ": "EM GN TH",
    "eess": "AS IV SP SY",
    "math": "AC AG AP AT CA CO CT CV DG DS FA GM GN GR GT HO IT KT LO MG MP NA NT OA OC PR QA RA RT SG SP ST",
    "nlin": "AO CD CG PS SI",
    "physics": "acc-ph ao-ph app-ph atm-clus atom-ph bio-ph chem-ph class-ph comp-ph data-an ed-ph flu-dyn "
    "gen-ph geo-ph hist-ph ins-det med-ph optics plasm-ph pop-ph soc-ph space-ph",
    "q-bio": "BM CB GN MN NC OT PE QM SC TO",
    "q-fin": "CP EC GN MF PM PR RM ST TR",
    "stat": "AP CO ME ML OT TH",
}


#: Archives that are a single category, with no subject classes.
_STANDALONE: Final = (
    "gr-qc",
    "hep-ex",
    "hep-lat",
    "hep-ph",
    "hep-th",
    "math-ph",
    "nucl-ex",
    "nucl-th",
    "quant-ph",
)


#: Every category id of arXiv's category taxonomy (https://arxiv.org/category_taxonomy), 155 of
#: them: ``archive.SUBJECT`` (``cs.LG``, ``math.AG``, ``astro-ph.CO``, ``cond-mat.str-el``,
#: ``physics.optics``, ``q-bio.NC``, ``q-fin.ST``, ``stat.ML``, ``econ.EM``, ``eess.SP``,
#: ``nlin.CD``) and the archives that are one category (``gr-qc``, ``hep-ex``, ``hep-lat``,
#: ``hep-ph``, ``hep-th``, ``math-ph``, ``nucl-ex``, ``nucl-th``, ``quant-ph``). Aliases are
#: listed under both names, as the taxonomy does (``cs.SY``/``eess.SY``, ``math.IT``/``cs.IT``,
#: ``math.MP``/``math-ph``, ``math.ST``/``stat.TH``, ``cs.NA``/``math.NA``, ``q-fin.EC``/
#: ``econ.GN``). Case matters (``cs.lg`` is not a category). Not included: categories arXiv
#: retired into others, which old papers still carry (``astro-ph`` before 2009, ``cmp-lg``,
#: ``chao-dyn``, ``alg-geom``, ...). Checked against every category of the real papers in
#: ../shared/data (arXiv API answers 2016-2026, RSS captures, the Kaggle snapshot, an OAI-PMH
#: page and 22k papers of 2025-2026; their ACM and MSC classes aside): all are here but the
#: retired ``astro-ph``, and all 155 occur there.
ARXIV_CATEGORIES: Final[frozenset[str]] = frozenset(
    {f"{archive}.{subject}" for archive, subjects in _TAXONOMY.items() for subject in subjects.split()}
    | set(_STANDALONE)
)


#: arXiv's archives, which rss.arxiv.org also serves whole (``/rss/math``, ``/rss/astro-ph``).
#: Source: the same taxonomy; rss.arxiv.org's own error answer for a bad archive lists these
#: names plus ``test`` (../shared/data/arxiv-rss/astroph-2024-11-28-rss2-ERROR-bad-archive-aioarxiv.xml).
ARXIV_ARCHIVES: Final[frozenset[str]] = frozenset({*_TAXONOMY, *_STANDALONE})


class UnknownCategory(ValueError):
    """Not an arXiv category id; the message names it and suggests the closest one."""


def closest_category(text: str) -> str | None:
    """The category of :data:`ARXIV_CATEGORIES` closest to ``text`` (compared ignoring case,
    by :class:`difflib.SequenceMatcher` ratio, at least 0.5; ties go to the first in
    alphabetical order), or ``None`` when nothing is that close."""
    wanted = text.strip().lower()
    best: tuple[float, str] | None = None
    for cat in sorted(ARXIV_CATEGORIES):
        ratio = difflib.SequenceMatcher(None, wanted, cat.lower()).ratio()
        if ratio >= 0.5 and (best is None or ratio > best[0]):
            best = (ratio, cat)
    return None if best is None else best[1]


def check_category(category: str, *, archives: bool = False) -> str:
    """``category`` without surrounding blanks when it is an arXiv category id
    (:data:`ARXIV_CATEGORIES`), or, with ``archives``, an archive name (:data:`ARXIV_ARCHIVES`,
    which the RSS service accepts but the API's ``cat:`` query does not expand).

    Raises :class:`UnknownCategory` otherwise, with a one-line message such as
    ``unknown arXiv category cs.XX; did you mean cs.AI?`` (closest by :func:`closest_category`;
    an archive name given where a category is needed is said to be one).
    """
    cat = category.strip()
    if cat in ARXIV_CATEGORIES or (archives and cat in ARXIV_ARCHIVES):
        return cat
    if cat in ARXIV_ARCHIVES:
        examples = sorted(c for c in ARXIV_CATEGORIES if c.startswith(cat + "."))[:3]
        raise UnknownCategory(
            f"{cat} is an arXiv archive, not a category; name its categories, e.g. {', '.join(examples)}"
        )
    guess = closest_category(cat)
    hint = f"did you mean {guess}?" if guess else "see https://arxiv.org/category_taxonomy"
    raise UnknownCategory(f"unknown arXiv category {cat or repr(cat)}; {hint}")
