"""Item routes: "more like this" (``/api/items/{id}/similar``) and the OPML export of the
operator's feeds (``/api/feeds.opml``)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response
from sqlalchemy.orm import Session

from aggregator.api import rescoring
from aggregator.api.deps import BAD_422, SessionDep
from aggregator.api.me_schemas import (
    SimilarItem,
    SimilarResponse,
)
from aggregator.api.routes.digest import ItemId
from aggregator.digest import cards
from aggregator.feeds import opml
from aggregator.ranking import similar
from aggregator.store.tables import Item

router = APIRouter()


def _neighbours(state: Any, session: Session, item_id: int) -> similar.Stored | None:
    """The stored neighbours of ``item_id`` if they come from the newest model; else computed
    here (a scoring process) or asked of the workers: then stale ones are served meanwhile, and
    when there are none the request waits up to ``rescore_wait`` s for a worker."""
    current = similar.current_model_id(session)
    if current is None:
        return similar.Stored(None, [], False)
    found = similar.stored(session, item_id)
    if found is not None and found.model_id == current:
        return found
    if state.settings.score_in_api:
        from aggregator.ranking import tfidf as rank

        model = rank.load_model(session)
        assert model is not None
        neighbours = similar.compute(session, model, item_id)
        similar.save(session, item_id, model.model_id, neighbours)
        session.commit()
        return similar.Stored(model.model_id, neighbours, False)
    if found is None or not found.requested:
        similar.request(session, item_id)
        session.commit()
    if found is not None and found.model_id is not None:
        return found  # from an older model: served while a worker refreshes it
    looked = [found]

    def computed() -> bool:
        looked[0] = similar.stored(session, item_id)
        return looked[0] is not None and looked[0].model_id is not None

    rescoring.wait_until(session, computed, state.settings.rescore_wait_seconds)
    return looked[0]


@router.get(
    "/api/items/{item_id}/similar",
    response_model=SimilarResponse,
    tags=["items"],
    responses={
        404: {"description": "no such item"},
        503: {"description": "being computed by a worker; see the Retry-After header (seconds)"},
        **BAD_422,
    },
)
def similar_items(
    item_id: ItemId,
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=similar.NEIGHBOURS)] = 10,
) -> SimilarResponse:
    """More like this: the items whose TF-IDF vectors are closest (cosine similarity) to this
    one's among the last 30 days' items (the ranking's window), with the terms that make them
    close. Empty until a ranking model is fitted. Computed once per item and model, by this
    process or by a worker; a 503 with ``Retry-After`` means a worker is still at it.
    \f
    The computation: :mod:`aggregator.ranking.similar`."""
    if session.get(Item, item_id) is None:
        raise HTTPException(status_code=404, detail=f"no item with id {item_id}")
    found = _neighbours(request.app.state, session, item_id)
    if found is None or found.model_id is None and found.requested:
        raise HTTPException(
            status_code=503,
            detail="the similar items are being computed; try again in a moment",
            headers={"Retry-After": "2"},
        )
    chosen = found.neighbours[:limit]
    ids = [n.item_id for n in chosen]
    stored = dict(session.execute(sa.select(Item.id, Item.card).where(Item.id.in_(ids))).all())
    built = cards.build_cards(session, [i for i in ids if stored.get(i) is None])
    out = []
    for n in chosen:
        card = stored.get(n.item_id) or built.get(n.item_id)
        if card is not None:  # the item was deleted meanwhile otherwise
            out.append(SimilarItem(**json.loads(card), score=n.score, why=n.why))  # type: ignore[arg-type]
    return SimilarResponse(item_id=item_id, items=out)


@router.get(
    "/api/feeds.opml",
    tags=["feeds"],
    response_class=Response,
    responses={
        200: {
            "description": "OPML 2.0 of the followed feeds",
            "content": {"text/x-opml": {"schema": {"type": "string"}}},
        }
    },
)
def feeds_opml(session: SessionDep) -> Response:
    """Every scheduled, enabled feed of the operator as OPML 2.0, for import into a feed
    reader (feeds readers added are left out: their URLs are private)."""
    body = opml.feeds_opml(session, dt.datetime.now(dt.UTC))
    return Response(
        body,
        media_type="text/x-opml; charset=utf-8",
        headers={"Content-Disposition": 'inline; filename="feeds.opml"'},
    )
