"""The pages' form bodies as Pydantic models (FastAPI reads them with ``Form()``): one place for
each form's fields, types and bounds. A value out of bounds gets the pages' 422 page."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from aggregator.types import TopicFilter

#: characters a list textarea of the topic filter form may hold (200 entries of 300, with room)
_LIST_CHARS = 70_000


def lines(text: str) -> list[str]:
    """A textarea's entries: one per non-blank line, stripped."""
    return [line.strip() for line in text.splitlines() if line.strip()]


class ProfileForm(BaseModel):
    """``POST /me/profile``: the interest profile (lists are one entry per line) and the weekly
    email's settings."""

    csrf_token: str = ""
    interests: str = ""
    keywords: str = ""
    muted: str = ""
    followed_authors: str = ""
    include_categories: str = ""
    exclude_categories: str = ""
    include_sources: str = ""
    exclude_sources: str = ""
    seed_papers: str = ""
    weekly_email: bool = False
    email_weekday: int = Field(0, ge=0, le=6, description="0 = Monday")
    email_time: str = Field("08:00", description="HH:MM in the reader's time zone")
    timezone: str = "UTC"

    def profile_fields(self) -> dict[str, object]:
        """The keyword arguments of :func:`aggregator.accounts.profiles.update_profile`."""
        return {
            "interests": self.interests,
            **{
                name: lines(getattr(self, name))
                for name in (
                    "keywords",
                    "muted",
                    "followed_authors",
                    "include_categories",
                    "exclude_categories",
                    "include_sources",
                    "exclude_sources",
                    "seed_papers",
                )
            },
        }


class TopicForm(BaseModel):
    """``POST /topics/new`` and ``POST /topics/{slug}/edit``: a topic filter (lists are one
    entry per line). ``action`` "preview" shows the items it would have matched without saving;
    "save" saves it. Bounds here only cap the request's size: the rules (and their messages,
    shown on the form) are :func:`aggregator.accounts.topic_filters.validate_topic`'s."""

    csrf_token: str = ""
    action: Literal["preview", "save"] = "save"
    name: str = Field("", max_length=1000)
    slug: str = Field("", max_length=1000, description="empty: derived from the name")
    description: str = Field("", max_length=2000)
    phrases: str = Field("", max_length=_LIST_CHARS)
    categories: str = Field("", max_length=_LIST_CHARS)
    authors: str = Field("", max_length=_LIST_CHARS)
    sources: str = Field("", max_length=_LIST_CHARS)
    negative: str = Field("", max_length=_LIST_CHARS)
    match: Literal["any", "all"] = "any"
    shared: bool = False
    subscribe: bool = Field(False, description="a new filter: follow it in my digest")

    def topic(self, slug: str | None = None) -> TopicFilter:
        """The filter the form describes (``slug`` None: the form's own, stripped)."""
        return TopicFilter(
            slug=self.slug.strip() if slug is None else slug,
            name=self.name,
            phrases=tuple(lines(self.phrases)),
            categories=tuple(lines(self.categories)),
            authors=tuple(lines(self.authors)),
            sources=tuple(lines(self.sources)),
            negative=tuple(lines(self.negative)),
            match=self.match,
        )
