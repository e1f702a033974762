"""Signed, expiring links of the weekly email: 👍/👎 on an item, and unsubscribe.

A token is an itsdangerous ``URLSafeTimedSerializer`` payload (HMAC-SHA1 over the JSON payload
and a timestamp, URL-safe base64), one salt per purpose, so a feedback token is never accepted
as an unsubscribe token and the reverse. The key is the app's secret key: the setting
``AGGREGATOR_SECRET_KEY``, or else the random key kept in ``app_secrets`` (the one that signs
the session cookies, see :mod:`aggregator.api.auth`), so every instance agrees.

Feedback tokens carry ``{"r": reader id, "i": item id, "v": 1 | -1}`` and are valid
:data:`FEEDBACK_MAX_AGE` seconds; unsubscribe tokens carry ``{"r": reader id}`` and are valid
:data:`UNSUBSCRIBE_MAX_AGE` seconds (RFC 8058 asks that one-click unsubscribe keep working for
as long as the message may be read).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from aggregator.config import Settings

FEEDBACK_SALT = "email-feedback"
UNSUBSCRIBE_SALT = "email-unsubscribe"
#: Seconds a 👍/👎 link works: 30 days.
FEEDBACK_MAX_AGE = 30 * 24 * 3600
#: Seconds an unsubscribe link works: 365 days.
UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600


class TokenError(ValueError):
    """A link token that cannot be used (base class)."""


class TokenInvalid(TokenError):
    """Tampered, truncated, signed with another key or for another purpose (HTTP 400)."""


class TokenExpired(TokenError):
    """Correctly signed but older than its maximum age (HTTP 410)."""


@dataclass(frozen=True, slots=True)
class FeedbackClaim:
    reader_id: int
    item_id: int
    value: int  # 1 (👍) or -1 (👎)


def signing_key(session: Session, settings: Settings) -> str:
    """The app's secret key: ``settings.secret_key`` when set, else the stored one (created on
    first use; commits ``session`` then)."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value()
    from aggregator.store.secrets import load_or_create_secret

    return load_or_create_secret(session)


class LinkSigner:
    """Makes and checks link tokens with one key. ``now`` (UTC) pins the clock, for tests and
    for previews of a past week; by default the system clock is used."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("an empty signing key")
        self._key = key

    def _serializer(self, salt: str, now: dt.datetime | None) -> URLSafeTimedSerializer:
        if now is None:
            return URLSafeTimedSerializer(self._key, salt=salt)
        stamp = int(now.timestamp())

        class _FixedClock(TimestampSigner):
            def get_timestamp(self) -> int:
                return stamp

        return URLSafeTimedSerializer(self._key, salt=salt, signer=_FixedClock)

    def _load(self, token: str, salt: str, max_age: int, now: dt.datetime | None) -> Any:
        if not token or len(token) > 1024:
            raise TokenInvalid("the link is incomplete")
        try:
            return self._serializer(salt, now).loads(token, max_age=max_age)
        except SignatureExpired as err:  # only raised once the signature itself is valid
            raise TokenExpired("this link has expired") from err
        except BadSignature as err:
            raise TokenInvalid("this link is not valid (it may have been cut or changed)") from err

    def feedback_token(self, reader_id: int, item_id: int, value: int, now: dt.datetime | None = None) -> str:
        if value not in (1, -1):
            raise ValueError("value must be 1 or -1")
        return str(self._serializer(FEEDBACK_SALT, now).dumps({"r": reader_id, "i": item_id, "v": value}))

    def load_feedback(
        self, token: str, max_age: int = FEEDBACK_MAX_AGE, now: dt.datetime | None = None
    ) -> FeedbackClaim:
        """The vote a feedback token stands for. Raises :class:`TokenInvalid` or :class:`TokenExpired`."""
        data = self._load(token, FEEDBACK_SALT, max_age, now)
        try:
            claim = FeedbackClaim(int(data["r"]), int(data["i"]), int(data["v"]))
        except (KeyError, TypeError, ValueError) as err:
            raise TokenInvalid("this link is not valid") from err
        if claim.value not in (1, -1):
            raise TokenInvalid("this link is not valid")
        return claim

    def unsubscribe_token(self, reader_id: int, now: dt.datetime | None = None) -> str:
        return str(self._serializer(UNSUBSCRIBE_SALT, now).dumps({"r": reader_id}))

    def load_unsubscribe(
        self, token: str, max_age: int = UNSUBSCRIBE_MAX_AGE, now: dt.datetime | None = None
    ) -> int:
        """The reader id of an unsubscribe token. Raises :class:`TokenInvalid` or :class:`TokenExpired`."""
        data = self._load(token, UNSUBSCRIBE_SALT, max_age, now)
        try:
            return int(data["r"])
        except (KeyError, TypeError, ValueError) as err:
            raise TokenInvalid("this link is not valid") from err


@dataclass(frozen=True, slots=True)
class EmailLinks:
    """Absolute URLs of the email's links under ``base_url`` (``AGGREGATOR_PUBLIC_BASE_URL``)."""

    base_url: str
    signer: LinkSigner
    now: dt.datetime | None = None

    def _url(self, path: str, token: str | None = None) -> str:
        url = self.base_url.rstrip("/") + path
        return url if token is None else f"{url}?t={quote(token, safe='')}"

    def feedback(self, reader_id: int, item_id: int, value: int) -> str:
        return self._url("/email/feedback", self.signer.feedback_token(reader_id, item_id, value, self.now))

    def unsubscribe(self, reader_id: int) -> str:
        return self._url("/email/unsubscribe", self.signer.unsubscribe_token(reader_id, self.now))

    def page(self, path: str) -> str:
        return self._url(path)
