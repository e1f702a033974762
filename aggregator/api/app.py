"""The FastAPI application. ``create_app`` runs ``alembic upgrade head`` before serving."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from aggregator.accounts import builtin_topics
from aggregator.api import errors
from aggregator.api.client_keys import parse_proxies
from aggregator.api.fastlane import DigestFastLane
from aggregator.api.limits import BodySizeLimit, RateLimit, rate_limit_options
from aggregator.api.pages import account as reader_pages
from aggregator.api.pages import library as library_pages
from aggregator.api.pages import public as pages
from aggregator.api.pages import search as search_pages
from aggregator.api.pages import signin as signin_pages
from aggregator.api.pages import topics as topic_pages
from aggregator.api.routes import digest as routes
from aggregator.api.routes import email_links as email_routes
from aggregator.api.routes import feeds as my_feeds
from aggregator.api.routes import items as items_routes
from aggregator.api.routes import library as library_routes
from aggregator.api.routes import me, rescore_status
from aggregator.api.routes import search as search_routes
from aggregator.api.routes import topics as topics_routes
from aggregator.api.routes import trends as trends_routes
from aggregator.api.security_headers import SecurityHeaders
from aggregator.api.static import STATIC_DIR, StaticFiles
from aggregator.config import Settings, get_settings
from aggregator.digest import row_source
from aggregator.feeds.ssrf import NetGuard
from aggregator.store.db import make_engine, session_factory, upgrade


def create_app(
    settings: Settings | None = None,
    engine: sa.Engine | None = None,
    on_start: Any = None,
    on_stop: Any = None,
    migrate: bool = True,
) -> FastAPI:
    """Build the app. ``on_start``/``on_stop`` (callables taking the app) run in the lifespan,
    e.g. to start the scheduler in ``aggregator run``.

    Long because it is the app's wiring (state, middleware, handlers, routers, lifespan) in the
    order it runs.
    """
    settings = settings or get_settings()
    NetGuard.from_settings(settings)  # a bad AGGREGATOR_FEED_ALLOW_HOSTS entry stops the start (ValueError)
    engine = engine or make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            upgrade(engine)
        try:
            with app.state.sessionmaker() as session, session.begin():
                builtin_topics.ensure_default_topics(session)  # the built-in topic-filter catalogue
        except sa.exc.SQLAlchemyError as err:  # e.g. migrate=False on a database not migrated yet
            logging.getLogger(__name__).warning("built-in topic filters not created: %s", err)
        await app.state.rows.open()
        if on_start is not None:
            on_start(app)
        try:
            yield
        finally:
            await app.state.rows.close()
            if on_stop is not None:
                on_stop(app)

    # /docs (Swagger UI) and /redoc load their scripts and styles from this package, served at
    # /static-offline-docs, not from a CDN: they work without network access
    app = FastAPIOffline(
        redoc_url=None,  # see _offline_redoc
        title="aggregator",
        version="0.1.0",
        summary="A ranked daily digest of arXiv papers and ML blog posts.",
        lifespan=lifespan,
        # FastAPI's native OpenTelemetry hooks look up the global providers on every request;
        # this app exports no traces or metrics through them (its metrics: /metrics)
        telemetry={"tracing": False, "metrics": False, "logs": False},
        responses={  # what the middleware may answer on any route
            400: {"description": "the request body could not be parsed"},
            413: {"description": "the request body is larger than AGGREGATOR_MAX_REQUEST_BYTES"},
            429: {"description": "rate limit exceeded; see the Retry-After header (seconds)"},
        },
    )
    _offline_redoc(app)
    app.add_middleware(DigestFastLane)  # innermost: after the size and rate limits
    app.add_middleware(RateLimit, **rate_limit_options(settings, engine))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders, proxies=parse_proxies(settings.trusted_proxies))
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = session_factory(engine)
    app.state.rows = row_source.row_source(engine, settings.read_connections)  # the served digest's reads
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(pages.router)
    app.include_router(trends_routes.router)
    app.include_router(me.router)
    app.include_router(topics_routes.router)
    app.include_router(items_routes.router)
    app.include_router(rescore_status.router)
    app.include_router(my_feeds.router)
    app.include_router(library_routes.router)
    app.include_router(signin_pages.router, include_in_schema=False)
    app.include_router(reader_pages.router, include_in_schema=False)  # HTML forms, not an API
    app.include_router(library_pages.router, include_in_schema=False)
    app.include_router(topic_pages.router, include_in_schema=False)
    app.include_router(email_routes.router)
    app.include_router(search_routes.router)
    app.include_router(search_pages.router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")  # style.css, keys.js
    return app


#: Where fastapi-offline serves the Swagger UI and ReDoc assets it ships.
DOCS_STATIC = "/static-offline-docs"
#: ReDoc's sidebar shows a logo from cdn.redoc.ly whatever its options: this page's images
#: may come only from here (or data: URLs), so the browser never asks the CDN.
REDOC_CSP = "img-src 'self' data:"


def _offline_redoc(app: FastAPI) -> None:
    """``GET /redoc``: ReDoc from fastapi-offline's copy, no Google fonts, no CDN logo."""
    from fastapi.openapi.docs import get_redoc_html
    from fastapi.responses import HTMLResponse

    @app.get("/redoc", include_in_schema=False)
    async def redoc_html() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{DOCS_STATIC}/redoc.standalone.js",
            redoc_favicon_url=f"{DOCS_STATIC}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = REDOC_CSP
        return page


def app_from_env() -> FastAPI:
    """Application factory for ``uvicorn --factory`` (``aggregator api --workers N``): settings
    from the environment; migrations were run once by the parent before the workers started."""
    return create_app(migrate=False, on_start=lambda _app: freeze_startup_heap())


def freeze_startup_heap() -> None:
    """Collect, then move every object made so far out of the cyclic garbage collector's reach
    (``gc.freeze``): a serving process calls it once its app has started. What start-up made
    (modules, the ORM's mappings, settings, templates; about 175,000 objects) lives as long as
    the process, and a full collection that walks it stalls every request in flight for
    tens of milliseconds (87-131 ms on the development machine), which the digest's p99 shows;
    collections then walk only what serving made."""
    gc.collect()
    gc.freeze()
