"""The one Jinja2 environment of the project: web pages and the weekly email.

Templates live in ``aggregator/templates`` (the email's in ``templates/email``). HTML is
autoescaped, plain text (``.txt``) is not. An undefined variable is an error
(:class:`jinja2.StrictUndefined`), so a template and its caller cannot drift apart silently.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun that agrees with it, as the filter ``counted``: ``1|counted("pick")``
    is "1 pick", ``12|counted("pick")`` "12 picks", ``1|counted("paper or post", "papers and
    posts")`` "1 paper or post"; thousands get a comma ("1,397 items")."""
    return f"{n:,} {singular if n == 1 else (plural or singular + 's')}"


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The shared environment (built once per process)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(["html"], default_for_string=False, default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["counted"] = counted
    return env
