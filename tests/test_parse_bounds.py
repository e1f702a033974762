"""Security issue 14, finding 2: deeply nested HTML must not cost quadratic CPU. Each attack is
reproduced; CPU is measured with ``time.process_time`` and compared with the cost of benign HTML
of the same length (a ratio, never a wall-clock limit)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from xml.sax.saxutils import escape

import nh3

from aggregator.feeds.html_bounds import MAX_DEPTH, html_over_bounds, html_shape, strip_tags_linear
from aggregator.feeds.html_text import _math_to_text, html_to_text, sanitize_html
from aggregator.feeds.parse import parse_feed

FETCHED = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
NESTED = "<div>" * 40_000 + "x" + "</div>" * 40_000  # the finding's entry: 200 kB before the text
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def rss(descriptions: list[str]) -> bytes:
    items = "".join(
        f"<item><title>Post {i}</title><link>https://ex.example/{i}</link>"
        f"<description>{escape(d)}</description></item>"
        for i, d in enumerate(descriptions)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
        f"<link>https://ex.example/</link><description>d</description>{items}</channel></rss>"
    ).encode()


def cpu(fn: object, *args: object, **kwargs: object) -> float:
    start = time.process_time()
    fn(*args, **kwargs)  # type: ignore[operator]
    return time.process_time() - start


def test_a_40000_deep_entry_is_kept_as_plain_text_with_the_reason() -> None:
    nested = "<div>" * 30_000 + "Deep <b>text</b> &amp; more" + "</div>" * 30_000
    for reader in ("fast", "feedparser"):
        feed = parse_feed(
            rss(["<p>A <b>fine</b> post</p>", nested, NESTED]),
            fetched_at=FETCHED,
            url="https://ex.example/feed",
            reader=reader,  # type: ignore[arg-type]
        )
        fine, deep, cut = feed.entries
        assert fine.summary_html == "<p>A <b>fine</b> post</p>"
        assert deep.title == "Post 1" and deep.url == "https://ex.example/1"
        assert deep.summary == "Deep text & more" and deep.summary_html == "Deep text &amp; more"
        assert cut.summary == "" and cut.summary_html is None  # its text lies past HTML_MAX_CHARS
        assert feed.problems[:2] == (
            f"entry 'Post 1': summary shown as plain text: HTML nested deeper than {MAX_DEPTH} levels",
            f"entry 'Post 2': summary shown as plain text: HTML nested deeper than {MAX_DEPTH} levels",
        )
    shallow_then_deep = "<p>Intro text</p>" + "<span>" * 1000 + "deep words" + "</span>" * 1000
    feed = parse_feed(rss([shallow_then_deep]), fetched_at=FETCHED, url="https://ex.example/feed")
    assert feed.entries[0].summary == "Intro text deep words"
    assert feed.entries[0].summary_html == "Intro text deep words"  # text, escaped: no markup


def test_the_bounded_parse_costs_about_as_much_as_benign_html_of_the_same_size() -> None:
    benign = ("<p>Word <b>bold</b> and <i>more</i> text.</p>" * 5000)[: len(NESTED)]
    hostile_feed, benign_feed = rss([NESTED] * 4), rss([benign] * 4)
    hostile = min(cpu(parse_feed, hostile_feed, fetched_at=FETCHED) for _ in range(2))
    baseline = min(cpu(parse_feed, benign_feed, fetched_at=FETCHED) for _ in range(2))
    # 2/5 of the depth, unbounded: ~1/6 of the cost of ONE full entry (quadratic)
    unbounded = cpu(nh3.clean, "<div>" * 16_000 + "x" + "</div>" * 16_000)
    assert hostile < 3 * baseline + 0.05
    assert 2 * hostile < unbounded  # four bounded entries cost less than half of that


def test_every_attack_shape_is_caught_in_linear_time() -> None:
    attacks = {
        "nested": NESTED,
        "end tags that close nothing": "<div></span>" * 16_000,
        "formatting re-opened": "".join(f"<div><b id={i}></div>x" for i in range(8000)),
        "unclosed math": "<math>" * 33_000,
        "nested font": "<font>" * 40_000,
    }
    for name, fragment in attacks.items():
        assert html_over_bounds(fragment) == f"HTML nested deeper than {MAX_DEPTH} levels", name
        spent = cpu(html_to_text, fragment) + cpu(sanitize_html, fragment)
        benign = ("<p>Some <b>bold</b> text</p>" * 20_000)[: len(fragment[:200_000])]
        reference = cpu(html_to_text, benign) + cpu(sanitize_html, benign)
        assert spent < 3 * reference + 0.05, name
    assert html_over_bounds("<br>" * 30_000) == "HTML with more than 20000 elements"


def test_unclosed_math_is_linear_and_closed_math_still_becomes_text() -> None:
    small, large = "<math>" * 8_000, "<math>" * 32_000
    assert _math_to_text(large) == large
    spent_small = min(cpu(_math_to_text, small) for _ in range(3))
    spent_large = min(cpu(_math_to_text, large) for _ in range(3))
    assert spent_large < 8 * spent_small + 0.01  # linear: ×4; quadratic: ×16
    formula = "<p>E=<math><msup><mi>mc</mi><mn>2</mn></msup><annotation>E=mc^2</annotation></math></p>"
    assert sanitize_html(formula) == "<p>E=mc<sup>2</sup></p>"
    assert html_to_text(formula) == "E=mc2"


def test_html_shape_follows_html_rules_that_do_not_nest() -> None:
    assert html_shape("<p>a<p>b<li>c<li>d<br><img src=x>").depth == 0
    assert html_shape("<div><span><b>x</b></span></div>").depth == 3
    assert html_shape("<div><span></div><div>").depth == 2  # </div> closes the span too
    assert html_shape("<div><b></div>x<b></b>").depth == 2  # the implicitly closed <b> counts
    script = "<script>" + "<div>" * 1000 + "</script><p>after</p>"
    assert html_shape(script).depth == 1 and html_over_bounds(script) is None
    assert html_shape("<!--" + "<div>" * 1000 + "--><div></div>").depth == 1
    assert html_shape("<svg>" + "<path d='M0'/>" * 1000 + "</svg>").depth == 1
    assert html_shape("<div/>" * 300).depth == 300  # "/>" closes nothing in HTML
    assert html_over_bounds("<i>x</i>" * 200) is None  # few "<": not scanned


def test_strip_tags_linear_keeps_text_only() -> None:
    fragment = (
        "<p>One&amp;two</p><script>alert(1)</script><style>p{}</style><div>three<br>four</div>"
        "<!-- note --><a href='javascript:x'>link</a><svg><text>drawn</text></svg>after"
    )
    assert " ".join(strip_tags_linear(fragment).split()) == "One&two three four link after"
    assert strip_tags_linear("<b>kept</b><script>" + "<div>" * 1000) == "kept"
    assert strip_tags_linear("a < b and c > d") == "a < b and c > d"


def test_no_real_captured_entry_is_over_the_bounds() -> None:
    checked = 0
    for path in sorted((DATA / "blogs").rglob("*")):
        if not path.is_file() or path.suffix not in (".xml", ".rss", ".atom", ".json"):
            continue
        feed = parse_feed(path.read_bytes(), fetched_at=FETCHED, url="https://ex.example/feed")
        assert not [p for p in feed.problems if "plain text" in p], path.name
        checked += len(feed.entries)
    assert checked > 300
