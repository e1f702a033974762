"""The feeds file and settings: the shipped defaults load, and mistakes get messages that say where."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import ROOT, SHARED

from aggregator.config import ConfigError, Settings, load_feeds_file, parse_feeds_toml


def test_shipped_feeds_file_lists_arxiv_and_the_blogs() -> None:
    ff = load_feeds_file(ROOT / "feeds.toml")
    urls = {f.url for f in ff.feeds}
    assert {f"https://rss.arxiv.org/rss/{c}" for c in ("cs.LG", "cs.CV", "cs.CL")} <= urls
    names = " ".join(f.name for f in ff.feeds)
    for blog in (
        "OpenAI",
        "DeepMind",
        "Google Research",
        "Meta",
        "BAIR",
        "Hugging Face",
        "Gradient",
        "Lil'Log",
    ):
        assert blog in names
    assert ff.arxiv_categories == ("cs.LG", "cs.CV", "cs.CL")
    assert ff.interests.text.strip() and ff.interests.keywords


def test_replay_feeds_file_loads() -> None:
    ff = load_feeds_file(SHARED / "feeds.replay.toml")
    assert len(ff.feeds) == 25 and ff.arxiv_categories == ("cs.LG", "cs.CV", "cs.CL")
    assert ff.interests.is_empty


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[feeds]]\nurl = 'https://a.example/feed'\n", "feeds[0]: 'name' is required"),
        (
            "[[feeds]]\nname = 'a'\nurl = 'https://a.example/f'\nkind = 'podcast'\n",
            "kind must be 'arxiv' or 'blog'",
        ),
        ("[[feeds]]\nname = 'a'\nurl = 'https://a.example/f'\ninterval = 0\n", "interval must be a positive"),
        (
            "[[feeds]]\nname = 'a'\nurl = 'https://a/f'\n[[feeds]]\nname = 'b'\nurl = 'https://a/f'\n",
            "listed twice",
        ),
        ("[[feeds]]\nname = 'a'\nurl = 'https://a/f'\ncolour = 'red'\n", "unknown keys ['colour']"),
        ("feeds = 3", "must be an array of tables"),
        ("[interests]\nkeywords = 'llm'\n", "interests.keywords must be a list of strings"),
        ("[[feeds]\n", "not valid TOML"),
        (
            "[[feeds]]\nname = 'x'\nurl = 'https://rss.arxiv.org/rss/cs.LG+cs.XX'\n",
            "feeds[0] (x): unknown arXiv category cs.XX; did you mean cs.AI? "
            "(in https://rss.arxiv.org/rss/cs.LG+cs.XX)",
        ),
        (
            "[[feeds]]\nname = 'x'\nurl = 'http://127.0.0.1:8765/rss/stat.ml'\nkind = 'arxiv'\n",
            "unknown arXiv category stat.ml; did you mean stat.ML?",
        ),
    ],
)
def test_bad_feeds_files_are_explained(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as info:
        parse_feeds_toml(text, "my.toml")
    assert message in str(info.value) and str(info.value).startswith("my.toml")


def test_missing_feeds_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read feeds file"):
        load_feeds_file(tmp_path / "nope.toml")


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_TIMEZONE", "Europe/Paris")
    monkeypatch.setenv("AGGREGATOR_PORT", "9001")
    s = Settings()
    assert s.tz.key == "Europe/Paris" and s.port == 9001 and s.database_url == "sqlite:///./aggregator.db"
    monkeypatch.setenv("AGGREGATOR_TIMEZONE", "Mars/Olympus")
    with pytest.raises(ValueError, match="unknown IANA time zone"):
        Settings()


def test_arxiv_listing_categories_and_archives_are_accepted() -> None:
    text = (
        "[[feeds]]\nname = 'a'\nurl = 'https://rss.arxiv.org/rss/cs.LG+stat.ML+hep-th'\n"
        "[[feeds]]\nname = 'b'\nurl = 'https://rss.arxiv.org/atom/math'\n"  # a whole archive
        "[[feeds]]\nname = 'c'\nurl = 'https://blog.example/rss/feed.xml'\n"  # not arXiv: unchecked
    )
    assert parse_feeds_toml(text).arxiv_categories == ("cs.LG", "stat.ML", "hep-th", "math")


def test_old_setting_names_still_work_with_a_deprecation_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings renamed to carry their units keep their old names for one release."""
    from aggregator.config import RENAMED_SETTINGS, Settings

    assert RENAMED_SETTINGS["arxiv_delay"] == "arxiv_delay_seconds"
    with pytest.warns(DeprecationWarning, match="arxiv_delay is deprecated; use arxiv_delay_seconds"):
        assert Settings(**{"arxiv_delay": 7.5}).arxiv_delay_seconds == 7.5
    old_env, new_env = "AGGREGATOR_SCHEDULER_TICK", "AGGREGATOR_SCHEDULER_TICK" + "_SECONDS"
    monkeypatch.setenv(old_env, "42")
    with pytest.warns(DeprecationWarning, match=f"{old_env} is deprecated"):
        assert Settings().scheduler_tick_seconds == 42.0
    monkeypatch.setenv(new_env, "9")
    with pytest.warns(DeprecationWarning):
        assert Settings().scheduler_tick_seconds == 9.0  # the new name wins
    with pytest.warns(DeprecationWarning):  # a keyword beats the environment, old name or new
        assert Settings(**{"scheduler_tick": 5}).scheduler_tick_seconds == 5.0
