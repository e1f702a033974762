"""arXiv identifiers, announcement prefixes and API query URLs."""

from __future__ import annotations

import json
import re
import urllib.parse

import pytest
from conftest import DATA

from aggregator.feeds.arxiv import (
    ARXIV_REQUEST_INTERVAL,
    api_query_url,
    is_arxiv_url,
    split_announcement,
    split_arxiv_id,
    split_author_list,
)
from aggregator.taxonomy import ARXIV_ARCHIVES, ARXIV_CATEGORIES, UnknownCategory, check_category

API = "https://export.arxiv.org/api/query"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # forms seen in the real data under ../shared/data
        ("oai:arXiv.org:2604.21952v1", ("2604.21952", 1)),  # rss.arxiv.org guid
        ("https://arxiv.org/abs/2604.21952", ("2604.21952", None)),  # rss.arxiv.org link
        ("http://arxiv.org/abs/1111.2011v2", ("1111.2011", 2)),  # 2016 API entry id
        ("http://arxiv.org/abs/astro-ph/0601001v1", ("astro-ph/0601001", 1)),
        ("http://arxiv.org/abs/cond-mat/0102536v1", ("cond-mat/0102536", 1)),
        ("https://arxiv.org/pdf/quant-ph/0201082v1", ("quant-ph/0201082", 1)),
        ("http://arxiv.org/pdf/1111.2011v2", ("1111.2011", 2)),
        ("arXiv:2604.21952v1 Announce Type: new", ("2604.21952", 1)),
        # other spellings
        ("https://arxiv.org/abs/hep-th/0601001v1", ("hep-th/0601001", 1)),
        ("https://arxiv.org/pdf/2606.13733v3.pdf", ("2606.13733", 3)),
        ("https://export.arxiv.org/abs/2606.13733v12", ("2606.13733", 12)),
        ("arXiv:2606.13733", ("2606.13733", None)),
        ("  2606.13733  ", ("2606.13733", None)),
        ("0704.0001", ("0704.0001", None)),  # first new-style id (4-digit number)
        ("math.GT/0309136", ("math.GT/0309136", None)),  # old-style with subject class
        ("hep-th/9901001v3", ("hep-th/9901001", 3)),
    ],
)
def test_split_arxiv_id(text: str, expected: tuple[str, int | None]) -> None:
    assert split_arxiv_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "junk",
        "https://arxiv.org/api/errors#incorrect_id_format_for_abc",  # the API's error entry id
        "0000.0000",  # month 00: the id_list the API answered with zero results
        "2613.12345",  # month 13
        "10.1103/PhysRevB.85.115117",  # a DOI
        "https://lilianweng.github.io/posts/2026-07-04-harness/",
        "12345.67890",  # digits run into the id
        "hep-th/06010",  # too short
    ],
)
def test_split_arxiv_id_junk(text: str) -> None:
    assert split_arxiv_id(text) is None


@pytest.mark.parametrize("kind", ["new", "cross", "replace", "replace-cross"])
def test_split_announcement_each_type(kind: str) -> None:
    text = f"arXiv:2604.21952v2 Announce Type: {kind} \nAbstract: This work presents a method."
    assert split_announcement(text) == ("This work presents a method.", kind)


def test_split_announcement_real_rss_description() -> None:
    # verbatim start of the first item of arxiv-rss/cs.LG-2026-04-27-rss2-distill-trimmed3.xml
    text = (
        "arXiv:2604.21952v1 Announce Type: new \n"
        "Abstract: This work presents a multi-layered methodology for efficiently accelerating "
        "multimodal foundation models (MFMs)."
    )
    abstract, kind = split_announcement(text)
    assert kind == "new"
    assert abstract.startswith("This work presents a multi-layered")
    assert "Announce" not in abstract and "Abstract:" not in abstract


def test_split_announcement_without_prefix_or_unknown_type() -> None:
    assert split_announcement("  Plain abstract.  ") == ("Plain abstract.", None)
    assert split_announcement("arXiv:2604.21952v1 Announce Type: withdrawn \nAbstract: Gone.") == (
        "Gone.",
        None,
    )


def test_api_query_url_categories() -> None:
    url = api_query_url(API, categories=["cs.LG", "cs.CV"], start=200, max_results=200)
    parts = urllib.parse.urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "export.arxiv.org", "/api/query")
    assert " " not in url
    query = urllib.parse.parse_qs(parts.query)
    assert query == {
        "search_query": ["cat:cs.LG OR cat:cs.CV"],
        "start": ["200"],
        "max_results": ["200"],
        "sortBy": ["submittedDate"],
        "sortOrder": ["descending"],
    }
    assert "search_query=cat:cs.LG+OR+cat:cs.CV" in url


def test_api_query_url_id_list_and_options() -> None:
    url = api_query_url(
        API,
        id_list=["2606.13733v1", "hep-th/0601001"],
        max_results=2,
        sort_by="lastUpdatedDate",
        sort_order="ascending",
    )
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query["id_list"] == ["2606.13733v1,hep-th/0601001"]
    assert "search_query" not in query
    assert query["sortBy"] == ["lastUpdatedDate"] and query["sortOrder"] == ["ascending"]


def test_api_query_url_appends_to_existing_query() -> None:
    url = api_query_url("http://127.0.0.1:8765/api/query?x=1", categories=["cs.CL"])
    assert url.startswith("http://127.0.0.1:8765/api/query?x=1&search_query=cat:cs.CL&")


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"categories": ["cs.LG"], "max_results": 2001},
        {"categories": ["cs.LG"], "max_results": -1},
        {"categories": ["cs.LG"], "start": -1},
        {"categories": ["cs.LG OR all:x"]},
        {"categories": ["cs.LG"], "sort_by": "date"},
        {"categories": ["cs.LG"], "sort_order": "down"},
        {"id_list": ["abc"]},
    ],
)
def test_api_query_url_rejects(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        api_query_url(API, **kwargs)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://rss.arxiv.org/rss/cs.LG", True),
        ("https://export.arxiv.org/api/query?search_query=cat:cs.LG", True),
        ("https://arxiv.org/abs/2604.21952", True),
        ("https://ARXIV.org./abs/x", True),
        ("http://arxiv.org/api/VQIAl76NSsUAVMxIWuZHfsSl2Fs", True),
        ("https://notarxiv.org/rss", False),
        ("https://arxiv.org.evil.example/rss", False),
        ("https://huggingface.co/papers", False),
        ("oai:arXiv.org:2604.21952v1", False),
        ("tag:ai-news-direct.local,2025:google_ai_feeds", False),
        ("", False),
        ("http://[::1", False),
    ],
)
def test_is_arxiv_url(url: str, expected: bool) -> None:
    assert is_arxiv_url(url) is expected


def test_request_interval_is_the_terms_of_use_value() -> None:
    assert ARXIV_REQUEST_INTERVAL == 3.0


def test_split_author_list() -> None:
    assert split_author_list("A B, C (U, City), D") == ["A B", "C", "D"]
    assert split_author_list("A (unbalanced, B") == ["A (unbalanced", "B"]
    assert split_author_list("") == []
    # rss.arxiv.org dc:creator with affiliations (all-archives FULL capture, 2411.17817)
    assert split_author_list(
        "Tianliang Yan (University of Birmingham, School of Physics and Astronomy, Birmingham, UK), "
        "Yubao Liu (Center for Gravitational Experiment, Wuhan, China)"
    ) == ["Tianliang Yan", "Yubao Liu"]


def _categories_in_the_data() -> set[str]:
    """Every arXiv category of the real papers under ../shared/data: the RSS captures, the API
    answers (2016-2026), the OAI-PMH page, the Kaggle snapshot and the bulk daily files (whose
    ``categories`` also hold ACM and MSC classes, left out by the pattern)."""
    cats: set[str] = set()
    for path in [*(DATA / "arxiv-rss").iterdir(), *(DATA / "arxiv-api").iterdir()]:
        text = path.read_text(errors="replace")
        cats.update(re.findall(r"<category[^>]*?term=\"([^\"]+)\"", text))
        cats.update(re.findall(r"<category>([^<]+)</category>", text))
    oai = (DATA / "bulk" / "arxiv-oai-pmh-arXivRaw-ListRecords-2014-01-16-page96-scirate.xml").read_text()
    for field in re.findall(r"<categories>([^<]+)</categories>", oai):
        cats.update(field.split())
    kaggle = DATA / "bulk" / "kaggle-arxiv-metadata-oai-snapshot-head200-wanng-ide.jsonl"
    for line in kaggle.open(encoding="utf-8"):
        cats.update(json.loads(line)["categories"].split())
    for path in (DATA / "bulk" / "daily-arxiv-ai-enhanced").glob("*.jsonl"):
        for line in path.open(encoding="utf-8"):
            cats.update(json.loads(line).get("categories") or ())
    return {c for c in cats if re.fullmatch(r"[a-z-]+(\.[A-Za-z-]+)?", c)}


def test_taxonomy_matches_the_categories_of_the_real_papers() -> None:
    seen = _categories_in_the_data()
    assert len(ARXIV_CATEGORIES) == 155
    assert seen - ARXIV_CATEGORIES == {"astro-ph"}  # retired in 2009, still on old papers
    assert seen >= ARXIV_CATEGORIES  # every category of the taxonomy occurs in the data
    # rss.arxiv.org's own list of valid archives, from its error answer for "astroph"
    error = (DATA / "arxiv-rss" / "astroph-2024-11-28-rss2-ERROR-bad-archive-aioarxiv.xml").read_text()
    listed = re.search(r"Valid archive names are: ([^.]+)\.", error).group(1)  # type: ignore[union-attr]
    assert set(listed.split(", ")) == ARXIV_ARCHIVES | {"test"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cs.XX", "unknown arXiv category cs.XX; did you mean cs.AI?"),
        ("cs.lg", "unknown arXiv category cs.lg; did you mean cs.LG?"),
        ("stat-ML", "unknown arXiv category stat-ML; did you mean stat.ML?"),
        ("quant_ph", "unknown arXiv category quant_ph; did you mean quant-ph?"),
        ("zzzzzzzz", "unknown arXiv category zzzzzzzz; see https://arxiv.org/category_taxonomy"),
        ("cs", "cs is an arXiv archive, not a category; name its categories, e.g. cs.AI, cs.AR, cs.CC"),
    ],
)
def test_check_category_refuses_and_suggests(text: str, message: str) -> None:
    with pytest.raises(UnknownCategory) as info:
        check_category(text)
    assert str(info.value) == message


def test_check_category_accepts() -> None:
    assert check_category(" cs.LG ") == "cs.LG"
    assert check_category("cond-mat.str-el") == "cond-mat.str-el"
    assert check_category("hep-th") == "hep-th"
    assert check_category("astro-ph", archives=True) == "astro-ph"
