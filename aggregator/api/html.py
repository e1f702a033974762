"""The pages' template renderer: FastAPI's :class:`Jinja2Templates` over the project's one
Jinja2 environment (:func:`aggregator.templating.environment`)."""

from __future__ import annotations

from fastapi.templating import Jinja2Templates

from aggregator.templating import environment

templates = Jinja2Templates(env=environment())
