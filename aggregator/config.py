"""Settings (environment variables ``AGGREGATOR_*``, or a ``.env`` file) and the feeds file.

The feeds file is TOML with ``[[feeds]]`` tables and one ``[interests]`` table::

    [[feeds]]
    name = "arXiv cs.LG"
    url = "https://rss.arxiv.org/rss/cs.LG"
    kind = "arxiv"          # optional: "arxiv" | "blog"; detected from the document when left out
    interval = 60           # optional: minutes between checks, default 60
    tags = ["arxiv"]        # optional

    [interests]
    text = "free-text description of what the reader cares about"
    keywords = ["diffusion models", "reinforcement learning"]

:func:`load_feeds_file` raises :class:`ConfigError` with the file name and the offending
entry when the file cannot be read or does not follow that shape.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tomllib
import warnings
import zoneinfo
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from aggregator.taxonomy import UnknownCategory, check_category

FeedKind = Literal["arxiv", "blog"]

#: arXiv categories the default config follows, used when a feeds file names none.
DEFAULT_ARXIV_CATEGORIES = ("cs.LG", "cs.CV", "cs.CL")


class ConfigError(ValueError):
    """The feeds file or a setting is invalid; the message says where and why."""


#: Settings renamed so that their names carry their units. The old names (keyword or
#: ``AGGREGATOR_<OLD>`` environment variable) still work for one release, with a
#: ``DeprecationWarning``; they will be removed in 0.3.
RENAMED_SETTINGS: dict[str, str] = {
    "connect_timeout": "connect_timeout_seconds",
    "read_timeout": "read_timeout_seconds",
    "total_timeout": "total_timeout_seconds",
    "arxiv_delay": "arxiv_delay_seconds",
    "max_backoff": "max_backoff_seconds",
    "scheduler_tick": "scheduler_tick_seconds",
    "rescore_poll": "rescore_poll_seconds",
    "rescore_wait": "rescore_wait_seconds",
    "smtp_timeout": "smtp_timeout_seconds",
}


def _warn_renamed(old: str, new: str, stacklevel: int) -> None:
    """The ``DeprecationWarning`` for a setting given under its old name ``old``."""
    warnings.warn(
        f"setting {old} is deprecated; use {new} (AGGREGATOR_{new.upper()})",
        DeprecationWarning,
        stacklevel=stacklevel + 1,
    )


class Settings(BaseSettings):
    """Process-wide settings, validated once at start.

    Every field is read from ``AGGREGATOR_<NAME>`` (case-insensitive) or a ``.env`` file in
    the working directory.
    """

    model_config = SettingsConfigDict(env_prefix="AGGREGATOR_", env_file=".env", extra="ignore")

    database_url: str = "sqlite:///./aggregator.db"
    feeds_file: Path = Path("./feeds.toml")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    timezone: str = "UTC"

    # fetching
    user_agent: str = (
        "aggregator/0.1 (ML paper and blog digest; +https://github.com/aggregator-ml/aggregator)"
    )
    connect_timeout_seconds: float = Field(10.0, gt=0, description="seconds")
    read_timeout_seconds: float = Field(30.0, gt=0, description="seconds between two reads of the body")
    total_timeout_seconds: float = Field(
        120.0, gt=0, description="seconds for one whole fetch, headers to last byte"
    )
    max_redirects: int = Field(5, ge=0)
    max_body_bytes: int = Field(16 * 1024 * 1024, gt=0, description="bytes after decompression")
    global_concurrency: int = Field(16, ge=1)
    per_host_concurrency: int = Field(2, ge=1)
    arxiv_delay_seconds: float = Field(3.0, ge=0, description="seconds between two requests to an arXiv host")
    arxiv_api_url: str = "https://export.arxiv.org/api/query"
    arxiv_page_size: int = Field(200, ge=1, le=2000)
    max_backoff_seconds: float = Field(24 * 3600.0, gt=0, description="seconds; cap of the failure backoff")
    scheduler_tick_seconds: float = Field(
        60.0, gt=0, description="seconds between two 'refresh due feeds' passes"
    )
    # parsing (aggregator.feeds.parse_pool): documents are parsed in worker processes with a CPU
    # limit each; 0 workers parses in the calling thread
    parse_workers: int = Field(2, ge=0, le=16, description="parse worker processes per process")
    parse_cpu_seconds: float = Field(30.0, gt=0, description="CPU-seconds one document may take to parse")
    parse_budget_bytes: int = Field(
        20 * 1024 * 1024,
        gt=0,
        description="bytes of documents parsed and stored at once; a larger one runs alone",
    )

    # Rescoring a reader after a vote, a subscription or a profile change needs the TF-IDF
    # model and the window's item matrix (scikit-learn, hundreds of MB on a large database).
    # `aggregator run` has them anyway and rescores in the request; `aggregator api` turns
    # this off: it queues the reader (table rescore_requests) and a worker rescores.
    score_in_api: bool = Field(True, description="rescore readers inside the API process")
    rescore_poll_seconds: float = Field(
        1.0, gt=0, description="seconds between two looks at the rescore queue"
    )
    rescore_wait_seconds: float = Field(
        5.0, ge=0, description="seconds an API request waits for a worker's rescore before answering"
    )
    # PostgreSQL only: connections per API process (a psycopg_pool AsyncConnectionPool,
    # aggregator.digest.row_source.PoolRows) on which the served digest's queries are awaited, so
    # the event loop serves others while one waits for the database; 0 reads synchronously
    # through one held connection.
    read_connections: int = Field(4, ge=0, le=32, description="async read connections per API process")

    # readers: signs the session cookie of the HTML pages and the mailed sign-in and verification
    # links (aggregator.accounts.links). When unset, a random key is generated
    # once and kept in the database (table app_secrets), so restarts and every instance agree.
    secret_key: SecretStr | None = None

    # weekly email and the sign-in links' mails (aggregator.mail). The secret key above also
    # signs the email's 👍/👎 and unsubscribe links (one itsdangerous salt per purpose).
    smtp_host: str = "localhost"
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_security: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = Field(60.0, gt=0, description="seconds per SMTP command")
    mail_from: str = "ML digest <digest@localhost>"
    public_base_url: str = Field("http://127.0.0.1:8000", description="origin of links in emails")
    email_interval_minutes: float = Field(5.0, gt=0, description="minutes between two send-weekly passes")
    email_lease_seconds: float = Field(
        60.0, gt=0, description="seconds one claimed send stays ours unrenewed (renewed every third)"
    )
    job_lease_seconds: float = Field(
        60.0, gt=0, description="seconds a job lease or feed claim lasts unrenewed (renewed every third)"
    )
    email_max_attempts: int = Field(10, ge=1, description="SMTP attempts per weekly email before giving up")
    email_retry_seconds: float = Field(60.0, gt=0, description="first retry delay; doubles, capped at 1 h")

    # API hardening
    rate_limit: str = Field("600/minute;30/second", description="per API token (or IP), `limits` notation")
    rate_limit_storage: str = Field(
        "local://", description="local:// per process (no timer thread), or redis://host:port, shared"
    )
    max_request_bytes: int = Field(1024 * 1024, gt=0, description="largest request body accepted, bytes")
    html_rate_limit: str = Field("300/minute;20/second", description="HTML pages, per client address")
    auth_rate_limit: str = Field(
        "10/minute;60/hour", description="sign-up and sign-in requests, per client address"
    )
    auth_mails_per_hour: int = Field(
        5, ge=1, description="sign-in and verification mails one address may receive per hour"
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="IPs and CIDRs of reverse proxies whose X-Forwarded-For and X-Forwarded-Proto "
        "are believed (aggregator.api.client_keys); comma-separated or a JSON list; empty = none",
    )
    # limits of the HTTP server itself (aggregator.api.server_limits), per process
    http_max_header_bytes: int = Field(64 * 1024, ge=1024, description="request line + headers, bytes")
    http_header_timeout_seconds: float = Field(
        10.0, gt=0, description="seconds to receive a request's headers"
    )
    http_max_connections: int = Field(1000, ge=1, description="open connections per API process")

    # operations
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    metrics_port: int = Field(9108, ge=0, le=65535, description="port of the worker /metrics; 0 = off")

    # feeds added by readers (POST /api/me/feeds), fetched through aggregator.feeds.ssrf
    reader_feeds_max: int = Field(
        20, ge=0, description="feeds one reader may have added and scheduled at a time; 0 = none"
    )
    feed_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="hosts, '*.domain', IPs and CIDRs that reader-added feeds may reach although "
        "private, loopback, ... (see aggregator.feeds.ssrf); comma-separated or a JSON list",
    )

    # the personal Atom feed (GET /api/me/digest.atom): the last N days, each day's best first
    atom_days: int = Field(7, ge=1, le=31, description="days the personal Atom feed covers")

    # ranking
    rank_window_days: int = Field(90, ge=1, description="days of items the TF-IDF vocabulary is fitted on")
    why_terms: int = Field(5, ge=1, le=20)

    def __init__(self, **values: Any) -> None:
        """As pydantic-settings' ``BaseSettings``; a keyword under an old name of
        :data:`RENAMED_SETTINGS` is taken as the new name (with a ``DeprecationWarning``)
        before the sources merge, so it beats the environment as any keyword does."""
        for old, new in RENAMED_SETTINGS.items():
            if old in values:
                _warn_renamed(old, new, stacklevel=3)
                values.setdefault(new, values.pop(old))
        super().__init__(**values)

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        """Accept the old environment names of :data:`RENAMED_SETTINGS` (``AGGREGATOR_<OLD>``),
        warning; the new name, from a keyword or the environment, wins over them."""
        if not isinstance(data, dict):
            return data
        for old, new in RENAMED_SETTINGS.items():
            env_old = f"AGGREGATOR_{old.upper()}"
            if env_old in os.environ:
                _warn_renamed(env_old, new, stacklevel=2)
                data.setdefault(new, os.environ[env_old])
        return data

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown IANA time zone {value!r}") from err
        return value

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        """No known or short signing key (issue 14, finding 13): unset or empty means "generate
        one and keep it in the database"; anything else must be 32+ characters and not a
        placeholder such as ``change-me``."""
        if value is None or not value.get_secret_value():
            return value
        text = value.get_secret_value()
        if text.strip().lower() in WEAK_SECRETS or len(text) < 32:
            raise ValueError(
                "AGGREGATOR_SECRET_KEY is a placeholder or shorter than 32 characters; set a random "
                "one (python -c 'import secrets; print(secrets.token_urlsafe(32))') or leave it "
                "unset to have one generated and kept in the database"
            )
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: list[str]) -> list[str]:
        try:
            for entry in value:
                ipaddress.ip_network(entry, strict=False)
        except ValueError as err:
            raise ValueError(f"not an IP address or network: {err}") from err
        return value

    @field_validator("feed_allow_hosts", "trusted_proxies", mode="before")
    @classmethod
    def _allow_list(cls, value: object) -> object:
        """``AGGREGATOR_FEED_ALLOW_HOSTS=127.0.0.1,10.1.0.0/16`` or a JSON list, split into entries."""
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else [v for v in re.split(r"[,\s]+", text) if v]
        if isinstance(value, list | tuple):
            # kept as raw strings: aggregator.feeds.ssrf.parse_allow_list parses and checks them
            # (NetGuard.from_settings, called when the API and the worker start)
            return [str(v).strip() for v in value if str(v).strip()]
        return value

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)


#: Signing keys refused whatever their length: the placeholders of examples and compose files.
WEAK_SECRETS = frozenset({"change-me", "changeme", "secret", "dev", "development", "test", "password"})


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, read once from the environment."""
    return Settings()


@dataclass(frozen=True, slots=True)
class FeedConfig:
    """One ``[[feeds]]`` table. ``interval`` is in minutes."""

    name: str
    url: str
    kind: FeedKind | None = None
    interval: int = 60
    tags: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Interests:
    """The default reader's interest profile: free text plus keywords and phrases to boost."""

    text: str = ""
    keywords: tuple[str, ...] = ()
    seed_papers: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.text.strip() and not self.keywords and not self.seed_papers


@dataclass(frozen=True, slots=True)
class FeedsFile:
    feeds: tuple[FeedConfig, ...]
    interests: Interests = field(default_factory=Interests)

    @property
    def arxiv_categories(self) -> tuple[str, ...]:
        """arXiv categories named by the arXiv feeds (``.../rss/cs.LG+cs.CV`` gives both)."""
        cats: list[str] = []
        for feed in self.feeds:
            cats.extend(c for c in listing_categories(feed.url, feed.kind) if c not in cats)
        return tuple(cats) or DEFAULT_ARXIV_CATEGORIES


def listing_categories(url: str, kind: str | None) -> tuple[str, ...]:
    """The arXiv categories (or archives) an arXiv listing feed names: ``("cs.LG", "cs.CV")``
    for ``https://rss.arxiv.org/rss/cs.LG+cs.CV`` (or ``/atom/``); ``()`` for a feed that is not
    an arXiv listing (``kind`` other than ``"arxiv"`` and no ``arxiv.org`` in the URL)."""
    is_arxiv = kind == "arxiv" or "arxiv.org" in url
    if not is_arxiv or ("/rss/" not in url and "/atom/" not in url):
        return ()
    tail = url.rstrip("/").rsplit("/", 1)[-1]
    return tuple(dict.fromkeys(c for c in tail.split("+") if c))


def _str_list(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(v.strip() for v in value if v.strip())


def parse_feeds_toml(text: str, source: str = "feeds.toml") -> FeedsFile:
    """Parse feeds-file TOML text. Raises :class:`ConfigError` naming ``source``, also when an
    arXiv listing URL names a category (or archive) that is not in arXiv's taxonomy
    (:func:`aggregator.taxonomy.check_category`)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from err
    raw_feeds = data.get("feeds", [])
    if not isinstance(raw_feeds, list):
        raise ConfigError(f"{source}: 'feeds' must be an array of tables ([[feeds]])")
    feeds: list[FeedConfig] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_feeds):
        where = f"{source}: feeds[{i}]"
        if not isinstance(raw, dict):
            raise ConfigError(f"{where} must be a table")
        unknown = set(raw) - {"name", "url", "kind", "interval", "tags"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)}")
        name, url = raw.get("name"), raw.get("url")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: 'name' is required")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"{where} ({name}): 'url' must be an http(s) URL")
        if url in seen:
            raise ConfigError(f"{where} ({name}): url {url} is listed twice")
        seen.add(url)
        kind = raw.get("kind")
        if kind not in (None, "arxiv", "blog"):
            raise ConfigError(f"{where} ({name}): kind must be 'arxiv' or 'blog', not {kind!r}")
        for cat in listing_categories(url, kind):
            try:
                check_category(cat, archives=True)
            except UnknownCategory as err:
                raise ConfigError(f"{where} ({name}): {err} (in {url})") from err
        interval = raw.get("interval", 60)
        if not isinstance(interval, int) or isinstance(interval, bool) or interval < 1:
            raise ConfigError(f"{where} ({name}): interval must be a positive number of minutes")
        feeds.append(FeedConfig(name.strip(), url, kind, interval, _str_list(raw.get("tags"), where)))
    raw_int = data.get("interests", {})
    if not isinstance(raw_int, dict):
        raise ConfigError(f"{source}: [interests] must be a table")
    text_value = raw_int.get("text", "")
    if not isinstance(text_value, str):
        raise ConfigError(f"{source}: interests.text must be a string")
    interests = Interests(
        text=text_value,
        keywords=_str_list(raw_int.get("keywords"), f"{source}: interests.keywords"),
        seed_papers=_str_list(raw_int.get("seed_papers"), f"{source}: interests.seed_papers"),
    )
    return FeedsFile(tuple(feeds), interests)


def load_feeds_file(path: Path) -> FeedsFile:
    """Read and validate the feeds file at ``path``. Raises :class:`ConfigError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read feeds file {path}: {err.strerror or err}") from err
    return parse_feeds_toml(text, str(path))
