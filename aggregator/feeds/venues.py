"""Venue and code-link extraction from an arXiv comment, journal reference and abstract (pure).

Venue: a conference or journal acceptance named in the arXiv comment (``Accepted at NeurIPS
2025``, ``CVPR 2026 (Oral)``, ``To appear in ICLR 2026``, ``ACL 2026 Findings``) or the journal
reference. The rules, from how authors write arXiv comments (measured on 200 hand-labelled real
comments, see docs/library.md):

* a venue of :data:`VENUES` counts when its clause (text between ``;``, ``.`` + space, or a
  newline) has an acceptance cue (accepted, to appear, published, camera-ready, oral,
  spotlight, poster, proceedings, "in") or the venue is followed by a year;
* a clause with "submitted", "under review", "in submission", "rejected" or "preprint for"
  names no acceptance;
* "workshop" (or "W" suffix such as ``ICLRW``) in the clause marks a workshop: ``venue`` stays
  the conference but ``workshop`` is true and the label says "Workshop" ("ICML 2026 Workshop
  on …" is not ICML); "Findings" makes the label "ACL 2026 Findings";
* the journal reference is an acceptance by definition (arXiv: "the full bibliographic
  reference if available"); it wins over the comment.

Code links: URLs in the comment or abstract on github.com, gitlab.com and huggingface.co
(``code``), and ``*.github.io`` pages or a URL after "project page"/"website"/"homepage"
(``project``). ``has_code`` is true when a ``code`` link was found.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: canonical name → regular expression of how authors write it (case-insensitive unless upper)
VENUES: dict[str, str] = {
    "NeurIPS": r"NeurIPS|NIPS|Neurips|Conference on Neural Information Processing Systems",
    "ICML": r"ICML|International Conference on Machine Learning",
    "ICLR": r"ICLR|International Conference on Learning Representations",
    "CVPR": r"CVPR|Conference on Computer Vision and Pattern Recognition",
    "ICCV": r"ICCV",
    "ECCV": r"ECCV",
    "ACL": r"ACL",
    "EMNLP": r"EMNLP|Conference on Empirical Methods in Natural Language Processing",
    "NAACL": r"NAACL",
    "AAAI": r"AAAI",
    "IJCAI": r"IJCAI",
    "KDD": r"(?:SIG)?KDD",
    "CoRL": r"CoRL",
    "RSS": r"RSS",
    "ICRA": r"ICRA",
    "COLT": r"COLT",
    "UAI": r"UAI",
    "AISTATS": r"AISTATS",
    "TMLR": r"TMLR|Transactions on Machine Learning Research",
    "JMLR": r"JMLR|Journal of Machine Learning Research",
    "IROS": r"IROS",
    "WACV": r"WACV",
    "MICCAI": r"MICCAI",
    "SIGIR": r"SIGIR",
    "WWW": r"WWW|The Web Conference",
    "COLING": r"COLING",
    "EACL": r"EACL",
    "INTERSPEECH": r"INTERSPEECH|Interspeech",
    "ICASSP": r"ICASSP",
    "SIGGRAPH": r"SIGGRAPH(?: Asia)?",
    "CHI": r"CHI",
    "BMVC": r"BMVC",
    "3DV": r"3DV",
    "WSDM": r"WSDM",
    "CIKM": r"CIKM",
    "ACM MM": r"ACM MM|ACM Multimedia|ACMMM",
    "TPAMI": r"TPAMI|T-PAMI|IEEE Transactions on Pattern Analysis and Machine Intelligence",
    "IJCV": r"IJCV",
    "COLM": r"COLM",
    "LREC": r"LREC(?:-COLING)?",
}
#: the conferences readers are told to skim (issue 13): shown first in filters
TOP = ("NeurIPS", "ICML", "ICLR", "CVPR", "ICCV", "ECCV", "ACL", "EMNLP", "NAACL", "AAAI", "IJCAI", "KDD")

_NAME = "|".join(f"(?P<v{i}>{rx})" for i, rx in enumerate(VENUES.values()))
_CANON = list(VENUES)
#: a venue name as a word (``ACL`` but not ``NACL``/``ACLs``), with an optional year after it:
#: ``2025``, ``'25``, `` 25``, ``-2025``; a trailing ``W`` (``ICLRW``) is a workshop
_MENTION = re.compile(
    rf"(?<![A-Za-z0-9-])(?:{_NAME})(?P<w>W)?(?![A-Za-z])(?:\)?\s*(?:'|’|-)?\s*(?P<year>(?:19|20)\d\d|\d\d)(?!\d))?"
)
_CLAUSES = re.compile(r";|\.\s|\n|\|")
_NOT_ACCEPTED = re.compile(
    r"submitted|under review|in submission|under submission|submission to|rejected|preprint for|committed to|"
    r"for review|review at|in review|extended version of",
    re.IGNORECASE,
)
_ACCEPTED = re.compile(
    r"accept|to appear|appear(?:s|ed)? (?:in|at)|published|camera[- ]ready|\boral\b|spotlight|poster|"
    r"proceedings|presented|\bin\b|\bat\b|conference|main track|findings|best paper|highlight",
    re.IGNORECASE,
)
_WORKSHOP = re.compile(r"workshop", re.IGNORECASE)
_FINDINGS = re.compile(r"findings", re.IGNORECASE)
_KIND = re.compile(r"\b(oral|spotlight|highlight)\b", re.IGNORECASE)


#: "SCSL @ ICLR 2025", "TerraBytes@ICML", "RAIL 2026 @ LREC": a workshop named by its acronym
_AT_VENUE = re.compile(r"[A-Za-z][\w'-]*\)?(?:\s+(?:19|20)\d\d)?\s*@\s*$")
#: a 4-digit year just before a written-out name ("The 2025 Conference on Empirical Methods …")
_YEAR_BEFORE = re.compile(r"((?:19|20)\d\d)\s+(?:IEEE\s+|ACM\s+|IEEE/CVF\s+)?$")
#: a 4-digit year after ", " or ") ," or a "Main"/"main track" word ("(Proc. of SIGGRAPH), 2025",
#: "EMNLP Main 2025"); two-digit years are only taken right after the name (``NeurIPS'25``)
_YEAR_AFTER = re.compile(r"^\)?(?:,\s*|\s+[Mm]ain(?:\s+[Tt]rack|\s+[Cc]onference)?\s+)((?:19|20)\d\d)(?!\d)")


def _same(other: re.Match[str], index: int) -> int | None:
    """The year of a later mention ``other`` when it names the same venue (``index``)."""
    return _year(other.group("year")) if other.group(f"v{index}") else None


def _year_around(clause: str, start: int, end: int) -> int | None:
    """A year written before a venue's full name, or after a comma or "Main" (see above)."""
    found = _YEAR_AFTER.search(clause[end:]) or _YEAR_BEFORE.search(clause[max(0, start - 20) : start])
    return int(found.group(1)) if found else None


@dataclass(frozen=True, slots=True)
class Venue:
    """An accepted venue: ``name`` (canonical, e.g. ``NeurIPS``), ``year`` (4 digits or None),
    ``workshop`` and a ``label`` for the badge (``NeurIPS 2025 (Oral)``, ``ACL 2026 Findings``,
    ``ICML 2026 Workshop``)."""

    name: str
    year: int | None
    workshop: bool
    label: str


def _year(text: str | None) -> int | None:
    if not text:
        return None
    n = int(text)
    return n if n >= 1900 else 2000 + n


def _case_ok(name: str, found: str) -> bool:
    """Short all-capital names (ACL, RSS, CHI, UAI, COLT …) only in capitals: "rss feed" is no venue."""
    return not (name.isupper() and len(name) <= 5) or found.isupper() or len(found) > 8


def venue_in(text: str | None, journal: bool = False) -> Venue | None:
    """The first accepted venue named in ``text`` (an arXiv comment, or with ``journal`` true a
    journal reference, which needs no acceptance cue); None when there is none."""
    if not text:
        return None
    for clause in _CLAUSES.split(text):
        if _NOT_ACCEPTED.search(clause):
            continue
        for m in _MENTION.finditer(clause):
            index = next(i for i in range(len(_CANON)) if m.group(f"v{i}"))
            name, found = _CANON[index], m.group(f"v{index}")
            if not _case_ok(name, found):
                continue
            year = _year(m.group("year")) or _year_around(clause, m.start(), m.end())
            if year is None:  # "39th Conference on Neural … Systems (NeurIPS 2025)": the other mention's
                year = next((y for o in _MENTION.finditer(clause, m.end()) if (y := _same(o, index))), None)
            if not (journal or year or _ACCEPTED.search(clause)):
                continue
            workshop = bool(m.group("w") or _WORKSHOP.search(clause) or _AT_VENUE.search(clause[: m.start()]))
            label = name + (f" {year}" if year else "")
            if workshop:
                label += " Workshop"
            elif _FINDINGS.search(clause):
                label += " Findings"
            elif kind := _KIND.search(clause):
                label += f" ({kind.group(1).capitalize()})"
            return Venue(name, year, workshop, label)
    return None


_URL = re.compile(
    r"https?://[^\s<>\"'{}|\\^`\]\[)]+|(?<![\w./@-])(?:www\.)?(?:github\.com|gitlab\.com|huggingface\.co)/[^\s<>\"'{}|\\^`\]\[)]+",
    re.IGNORECASE,
)
_CODE_HOSTS = re.compile(
    r"^(?:https?://)?(?:www\.)?(github\.com|gitlab\.com|huggingface\.co)/[\w.-]+", re.IGNORECASE
)
_PROJECT_HOST = re.compile(r"^(?:https?://)?[\w-]+\.github\.io(?:/|$)", re.IGNORECASE)
_PROJECT_CUE = re.compile(
    r"(project|website|homepage|web page|webpage|demo|page)[^.:]{0,20}[:：]?\s*$", re.IGNORECASE
)


def links_in(*texts: str | None) -> list[dict[str, str]]:
    """``[{"kind": "code"|"project", "url": ...}]`` found in ``texts``, code links first, each
    URL once (``https://`` added when missing, trailing punctuation dropped)."""
    code: list[str] = []
    project: list[str] = []
    for text in texts:
        if not text:
            continue
        for m in _URL.finditer(text):
            url = m.group(0).rstrip(".,;:!?*'\"")
            if not url.lower().startswith("http"):
                url = "https://" + url
            if _CODE_HOSTS.match(url):
                code.append(url)
            elif _PROJECT_HOST.match(url) or _PROJECT_CUE.search(text[max(0, m.start() - 40) : m.start()]):
                project.append(url)
    out = [{"kind": "code", "url": u} for u in dict.fromkeys(code)]
    out += [{"kind": "project", "url": u} for u in dict.fromkeys(project) if u not in code]
    return out[:6]


@dataclass(frozen=True, slots=True)
class Extracted:
    venue: Venue | None
    links: list[dict[str, str]] = field(default_factory=list)

    def columns(self) -> dict[str, Any]:
        """The ``items`` columns: venue, venue_year, venue_workshop, venue_label, has_code, links."""
        v = self.venue
        return {
            "venue": v.name if v else None,
            "venue_year": v.year if v else None,
            "venue_workshop": bool(v and v.workshop),
            "venue_label": v.label if v else None,
            "has_code": any(link["kind"] == "code" for link in self.links),
            "links": self.links or None,
        }


def extract(comment: str | None, journal_ref: str | None = None, summary: str | None = None) -> Extracted:
    """Venue (journal reference first, then comment) and code links (comment, then abstract)."""
    return Extracted(venue_in(journal_ref, journal=True) or venue_in(comment), links_in(comment, summary))
