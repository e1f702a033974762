"""Issue 15: content that must survive parsing. Each case is a small document written from the
case, read through both XML readers (fast lxml and feedparser), which must agree."""

from __future__ import annotations

import datetime as dt
import json

from aggregator.feeds.parse import parse_feed
from aggregator.types import ParsedFeed

FETCHED = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
URL = "https://feeds.example/blog/feed.xml"


def both(body: bytes, url: str = URL) -> ParsedFeed:
    fast = parse_feed(body, fetched_at=FETCHED, url=url, reader="fast")
    slow = parse_feed(body, fetched_at=FETCHED, url=url, reader="feedparser")
    if fast.problems != ("fast reader declined",):
        assert fast == slow
    assert parse_feed(body, fetched_at=FETCHED, url=url) == slow
    return slow


def rss(items: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://ex.example/</link>{items}</channel></rss>"
    ).encode()


def atom(entries: str, base: str = "") -> bytes:
    attr = f' xml:base="{base}"' if base else ""
    return (
        f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{attr}>'
        "<title>A</title><id>urn:uuid:feed</id><updated>2026-01-01T00:00:00Z</updated>"
        f"{entries}</feed>"
    ).encode()


def test_plain_text_titles_keep_angle_brackets_and_ampersands() -> None:
    feed = both(
        rss(
            "<item><title>History of the &lt;blink&gt; tag</title><link>https://ex.example/a</link></item>"
            "<item><title>Why a&amp;lt;b implies b&amp;gt;a</title><link>https://ex.example/b</link></item>"
            "<item><title>Q&amp;A: &lt;1% error for n &lt; 2^k</title><link>https://ex.example/c</link></item>"
        )
    )
    assert [e.title for e in feed.entries] == [
        "History of the <blink> tag",
        "Why a<b implies b>a",  # escaped twice: feedparser's looks_like_html says HTML, unescaped once more
        "Q&A: <1% error for n < 2^k",
    ]
    feed = both(
        atom(
            "<entry><title>Vec&lt;T&gt;</title><id>urn:uuid:1</id><link href='https://ex.example/v'/></entry>"
        )
    )
    assert feed.entries[0].title == "Vec<T>"


def test_html_typed_title_is_markup() -> None:
    feed = both(
        atom("<entry><title type='html'>&lt;b&gt;Bold&lt;/b&gt; move</title><id>urn:x:1</id></entry>")
    )
    assert feed.entries[0].title == "Bold move"


def test_escaped_markup_is_unescaped_once_then_stripped() -> None:
    feed = both(
        rss(
            "<item><title>t</title><link>https://ex.example/a</link>"
            "<description>&lt;p&gt;Write &amp;lt;!DOCTYPE html&amp;gt; first&lt;/p&gt;</description></item>"
        )
    )
    (entry,) = feed.entries
    assert entry.summary == "Write <!DOCTYPE html> first"
    assert entry.summary_html == "<p>Write &lt;!DOCTYPE html&gt; first</p>"


def test_atom_text_content_is_not_double_escaped() -> None:
    feed = both(
        atom(
            "<entry><title>t</title><id>urn:x:2</id><link href='https://ex.example/t'/>"
            "<content>The &lt;blink&gt; tag. Tom &amp; Jerry</content></entry>"
        )
    )
    (entry,) = feed.entries
    assert entry.summary == "The <blink> tag. Tom & Jerry"
    assert entry.summary_html == "The &lt;blink&gt; tag. Tom &amp; Jerry"  # shows as typed, once escaped


def test_mathml_keeps_its_text() -> None:
    math = (
        '<math xmlns="http://www.w3.org/1998/Math/MathML"><mi>E</mi><mo>=</mo><mi>m</mi>'
        "<msup><mi>c</mi><mn>2</mn></msup></math>"
    )
    feed = both(
        rss(
            "<item><title>m</title><link>https://ex.example/m</link>"
            f"<description><![CDATA[<p>Energy {math} holds</p>]]></description></item>"
        )
    )
    (entry,) = feed.entries
    assert entry.summary == "Energy E=mc2 holds"
    assert entry.summary_html == "<p>Energy E=mc<sup>2</sup> holds</p>"


def test_description_only_items_are_kept_with_a_stable_key() -> None:
    body = rss(
        "<item><description>All systems operational since 10:00 UTC; the incident is resolved."
        "</description></item>"
        "<item><description>Degraded performance on the API.</description></item>"
    )
    feed = both(body)
    assert [e.title for e in feed.entries] == [
        "All systems operational since 10:00 UTC; the incident is resolved.",
        "Degraded performance on the API.",
    ]
    assert all(e.key.startswith("text:") and e.url is None for e in feed.entries)
    assert [e.key for e in both(body).entries] == [e.key for e in feed.entries]  # stable
    assert not any("skipped" in p for p in feed.problems)


def test_relative_links_resolve_against_xml_base_then_feed_url() -> None:
    feed = both(
        atom(
            "<entry><title>a</title><id>urn:x:3</id><link href='posts/1'/>"
            "<content type='html'>&lt;a href='img/x.png'&gt;x&lt;/a&gt;</content></entry>"
            "<entry xml:base='https://other.example/x/'><title>b</title><id>urn:x:4</id><link href='/p2'/>"
            "<content type='html'>&lt;img src='y.png'&gt;</content></entry>",
            base="https://ex.example/blog/",
        )
    )
    first, second = feed.entries
    assert first.url == "https://ex.example/blog/posts/1"
    assert 'href="https://ex.example/blog/img/x.png"' in (first.summary_html or "")
    assert second.url == "https://other.example/p2"
    assert 'src="https://other.example/x/y.png"' in (second.summary_html or "")
    # no xml:base: the document's URL
    feed = both(
        rss(
            "<item><title>c</title><link>/c</link>"
            "<description>&lt;a href='d'&gt;d&lt;/a&gt;</description></item>"
        )
    )
    assert feed.entries[0].url == "https://feeds.example/c"
    assert 'href="https://feeds.example/blog/d"' in (feed.entries[0].summary_html or "")


def test_urn_ids_stay_ids_and_url_comes_from_the_alternate_link() -> None:
    feed = both(
        atom(
            "<entry><title>u</title><id>urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6</id>"
            "<link rel='alternate' href='https://ex.example/u'/><link rel='enclosure' href='https://ex.example/u.mp3'/></entry>"
            "<entry><title>v</title><id>tag:ex.example,2026:v</id><link href='urn:isbn:0451450523'/></entry>"
        )
    )
    first, second = feed.entries
    assert (first.guid, first.url, first.key) == (
        "urn:uuid:60a76c80-d399-11d9-b93C-0003939e0af6",
        "https://ex.example/u",
        "https://ex.example/u",
    )
    assert (second.guid, second.url, second.key) == (
        "tag:ex.example,2026:v",
        None,
        "guid:tag:ex.example,2026:v",
    )


def test_summary_and_content_are_both_kept() -> None:
    feed = both(
        atom(
            "<entry><title>s</title><id>urn:x:5</id><link href='https://ex.example/s'/>"
            "<summary>A short teaser.</summary>"
            "<content type='html'>&lt;h2&gt;Full&lt;/h2&gt;&lt;p&gt;The whole post.&lt;/p&gt;"
            "</content></entry>"
        )
    )
    (entry,) = feed.entries
    assert entry.summary == "A short teaser." and entry.summary_html == "A short teaser."
    assert entry.content_html == "<h2>Full</h2><p>The whole post.</p>"


JSON_FEED = {
    "version": "https://jsonfeed.org/version/1.1",
    "title": "An ML blog",
    "home_page_url": "https://ml.example/",
    "feed_url": "https://ml.example/feed.json",
    "authors": [{"name": "Ada"}],
    "items": [
        {
            "id": "1",
            "url": "https://ml.example/posts/1",
            "title": "Scaling <laws> & such",
            "content_html": "<p>Full <b>post</b></p>",
            "summary": "A teaser",
            "date_published": "2026-07-01T10:00:00+02:00",
            "tags": ["scaling"],
        },
        {"id": "2", "content_text": "A status line with no title & no URL."},
    ],
}


def test_json_feed_1_1() -> None:
    feed = parse_feed(json.dumps(JSON_FEED).encode(), fetched_at=FETCHED, url="https://ml.example/feed.json")
    assert feed.title == "An ML blog" and feed.kind == "blog"
    first, second = feed.entries
    assert (first.title, first.url, first.summary, first.authors) == (
        "Scaling <laws> & such",
        "https://ml.example/posts/1",
        "A teaser",
        ("Ada",),
    )
    assert first.content_html == "<p>Full <b>post</b></p>"
    assert first.published == dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)
    assert second.title == "A status line with no title & no URL." and second.key == "guid:2"


def test_json_that_is_not_a_feed_never_says_not_well_formed() -> None:
    for body in (b'{"hello": 1}', b"{broken json"):
        feed = parse_feed(body, fetched_at=FETCHED, content_type="application/feed+json")
        assert feed.entries == () and feed.problems
        assert not any("well-formed" in p for p in feed.problems)
