"""``GET /api/me/rescore``: whether the reader's scores are being recomputed. A profile save,
vote or subscription answers 202 when a worker had not finished within
``AGGREGATOR_RESCORE_WAIT_SECONDS`` s; a client polls this until ``pending`` is false, then reads the
digest (which would otherwise answer 202 with ``profile: "pending"``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from aggregator.api import rescoring
from aggregator.api.auth import ReaderDep
from aggregator.api.deps import AUTH_401, SessionDep

router = APIRouter()


class RescoreStatus(BaseModel):
    pending: bool


@router.get("/api/me/rescore", response_model=RescoreStatus, tags=["me"], responses=AUTH_401)
def rescore_status(reader: ReaderDep, request: Request, session: SessionDep) -> RescoreStatus:
    """``pending``: true while a rescore of yours is queued for the workers."""
    return RescoreStatus(pending=rescoring.pending(request.app.state, session, reader.id))
