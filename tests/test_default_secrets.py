"""No default secret (issue 14, finding 13): docker-compose.yml has no fallback key, placeholders
and short keys are refused at start, and an unset key is generated and kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from aggregator.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_has_no_default_secret() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    keys = re.findall(r"AGGREGATOR_SECRET_KEY:\s*(\S+)", text)
    assert keys == ["${AGGREGATOR_SECRET_KEY:-}"], keys
    assert "change-me" not in text


@pytest.mark.parametrize("weak", ["change-me", "CHANGE-ME", "secret", "short-but-not-a-placeholder"])
def test_weak_secret_keys_are_refused(weak: str, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="placeholder or shorter than 32"):
        Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", secret_key=weak)  # type: ignore[arg-type]


def test_unset_or_strong_secret_is_accepted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    assert Settings(database_url=url).secret_key is None
    assert Settings(database_url=url, secret_key="").secret_key is not None  # type: ignore[arg-type]
    strong = Settings(database_url=url, secret_key="k" * 8 + "-random-enough-0123456789")  # type: ignore[arg-type]
    assert strong.secret_key is not None
