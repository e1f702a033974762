"""The pages' form bodies as Pydantic models (FastAPI reads them with ``Form()``): one place for
each form's fields, types and bounds. A value out of bounds gets the pages' 422 page."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
