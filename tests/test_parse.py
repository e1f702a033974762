"""parse_feed on every real captured document in ../shared/data, plus hostile inline cases."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest
from conftest import DATA, FEEDREPLAY

from aggregator.feeds.parse import html_to_text, normalise_link, parse_feed
from aggregator.types import ParsedFeed

UTC = dt.UTC
FETCHED = dt.datetime(2026, 8, 30, 12, 0, tzinfo=UTC)
RSS = DATA / "arxiv-rss"
API = DATA / "arxiv-api"
BLOGS = DATA / "blogs"
ALL_FILES = sorted(p for folder in (RSS, API, BLOGS) for p in folder.rglob("*") if p.is_file())


def parse(path: Path, **kwargs: object) -> ParsedFeed:
    return parse_feed(path.read_bytes(), fetched_at=FETCHED, **kwargs)  # type: ignore[arg-type]


def test_all_files_found() -> None:
    # 9 arXiv RSS/Atom + 27 API + 30 blogs + 14 feedparser edge cases (SOURCES.md)
    assert len(ALL_FILES) == 80


@pytest.mark.parametrize("path", ALL_FILES, ids=lambda p: str(p.relative_to(DATA)))
def test_every_real_document(path: Path) -> None:
    feed = parse(path)
    assert isinstance(feed, ParsedFeed)
    assert feed.kind == ("blog" if path.is_relative_to(BLOGS) else "arxiv")
    assert all(isinstance(p, str) and p for p in feed.problems)
    keys = [e.key for e in feed.entries]
    assert len(keys) == len(set(keys))
    for entry in feed.entries:
        assert entry.key
        assert entry.title or entry.url
        assert entry.published.tzinfo is not None and entry.published.utcoffset() == dt.timedelta(0)
        assert dt.datetime(1990, 1, 1, tzinfo=UTC) <= entry.published <= FETCHED.replace(year=2027, month=12)
        if entry.date_from_fetch:
            assert entry.published == FETCHED
        assert entry.title == " ".join(entry.title.split())
        assert entry.summary == " ".join(entry.summary.split())
        if entry.kind == "paper":
            assert feed.kind == "arxiv"
            assert entry.key == f"arxiv:{entry.arxiv_id}"
            assert entry.url == f"https://arxiv.org/abs/{entry.arxiv_id}"
            assert entry.summary_html is None
            assert not entry.summary.startswith("arXiv:")
            assert entry.primary_category is None or entry.primary_category in entry.categories
            assert len(entry.categories) == len(set(entry.categories))
        else:
            assert feed.kind == "blog"
            assert len(entry.summary) <= 2000
            if entry.summary_html is not None:
                lowered = entry.summary_html.lower()
                assert "<script" not in lowered and "javascript:" not in lowered and "onerror" not in lowered
    if any(e.date_from_fetch for e in feed.entries):
        assert any("no usable date; used the fetch time" in p for p in feed.problems)


# --------------------------------------------------------------------------- arXiv RSS / Atom


def test_cs_lg_rss_2026() -> None:
    feed = parse(RSS / "cs.LG-2026-04-27-rss2-distill-trimmed3.xml")
    assert (feed.kind, feed.title, feed.link) == (
        "arxiv",
        "cs.LG updates on arXiv.org",
        "http://rss.arxiv.org/rss/cs.LG",
    )
    assert feed.problems == ()
    assert [e.arxiv_id for e in feed.entries] == ["2604.21952", "2604.21953", "2604.21956"]
    first = feed.entries[0]
    assert (first.kind, first.key, first.version, first.announce_type) == (
        "paper",
        "arxiv:2604.21952",
        1,
        "new",
    )
    assert first.guid == "oai:arXiv.org:2604.21952v1"
    assert first.url == "https://arxiv.org/abs/2604.21952"
    assert first.title == (
        "Focus Session: Hardware and Software Techniques for Accelerating Multimodal Foundation Models"
    )
    assert first.summary.startswith("This work presents a multi-layered methodology")
    assert "visual resolution & stride" in first.summary  # &amp; decoded once, not kept as markup
    assert first.categories == ("cs.LG", "cs.AI", "cs.AR", "cs.NE", "cs.RO")
    assert first.primary_category == "cs.LG"
    assert first.authors == (
        "Muhammad Shafique",
        "Abdul Basit",
        "Muhammad Abdullah Hanif",
        "Alberto Marchisio",
        "Rachmad Vidya Wicaksana Putra",
        "Minghao Shao",
    )
    # pubDate "Mon, 27 Apr 2026 00:00:00 -0400"
    assert first.published == dt.datetime(2026, 4, 27, 4, 0, tzinfo=UTC)
    assert not first.date_from_fetch
    assert feed.entries[1].authors == ("Blessed Madukoma", "Prasenjit Mitra")
    assert feed.entries[2].categories == ("cs.LG",)


def test_full_all_archives_rss() -> None:
    feed = parse(RSS / "all-archives-2024-11-28-rss2-FULL-aioarxiv.xml")
    assert feed.kind == "arxiv" and feed.problems == ()
    assert len(feed.entries) == 1504
    # SOURCES.md: 926 new / 569 replace / 9 cross (checked against the file's announce_type tags)
    assert Counter(e.announce_type for e in feed.entries) == {"new": 926, "replace": 569, "cross": 9}
    assert all(e.version is not None and e.primary_category == e.categories[0] for e in feed.entries)
    tags = Counter(c for e in feed.entries for c in e.categories)
    assert (tags["cs.CV"], tags["cs.LG"], tags["cs.CL"]) == (227, 218, 102)
    replaced = [e for e in feed.entries if e.announce_type == "replace"]
    assert any(e.version and e.version > 1 for e in replaced)
    by_id = {e.arxiv_id: e for e in feed.entries}
    # dc:creator with affiliations: commas inside parentheses do not split names
    paper = by_id["2411.17817"]
    assert paper.authors[:2] == ("Tianliang Yan", "Yubao Liu")
    assert len(paper.authors) == 8 and paper.authors[-1] == "Denis Martynov"
    # an abstract with "$\frac{1}{3}&lt;s&lt;1$" keeps its "<" as text
    assert "$\\frac{1}{3}<s<1$" in by_id["2411.17730"].summary


def test_atom_listing_trimmed7() -> None:
    feed = parse(RSS / "cs.AI-2025-08-20-atom-zotero-arxiv-daily-trimmed7.xml")
    assert feed.kind == "arxiv" and feed.link == "http://rss.arxiv.org/atom/cs.AI"
    assert len(feed.entries) == 7
    first = feed.entries[0]
    assert (first.arxiv_id, first.version, first.announce_type) == ("2508.13426", 1, "cross")
    assert first.authors == ("Chunhua Liu", "Kabir Manandhar Shrestha", "Sukai Huang")
    assert first.categories == ("cs.CL", "cs.AI") and first.primary_category == "cs.CL"
    assert first.summary.startswith("As large language models (LLMs) increasingly mediate")
    assert first.published == dt.datetime(2025, 8, 20, 4, 0, tzinfo=UTC)


def test_truncated_atom_recovers_entries_and_says_so() -> None:
    feed = parse(RSS / "cs.AI-2025-08-20-atom-zotero-arxiv-daily-TRUNCATED-malformed.xml")
    assert feed.kind == "arxiv"
    assert len(feed.entries) >= 86
    assert feed.entries[0].arxiv_id == "2508.13167"
    assert any(p.startswith("malformed XML:") and "recovered" in p for p in feed.problems)


@pytest.mark.parametrize(
    "name", ["cs-2025-11-23-atom-EMPTY-weekend-researcharr.xml", "test-2024-11-28-rss2-EMPTY-aioarxiv.xml"]
)
def test_empty_arxiv_feeds(name: str) -> None:
    feed = parse(RSS / name)
    assert (feed.kind, feed.entries, feed.problems) == ("arxiv", (), ())


def test_arxiv_rss_error_document() -> None:
    feed = parse(RSS / "astroph-2024-11-28-rss2-ERROR-bad-archive-aioarxiv.xml")
    assert feed.kind == "arxiv" and feed.entries == ()
    assert any("Bad archive 'astroph'" in p for p in feed.problems)


# --------------------------------------------------------------------------- arXiv API


def test_api_2016_old_format_id_list() -> None:
    feed = parse(API / "arxivpy-2016-10-09-api-old-id_list-1111.2011v2.xml")
    assert feed.kind == "arxiv"
    assert (feed.total_results, feed.start_index) == (1, 0)
    assert feed.title == "ArXiv Query: search_query=&id_list=1111.2011v2&start=0&max_results=10"
    (paper,) = feed.entries
    assert (paper.key, paper.arxiv_id, paper.version) == ("arxiv:1111.2011", "1111.2011", 2)
    assert paper.announce_type is None
    assert paper.title == (
        "Quantum Criticality for Extended Nodes on a Bethe Lattice in the Large Connectivity Limit"
    )
    assert paper.authors == ("James M. Murray", "Adrian Del Maestro", "Zlatko Tesanovic")
    assert paper.primary_category == "cond-mat.str-el"
    assert paper.categories == ("cond-mat.str-el", "cond-mat.stat-mech")
    assert paper.comment == "8 pages, 3 figures. Published version"
    assert paper.published == dt.datetime(2011, 11, 8, 18, 48, 36, tzinfo=UTC)
    assert paper.summary.startswith(
        "Theoretical description of anisotropic systems, such as layered superconductors"
    )
    assert "\n" not in paper.summary and "  " not in paper.summary
    assert paper.url == "https://arxiv.org/abs/1111.2011"


def test_api_2016_search_page() -> None:
    feed = parse(API / "arxivpy-2016-10-09-api-old-au_del_maestro.xml")
    assert (feed.total_results, feed.start_index, len(feed.entries)) == (31, 0, 10)
    assert all(any(a.endswith("Del Maestro") for a in e.authors) for e in feed.entries)
    assert feed.entries[4].authors == ("B. Kulchytskyy", "G. Gervais", "A. Del Maestro")
    first = feed.entries[0]
    assert (first.arxiv_id, first.version, first.primary_category) == ("1201.4869", 1, "cond-mat.mes-hall")


def test_api_2024_old_format_pretty_printed() -> None:
    feed = parse(API / "balconyjh-aioarxiv-2024-12-28-api-old-all_electron-m1.xml")
    assert feed.total_results == 218712
    (paper,) = feed.entries
    assert (paper.arxiv_id, paper.version) == ("cond-mat/0102536", 1)
    assert paper.authors == (
        "David Prendergast",
        "M. Nolan",
        "Claudia Filippi",
        "Stephen Fahy",
        "J. C. Greer",
    )
    assert paper.comment == (
        "11 pages, 6 figures, 3 tables, LaTeX209, submitted to The Journal of Chemical Physics"
    )
    assert "  " not in paper.summary and paper.summary.endswith("for CI calculations.")


def test_api_2026_new_format_old_style_id() -> None:
    feed = parse(API / "arxivpy-2026-05-11-api-new-id_astro-ph_0601001_s0_m100_3150dca9dc76-http200.xml")
    (paper,) = feed.entries
    assert (paper.key, paper.version) == ("arxiv:astro-ph/0601001", 1)
    assert paper.url == "https://arxiv.org/abs/astro-ph/0601001"
    assert paper.authors == ("Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski")
    assert (paper.primary_category, paper.categories) == ("astro-ph", ("astro-ph",))
    assert paper.comment and paper.comment.startswith("62 pages including 16 figures")
    assert "V_max<17.5" in paper.summary
    assert paper.published == dt.datetime(2006, 1, 2, 14, 57, 58, tzinfo=UTC)


def test_api_2026_new_format_cs_lg_page() -> None:
    feed = parse(API / "brevio-2026-04-30-api-new-cat_cs.LG_OR_cs.AI-m20.xml")
    assert (feed.total_results, feed.start_index, len(feed.entries)) == (364218, 0, 20)
    first = feed.entries[0]
    assert (first.arxiv_id, first.version, first.primary_category) == ("2604.26951", 1, "cs.CL")
    assert first.categories == ("cs.CL", "cs.AI", "cs.LG")
    assert first.authors[:3] == ("Gongbo Zhang", "Wen Wang", "Ye Tian")
    assert all({"cs.LG", "cs.AI"} & set(e.categories) for e in feed.entries)


def test_api_2026_paging() -> None:
    feed = parse(API / "arxivpy-2026-04-12-api-new-q_testing_s10_m10_34e56e15aaac-http200.xml")
    assert (feed.total_results, feed.start_index, len(feed.entries)) == (214881, 10, 10)
    assert (feed.entries[0].arxiv_id, feed.entries[0].version) == ("2403.16981", 2)


def test_api_quant_ph_old_style() -> None:
    feed = parse(API / "arxivpy-2026-04-12-api-new-id_quant-ph_0201082v1_s0_m100_86989fe779ef-http200.xml")
    (paper,) = feed.entries
    assert (paper.arxiv_id, paper.categories, paper.primary_category) == (
        "quant-ph/0201082",
        ("quant-ph", "cs.PL"),
        "quant-ph",
    )


def test_api_error_document() -> None:
    feed = parse(API / "arxivpy-2026-04-12-api-new-id_abc_s0_m100_b79c8dcf6bc3-http400.xml")
    assert feed.kind == "arxiv"
    assert feed.entries == ()
    assert feed.api_error == "incorrect id format for abc"
    assert any("incorrect id format for abc" in p for p in feed.problems)


def test_api_empty_result() -> None:
    feed = parse(API / "arxivpy-2026-04-12-api-new-id_0000.0000_s0_m100_8b51d9633a68-http200.xml")
    assert (feed.kind, feed.entries, feed.total_results, feed.api_error, feed.problems) == (
        "arxiv",
        (),
        0,
        None,
        (),
    )


# --------------------------------------------------------------------------- blogs


def test_colah_hakyll_thurs_dates() -> None:
    # SOURCES.md calls these dates non-RFC822 ("Thurs, 30 May 2019 00:00:00 UTC"); feedparser
    # 6.0.x reads them anyway, and the weekdays agree with the dates, so they are used as is.
    feed = parse(BLOGS / "colah-blog-2019-05-30-rss2-hakyll-BADDATE.xml")
    assert feed.kind == "blog" and len(feed.entries) == 6
    assert [e.published.date() for e in feed.entries] == [
        dt.date(2019, 5, 30),
        dt.date(2015, 9, 3),
        dt.date(2015, 9, 3),
        dt.date(2015, 8, 31),
        dt.date(2015, 8, 27),
        dt.date(2015, 1, 16),
    ]
    assert not any(e.date_from_fetch for e in feed.entries)
    first = feed.entries[0]
    assert first.title == "Collaboration and Credit Principles"
    assert first.url == "http://colah.github.io/posts/2019-05-Collaboration/index.html"
    assert first.summary.startswith(
        "A lot of the best research in machine learning comes from collaborations."
    )
    assert "<p>" not in first.summary


def test_lillog_2026() -> None:
    feed = parse(BLOGS / "lilianweng-lillog-2026-07-04-rss2-hugo.xml")
    assert (feed.kind, feed.title, feed.link) == ("blog", "Lil'Log", "https://lilianweng.github.io/")
    assert len(feed.entries) == 53
    first = feed.entries[0]
    assert first.title == "Harness Engineering for Self-Improvement"
    assert first.key == "https://lilianweng.github.io/posts/2026-07-04-harness"
    assert first.url == "https://lilianweng.github.io/posts/2026-07-04-harness/"
    assert first.published == dt.datetime(2026, 7, 4, tzinfo=UTC)
    assert first.summary.startswith(
        "The concept of recursive self-improvement (RSI) dates back to I. J. Good"
    )
    assert "“ultraintelligent machine”" in first.summary  # &amp;ldquo; → “
    assert first.summary_html is not None
    assert '<a href="https://philpapers.org/rec/GOOSCT" rel="noopener noreferrer">' in first.summary_html
    # the feed names no author anywhere (no <author>, no dc:creator, no managingEditor)
    assert all(e.authors == () for e in feed.entries)
    # the FAQ page has pubDate "Mon, 01 Jan 0001": the only entry dated from the fetch
    undated = [e for e in feed.entries if e.date_from_fetch]
    assert [e.title for e in undated] == ["FAQ"]
    assert "1 entry had no usable date; used the fetch time" in feed.problems
    assert all(dt.datetime(2017, 1, 1, tzinfo=UTC) < e.published for e in feed.entries)


def test_lillog_tag_feed_overlaps_main_feed() -> None:
    main = {e.key for e in parse(BLOGS / "lilianweng-lillog-2026-07-04-rss2-hugo.xml").entries}
    tag = {e.key for e in parse(BLOGS / "lilianweng-lillog-tag-language-model-2026-rss2-hugo.xml").entries}
    assert len(tag) == 16 and tag <= main


def test_ghost_content_encoded_and_author() -> None:
    feed = parse(BLOGS / "thegradient-2026-04-27-rss2-distill.xml")
    first = feed.entries[0]
    assert first.authors == ("Peli Grietzer",)
    assert first.guid == "69879dd077c3d76051ac158f"
    assert first.categories == ("Ethics", "Human factors", "Impacts")
    assert first.published == dt.datetime(2026, 2, 18, 23, 25, 52, tzinfo=UTC)
    # the description is a teaser (summary, digest); content:encoded is kept whole (content_html)
    assert first.summary.startswith("Preface This essay argues that rational people don’t have goals")
    assert first.summary_html is not None and "<h2>Preface</h2>" in first.summary_html
    assert len(first.summary_html) < 1000
    assert first.content_html is not None and "<h2>Preface</h2>" in first.content_html
    assert len(first.content_html) > 20_000
    assert "kg-card-begin" not in first.content_html  # HTML comments stripped


def test_atom_entries_inherit_feed_author() -> None:
    feed = parse(BLOGS / "ainewsdirect-google-ai-blog-2025-07-29-atom.xml")
    assert len(feed.entries) == 20
    first = feed.entries[0]
    assert first.authors == ("AI News Direct",)
    assert first.key == "https://blog.google/products/search/web-guide-labs"
    assert first.guid == "528ad5653cbf779a3f36c1cc48c41083"
    assert first.published == dt.datetime(2025, 7, 24, 16, 0, tzinfo=UTC)  # only <updated>
    # type="text" summary holding an escaped <img>: the plain summary has no markup
    assert first.summary.startswith("We’re launching Web Guide")
    assert first.summary_html and first.summary_html.startswith("<img src=")


def test_wordpress_empty_creator_and_bair_full_html() -> None:
    meta = parse(BLOGS / "meta-engineering-ai-research-2026-02-rss2-distill.xml")
    assert len(meta.entries) == 3 and all(e.authors == () for e in meta.entries)
    bair = parse(BLOGS / "bair-blog-2026-04-rss2-distill.xml")
    first = bair.entries[0]
    assert first.published == dt.datetime(2026, 4, 20, 9, 0, tzinfo=UTC)  # 02:00 -0700
    assert first.summary.startswith("GRASP is a new gradient-based planner")  # <meta> tags gone
    assert first.summary.endswith("…") and len(first.summary) <= 2000


def test_minimal_and_empty_blog_feeds() -> None:
    hf = parse(BLOGS / "huggingface-blog-2026-04-27-rss2-distill.xml")
    assert [e.summary for e in hf.entries] == ["", "", ""]
    assert all(e.summary_html is None for e in hf.entries)
    empty = parse(BLOGS / "olshansk-openai_research-2026-01-15-rss2-feedgen.xml")
    assert (empty.kind, empty.title, empty.entries, empty.problems) == (
        "blog",
        "OpenAI Research News",
        (),
        (),
    )


def test_feed_linking_to_arxiv_is_still_a_blog() -> None:
    feed = parse(BLOGS / "hf-daily-papers-feedgen-2026-04-30-rss2-brevio.xml")
    assert feed.kind == "blog" and len(feed.entries) == 22
    assert feed.entries[0].key == "https://arxiv.org/abs/2604.21003"
    assert feed.entries[0].kind == "post"


@pytest.mark.parametrize(
    ("name", "entries", "problem"),
    [
        ("feedparser-illformed_rss_empty_document.xml", 0, "malformed XML"),
        ("feedparser-illformed_undeclared_namespace.xml", 0, "malformed XML: unbound prefix"),
        ("feedparser-illformed_rss_item_link_corrupted_ampersands.xml", 1, "malformed XML"),
        ("feedparser-illformed_chardet_gb2312.xml", 1, "character encoding: document declared as utf-8"),
        # description-only: kept (RSS 2.0 allows it), its UTF-8 read as Latin-1 repaired to "…"
        ("feedparser-encoding_double-encoded-html.xml", 1, "no usable date"),
    ],
)
def test_feedparser_edge_cases(name: str, entries: int, problem: str) -> None:
    feed = parse(BLOGS / "feedparser-edgecases" / name)
    assert len(feed.entries) == entries
    assert any(problem in p for p in feed.problems), feed.problems


def test_corrupted_ampersand_link_is_kept() -> None:
    feed = parse(
        BLOGS / "feedparser-edgecases" / "feedparser-illformed_rss_item_link_corrupted_ampersands.xml"
    )
    (entry,) = feed.entries
    assert entry.url == "http://link/get?a=1&b=2" and entry.key == "http://link/get?a=1&b=2"
    assert entry.date_from_fetch


# --------------------------------------------------------------------------- kind detection


def test_kind_override() -> None:
    body = (RSS / "cs.LG-2026-04-27-rss2-distill-trimmed3.xml").read_bytes()
    as_blog = parse_feed(body, fetched_at=FETCHED, kind="blog")
    assert as_blog.kind == "blog"
    assert as_blog.entries[0].kind == "post"
    assert as_blog.entries[0].key == "https://arxiv.org/abs/2604.21952"
    as_arxiv = parse_feed(
        (BLOGS / "openai-news-2026-04-27-rss2-distill.xml").read_bytes(), fetched_at=FETCHED, kind="arxiv"
    )
    assert as_arxiv.kind == "arxiv" and as_arxiv.entries == ()
    assert "3 entries had no arXiv id and were skipped" in as_arxiv.problems


def test_detect_arxiv_from_fetch_url() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title></channel></rss>'
    assert parse_feed(body, fetched_at=FETCHED, url="https://rss.arxiv.org/rss/cs.LG").kind == "arxiv"
    assert parse_feed(body, fetched_at=FETCHED, url="https://example.org/feed").kind == "blog"


# --------------------------------------------------------------------------- hostile and odd input


HOSTILE = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>
<title>Evil &amp;amp; Co</title><link>https://evil.example/</link>
<item>
  <title>&lt;b&gt;Bold&lt;/b&gt; claim &amp;amp; more   </title>
  <link>HTTPS://Evil.Example/posts/one/?utm_source=rss&amp;id=7&amp;utm_medium=feed#comments</link>
  <pubDate>Tue, 04 Aug 2026 10:00:00 +0200</pubDate>
  <description>&lt;p onclick="steal()"&gt;Hello
    &lt;script&gt;alert('x')&lt;/script&gt;world&lt;/p&gt;</description>
  <content:encoded><![CDATA[
    <p>Intro <img src="x.png" onerror="alert(1)"> and <a href="javascript:alert(2)">a trap</a>.</p>
    <a href="/relative/page">relative</a> <a href="https://ok.example/">fine</a>
    <iframe src="https://evil.example/frame"></iframe><style>body{display:none}</style>
    <svg onload="alert(3)"><circle/></svg><form action="/x"><input name="pw"></form>
    <script>document.cookie</script>
  ]]></content:encoded>
</item>
</channel></rss>"""


def test_hostile_html_is_sanitised() -> None:
    feed = parse_feed(HOSTILE, fetched_at=FETCHED, url="https://evil.example/feed.xml")
    assert feed.title == "Evil & Co"
    (entry,) = feed.entries
    assert entry.title == "Bold claim & more"
    assert entry.key == "https://evil.example/posts/one?id=7"
    assert entry.url == "https://Evil.Example/posts/one/?utm_source=rss&id=7&utm_medium=feed#comments"
    assert entry.published == dt.datetime(2026, 8, 4, 8, 0, tzinfo=UTC)
    assert entry.summary == "Hello world"  # the description, tags and script gone
    assert entry.summary_html == "<p>Hello\n    world</p>"
    html = entry.content_html  # content:encoded, kept whole beside the summary
    assert html is not None
    lowered = (html + entry.summary_html).lower()
    for bad in (
        "<script",
        "alert",
        "onerror",
        "onclick",
        "onload",
        "javascript:",
        "<iframe",
        "<style",
        "display:none",
        "<form",
        "<input",
        "<svg",
    ):
        assert bad not in lowered, bad
    assert '<img src="https://evil.example/x.png">' in html  # resolved against the feed's URL
    assert '<a href="https://evil.example/relative/page" rel="noopener noreferrer">relative</a>' in html
    assert '<a href="https://ok.example/" rel="noopener noreferrer">fine</a>' in html
    assert "a trap" in html


def test_huge_html_is_cut_before_cleaning() -> None:
    big = "<p>" + "word " * 100_000 + "</p>"
    body = (
        '<rss version="2.0"><channel><title>b</title><item><title>t</title><link>https://b.example/1</link>'
        f"<description><![CDATA[{big}]]></description></item></channel></rss>"
    ).encode()
    (entry,) = parse_feed(body, fetched_at=FETCHED).entries
    assert entry.summary_html is not None and len(entry.summary_html) <= 200_100
    assert len(entry.summary) <= 2000 and entry.summary.endswith("…")


def test_undated_entries_use_fetch_time_and_one_problem_line() -> None:
    body = b"""<rss version="2.0"><channel><title>d</title>
    <item><title>none</title><link>https://d.example/1</link></item>
    <item><title>future</title><link>https://d.example/2</link>
      <pubDate>Fri, 01 Jan 2999 00:00:00 GMT</pubDate></item>
    <item><title>epoch</title><link>https://d.example/3</link>
      <pubDate>Thu, 01 Jan 1970 00:00:00 GMT</pubDate></item>
    <item><title>garbage</title><link>https://d.example/4</link>
      <pubDate>sometime soon</pubDate></item>
    <item><title>fine</title><link>https://d.example/5</link>
      <pubDate>Wed, 19 Aug 2026 08:00:00 GMT</pubDate></item>
    </channel></rss>"""
    feed = parse_feed(body, fetched_at=dt.datetime(2026, 8, 30, 14, 0))  # naive = UTC
    assert [e.date_from_fetch for e in feed.entries] == [True, True, True, True, False]
    assert all(e.published == dt.datetime(2026, 8, 30, 14, 0, tzinfo=UTC) for e in feed.entries[:4])
    assert feed.entries[4].published == dt.datetime(2026, 8, 19, 8, 0, tzinfo=UTC)
    assert feed.problems == ("4 entries had no usable date; used the fetch time",)


def test_duplicates_and_empty_entries() -> None:
    body = b"""<rss version="2.0"><channel><title>d</title>
    <item><title>first</title><link>https://d.example/a/</link>
      <pubDate>Wed, 19 Aug 2026 08:00:00 GMT</pubDate></item>
    <item><title>again</title><link>https://D.example/a#top</link>
      <pubDate>Wed, 19 Aug 2026 08:00:00 GMT</pubDate></item>
    <item><description>nothing to name it by</description></item>
    <item><title>guid only</title><guid isPermaLink="false">abc-123</guid>
      <pubDate>Wed, 19 Aug 2026 08:00:00 GMT</pubDate></item>
    </channel></rss>"""
    feed = parse_feed(body, fetched_at=FETCHED)
    keys = [(e.key, e.title) for e in feed.entries]
    assert keys[0] == ("https://d.example/a", "first")
    # a description-only item is kept: a key from its text, a title from its start
    assert keys[1][0].startswith("text:") and keys[1][1] == "nothing to name it by"
    assert keys[2] == ("guid:abc-123", "guid only")
    assert not any("skipped" in p for p in feed.problems)
    assert "1 entry repeated a key already in the document; kept the first" in feed.problems


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", None),
        (b"   \n", None),
        (b"\x00\xff\xfe garbage \x89PNG", None),
        (bytes(range(256)) * 64, "application/rss+xml"),
        (b"<html><head><title>Not a feed</title></head><body><p>hi</p></body></html>", "text/html"),
        (b"/etc/passwd", None),  # must not be opened as a file name
        (b'<?xml version="1.0"?><rss version="2.0"><channel><item><title>x', None),
        (
            b"<!DOCTYPE x [<!ENTITY a SYSTEM 'file:///etc/passwd'>]><rss><channel><title>&a;</title></channel></rss>",
            None,
        ),
        ("<rss><channel><title>é</title></channel></rss>".encode("latin-1"), "text/xml; charset=utf-8"),
    ],
)
def test_never_raises(body: bytes, content_type: str | None) -> None:
    feed = parse_feed(body, fetched_at=FETCHED, url="https://x.example/feed", content_type=content_type)
    assert isinstance(feed, ParsedFeed)
    assert "root:" not in feed.title and all("root:" not in e.title for e in feed.entries)
    if not feed.entries:
        assert feed.problems or feed.title


def test_unparseable_bytes_give_a_problem() -> None:
    for body in (b"", b"\x00\xff\xfe garbage", b"/etc/passwd"):
        feed = parse_feed(body, fetched_at=FETCHED)
        assert feed.entries == () and feed.problems, body


def test_content_type_charset_is_passed_to_feedparser() -> None:
    body = "<rss version='2.0'><channel><title>Café</title></channel></rss>".encode("latin-1")
    feed = parse_feed(body, fetched_at=FETCHED, content_type="application/rss+xml; charset=iso-8859-1")
    assert feed.title == "Café"


# --------------------------------------------------------------------------- helpers


def test_normalise_link() -> None:
    assert normalise_link("HTTPS://Example.COM/Path/?utm_source=x&b=2&UTM_Campaign=y#frag") == (
        "https://example.com/Path?b=2"
    )
    assert normalise_link("https://example.com") == "https://example.com/"
    assert normalise_link("https://example.com/") == "https://example.com/"
    assert normalise_link("https://example.com/a//") == "https://example.com/a"


def test_html_to_text() -> None:
    assert html_to_text("<p>a</p><p>b<br>c</p>") == "a b c"
    assert html_to_text("x &lt; y &amp; <em>z</em>") == "x < y & z"
    assert html_to_text("<style>p{}</style><script>x()</script>kept") == "kept"
    assert html_to_text("plain   text\n") == "plain text"


# --------------------------------------------------------------------------- feedreplay renderings


@pytest.fixture(scope="module")
def feedreplay() -> ModuleType:
    spec = importlib.util.spec_from_file_location("feedreplay_for_tests", FEEDREPLAY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(feedreplay: ModuleType) -> object:
    return feedreplay.Corpus(DATA / "bulk" / "daily-arxiv-ai-enhanced")


def _ordered_categories(feedreplay: ModuleType, paper: dict) -> tuple[str, ...]:
    primary = feedreplay.primary_category(paper)
    return tuple(dict.fromkeys([primary, *paper["categories"]]))


def test_feedreplay_rss_cs_lg_2026_06_15(feedreplay: ModuleType, corpus: object) -> None:
    day = dt.date(2026, 6, 15)
    papers = [p for p in corpus.announced(day) if "cs.LG" in p["categories"]]  # type: ignore[attr-defined]
    assert len(papers) > 10
    feed = parse_feed(
        feedreplay.render_rss(papers, ["cs.LG"], day),
        fetched_at=FETCHED,
        url="http://127.0.0.1:8765/rss/cs.LG",
        content_type="application/rss+xml; charset=utf-8",
    )
    assert feed.kind == "arxiv" and feed.problems == ()
    assert [e.arxiv_id for e in feed.entries] == [p["id"] for p in papers]
    for entry, paper in zip(feed.entries, papers, strict=True):
        primary = feedreplay.primary_category(paper)
        assert entry.primary_category == primary
        assert entry.categories == _ordered_categories(feedreplay, paper)
        assert entry.announce_type == ("new" if primary == "cs.LG" else "cross")
        assert entry.version == 1
        assert entry.title == " ".join(paper["title"].split())
        assert entry.summary == " ".join((paper.get("summary") or "").split())
        assert entry.published == dt.datetime(2026, 6, 15, 4, 0, tzinfo=UTC)  # 00:00 New York (EDT)
        if not any("," in a or "(" in a for a in paper.get("authors") or []):
            assert entry.authors == tuple(" ".join(a.split()) for a in paper.get("authors") or [])


def test_feedreplay_api_page(feedreplay: ModuleType, corpus: object) -> None:
    day = dt.date(2026, 6, 15)
    pool = [
        (p, corpus.first_seen[p["id"]])  # type: ignore[attr-defined]
        for p in corpus.up_to(day)  # type: ignore[attr-defined]
        if {"cs.LG", "cs.CV"} & set(p["categories"])
    ]
    page = pool[100:150]
    query = "search_query=cat:cs.LG OR cat:cs.CV&id_list=&start=100&max_results=50"
    feed = parse_feed(feedreplay.render_api(page, query, 100, len(pool), day), fetched_at=FETCHED)
    assert feed.kind == "arxiv" and feed.problems == () and feed.api_error is None
    assert (feed.total_results, feed.start_index) == (len(pool), 100)
    assert [e.arxiv_id for e in feed.entries] == [p["id"] for p, _ in page]
    for entry, (paper, announced) in zip(feed.entries, page, strict=True):
        assert entry.primary_category == feedreplay.primary_category(paper)
        assert entry.categories == _ordered_categories(feedreplay, paper)
        assert (entry.version, entry.announce_type) == (1, None)
        assert entry.authors == tuple(" ".join(a.split()) for a in paper.get("authors") or [])
        assert entry.comment == (" ".join(paper["comment"].split()) if paper.get("comment") else None)
        assert entry.published == dt.datetime.combine(announced, dt.time(17, 0), UTC)
