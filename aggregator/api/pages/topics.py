"""The topic filter pages: the catalogue at ``/topics`` with subscribe/unsubscribe buttons, and
the form that makes (``/topics/new``) and edits (``/topics/{slug}/edit``) a reader's own filter.

The form's "Preview" button lists the items the filter would have matched over the last week
(:func:`aggregator.digest.topic_preview.preview_topic`) without saving anything; "Save" saves it
and answers 303 to the catalogue. A refused form is shown again, with the reader's input and
the reason, with a 422 (or 409 for a slug taken). A reader's filters are private until shared
(:mod:`aggregator.accounts.topic_filters`): another reader's private filter is a 404 here too.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from aggregator import errors
from aggregator.accounts import subscriptions, topic_filters
from aggregator.accounts.topic_filters import TopicInfo
from aggregator.api import rescoring
from aggregator.api.auth import WebSession, WebSessionDep
from aggregator.api.deps import SessionDep, SettingsDep
from aggregator.api.pages.account import (
    CsrfForm,
    _render,
    _require,
    _see_other,
    _signin_redirect,
)
from aggregator.api.pages.forms import TopicForm
from aggregator.api.pages.signin import safe_next
from aggregator.config import Settings
from aggregator.digest.topic_preview import TopicPreview, preview_topic

router = APIRouter(tags=["pages"])

SlugPath = Annotated[str, Path(max_length=100, description="the topic filter's slug")]

#: the blank form of a new filter (the new filter is followed by its author unless unticked)
_BLANK: dict[str, Any] = {**TopicForm().model_dump(exclude={"csrf_token", "action"}), "subscribe": True}


def _form_of(t: TopicInfo) -> dict[str, Any]:
    """The form's values of a stored filter."""
    f = t.filter
    return {
        "name": f.name,
        "slug": f.slug,
        "description": t.description,
        **{k: "\n".join(getattr(f, k)) for k in ("phrases", "categories", "authors", "sources", "negative")},
        "match": f.match,
        "shared": t.shared,
        "subscribe": False,
    }


def _topics_page(
    request: Request,
    ws: WebSession | None,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    editing: TopicInfo | None = None,
    preview: TopicPreview | None = None,
    error: str | None = None,
    saved: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The catalogue with the new-filter form, or (``editing``) the form of one filter."""
    rid = ws.reader_id if ws else None
    subscribed = set() if rid is None else {t.slug for t in subscriptions.list_subscriptions(session, rid)}
    topics = [] if editing else topic_filters.list_topics(session, rid)
    return _render(
        request,
        "topics.html",
        {
            "ws": ws,
            "topics": topics,
            "subscribed": subscribed,
            "form": form or dict(_BLANK),
            "form_open": bool(form or editing),
            "editing": editing,
            "preview": preview,
            "error": error,
            "saved": next((t for t in topics if t.slug == saved), None),
        },
        status_code,
    )


@router.get("/topics", response_class=HTMLResponse, name="topics_page")
def topics_page(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    saved: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """The catalogue of topic filters you may see, with subscribe/unsubscribe buttons and the
    form that makes a new one when signed in."""
    return _topics_page(request, ws, session, saved=saved)


def _submitted(
    request: Request,
    ws: WebSession,
    session: Session,
    settings: Settings,
    form: TopicForm,
    editing: TopicInfo | None,
) -> Response:
    """Preview or save a submitted form; a refusal shows the form again with its input. After a
    save the reader is rescored when they follow the filter (a new one: unless unticked)."""
    values = form.model_dump(exclude={"csrf_token", "action"})
    slug = editing.slug if editing else None
    try:
        if form.action == "preview":
            found = preview_topic(session, form.topic(slug), settings.tz)
            return _topics_page(request, ws, session, form=values, editing=editing, preview=found)
        if editing is None:
            saved = topic_filters.create_topic(
                session, ws.reader_id, form.topic(), form.description, shared=form.shared
            )
            if form.subscribe:
                subscriptions.subscribe(session, ws.reader_id, saved.slug)
        else:
            saved = topic_filters.update_topic(
                session, ws.reader_id, editing.slug, form.topic(slug), form.description, shared=form.shared
            )
    except (errors.ReaderError, errors.Conflict) as err:
        session.rollback()
        status = 409 if isinstance(err, errors.Conflict) else 422
        return _topics_page(
            request, ws, session, form=values, editing=editing, error=str(err), status_code=status
        )
    session.commit()
    followed = {t.slug for t in subscriptions.list_subscriptions(session, ws.reader_id)}
    if saved.slug in followed:
        rescoring.after_change(request.app.state, session, ws.reader_id)
    return _see_other(f"/topics?saved={saved.slug}#topic-{saved.slug}")


@router.post("/topics/new", response_class=HTMLResponse)
def new_topic_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    form: Annotated[TopicForm, Form()],
) -> Response:
    """Preview or save a new topic filter of yours (the slug, when left empty, is derived from
    the name)."""
    ws = _require(ws, form.csrf_token)
    return _submitted(request, ws, session, settings, form, None)


@router.get("/topics/{slug}/edit", response_class=HTMLResponse, name="edit_topic_page")
def edit_topic_page(request: Request, ws: WebSessionDep, session: SessionDep, slug: SlugPath) -> Response:
    """The form of one of your topic filters (404 for another reader's private filter, 403 for
    a built-in one or one another reader shared)."""
    if ws is None:
        return _signin_redirect(request)
    t = topic_filters.own_topic(session, ws.reader_id, slug)
    return _topics_page(request, ws, session, form=_form_of(t), editing=t)


@router.post("/topics/{slug}/edit", response_class=HTMLResponse)
def edit_topic_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    slug: SlugPath,
    form: Annotated[TopicForm, Form()],
) -> Response:
    """Preview or save the changes to one of your topic filters (the slug stays)."""
    ws = _require(ws, form.csrf_token)
    t = topic_filters.own_topic(session, ws.reader_id, slug)
    return _submitted(request, ws, session, settings, form, t)


@router.post("/topics/{slug}/delete")
def delete_topic_form(
    request: Request, ws: WebSessionDep, session: SessionDep, slug: SlugPath, csrf_token: CsrfForm = ""
) -> Response:
    """Delete one of your topic filters, and every subscription to it."""
    ws = _require(ws, csrf_token)
    topic_filters.delete_topic(session, ws.reader_id, slug)
    session.commit()
    rescoring.after_change(request.app.state, session, ws.reader_id)
    return _see_other("/topics")


@router.post("/topics/subscribe")
def subscribe_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    topic: Annotated[str, Form()],
    csrf_token: CsrfForm = "",
    next: Annotated[str, Form()] = "/topics",
) -> Response:
    """Follow a topic filter (404 for another reader's private filter)."""
    ws = _require(ws, csrf_token)
    subscriptions.subscribe(session, ws.reader_id, topic)
    session.commit()
    rescoring.after_change(request.app.state, session, ws.reader_id)
    return _see_other(safe_next(next, "/topics"))


@router.post("/topics/unsubscribe")
def unsubscribe_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    topic: Annotated[str, Form()],
    csrf_token: CsrfForm = "",
    next: Annotated[str, Form()] = "/topics",
) -> Response:
    """Stop following a topic filter."""
    ws = _require(ws, csrf_token)
    with contextlib.suppress(errors.NotFound):  # not subscribed: the page shows the state anyway
        subscriptions.unsubscribe(session, ws.reader_id, topic)
    session.commit()
    rescoring.after_change(request.app.state, session, ws.reader_id)
    return _see_other(safe_next(next, "/topics"))
