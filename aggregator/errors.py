"""The domain's errors, shared by every stage. The API maps them to HTTP in one place
(:func:`aggregator.api.errors.install`): ``ReaderError`` (and the other ``ValueError`` kinds
registered there) → 422, ``NotFound`` → 404, ``Forbidden`` → 403, ``Conflict`` → 409."""

from __future__ import annotations


class ReaderError(ValueError):
    """Invalid input; the message names the field and what is wrong with it."""


class NotFound(LookupError):
    """No such reader, item, feed, topic filter or subscription."""


class Forbidden(PermissionError):
    """The resource belongs to another reader (or to nobody, like the built-in topic filters)."""


class Conflict(ValueError):
    """The email address, topic slug or feed is taken."""
