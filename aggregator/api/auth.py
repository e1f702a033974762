"""Who is asking: the bearer-token dependency of ``/api/me/*``, the session cookie of the HTML
pages, and CSRF tokens for their forms.

* API: ``Authorization: Bearer TOKEN`` (the API token of ``aggregator users add`` or
  ``POST /api/readers``, reissued on the profile page or by ``aggregator users token``).
  Missing or unknown → 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).
* Pages: a sign-in link mailed by ``/signin`` (:mod:`aggregator.api.pages.signin`) starts a
  server-side session (:mod:`aggregator.accounts.web_sessions`, table ``web_sessions``). The
  cookie holds the random session id signed with itsdangerous (HMAC over the payload with a
  key derived from the secret key, salt ``session``), valid ``SESSION_MAX_AGE`` seconds,
  ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS. The cookie is worth something only
  while its row exists: signing out deletes the row, so a copy of the cookie replayed later
  is no session; "sign out everywhere" deletes all of the reader's rows.
* CSRF: every POST form carries ``csrf_token``, compared in constant time with the one of the
  session (or, before sign-in, in a separate signed ``aggregator_csrf`` cookie: the
  double-submit pattern of the OWASP CSRF Prevention Cheat Sheet). A mismatch is a 403.
* The secret key is ``AGGREGATOR_SECRET_KEY``; when unset, a random one is made once and kept
  in the ``app_secrets`` table, so restarts keep sessions and every instance agrees.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from aggregator.accounts import readers, web_sessions
from aggregator.api.client_keys import forwarded_https, parse_proxies
from aggregator.api.deps import SessionDep
from aggregator.store.secrets import load_or_create_secret

SESSION_COOKIE = "aggregator_session"
CSRF_COOKIE = "aggregator_csrf"
#: Seconds a session cookie stays valid: 30 days (the session's row ends at the same age).
SESSION_MAX_AGE = web_sessions.SESSION_MAX_AGE

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The API token printed once by `aggregator users add` or returned by POST /api/readers.",
)


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    """A 401 carrying the ``WWW-Authenticate: Bearer`` challenge of RFC 6750."""
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": challenge})


@dataclass(frozen=True, slots=True)
class CurrentReader:
    id: int
    email: str


def current_reader(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> CurrentReader:
    """The reader of the bearer token. Raises a 401 (with ``WWW-Authenticate: Bearer``) when the
    header is missing, not a Bearer one, or the token is unknown."""
    if credentials is None:
        raise unauthorized("missing API token: send the header 'Authorization: Bearer TOKEN'")
    reader = readers.reader_for_token(session, credentials.credentials)
    found = None if reader is None else CurrentReader(reader.id, reader.email)
    # Give the connection back before the endpoint runs: dependencies and the endpoint run in
    # different worker threads, and a connection held across that hop deadlocks the process
    # once every thread waits for a connection (all held by requests waiting for a thread).
    session.rollback()
    if found is None:
        raise unauthorized("invalid API token", error="invalid_token")
    return found


def optional_reader(
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> CurrentReader | None:
    """The reader of the bearer token when one is sent; a wrong token is still a 401."""
    if credentials is None:
        return None
    return current_reader(session, credentials)


#: The bearer credentials alone (an async dependency: no worker-thread hop), for routes that
#: look the token up themselves.
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
ReaderDep = Annotated[CurrentReader, Depends(current_reader)]
OptionalReaderDep = Annotated[CurrentReader | None, Depends(optional_reader)]


# --- the secret key --------------------------------------------------------------------------------


def secret_key(request: Request) -> str:
    """The signing key of this app: ``settings.secret_key`` or the stored one (cached)."""
    state = request.app.state
    key: str | None = getattr(state, "secret_key", None)
    if key is None:
        configured = state.settings.secret_key
        if configured is not None and configured.get_secret_value():
            key = configured.get_secret_value()
        else:
            with state.sessionmaker() as session:
                key = load_or_create_secret(session)
        state.secret_key = key
    return key


def _serializer(request: Request, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key(request), salt=salt)


# --- sessions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in reader of the HTML pages and the CSRF token of their forms."""

    reader_id: int
    email: str
    csrf: str


def session_id(request: Request) -> str | None:
    """The session id in the request's cookie when its signature is valid and not older than
    ``SESSION_MAX_AGE``; None otherwise. Says nothing about whether the session still exists."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie or len(cookie) > 512:
        return None
    try:
        data: Any = _serializer(request, "session").loads(cookie, max_age=SESSION_MAX_AGE)
    except BadSignature:
        return None
    return data if isinstance(data, str) else None


def web_session(request: Request, session: SessionDep) -> WebSession | None:
    """The session of the request's cookie, or None (no cookie, bad signature, expired, signed
    out, or the reader is gone)."""
    sid = session_id(request)
    if sid is None:
        return None
    found = web_sessions.lookup(session, sid)
    return None if found is None else WebSession(found.reader_id, found.email, found.csrf)


WebSessionDep = Annotated[WebSession | None, Depends(web_session)]


def _secure(request: Request) -> bool:
    """HTTPS directly, or per a trusted proxy (``AGGREGATOR_TRUSTED_PROXIES``)."""
    proxies = parse_proxies(request.app.state.settings.trusted_proxies)
    return forwarded_https(request.scope, proxies)


def start_session(request: Request, response: Response, session: Session, reader_id: int) -> None:
    """Sign ``reader_id`` in: a new ``web_sessions`` row (with a fresh CSRF token) and its
    cookie on ``response``. The caller commits ``session``."""
    sid, _ = web_sessions.start(session, reader_id)
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(request, "session").dumps(sid),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(CSRF_COOKIE, path="/")


def end_session(request: Request, response: Response, session: Session) -> None:
    """Sign out: delete the session's row (the cookie is worthless from the commit on) and the
    cookie. The caller commits ``session``."""
    sid = session_id(request)
    if sid is not None:
        web_sessions.end(session, sid)
    response.delete_cookie(SESSION_COOKIE, path="/")


def anonymous_csrf(request: Request) -> tuple[str, str | None]:
    """The CSRF token of a signed-out visitor: ``(token, cookie to set or None)``. The token is
    the signed ``aggregator_csrf`` cookie's when valid, else a new one."""
    serializer = _serializer(request, "csrf")
    cookie = request.cookies.get(CSRF_COOKIE)
    if cookie:
        try:
            return str(serializer.loads(cookie, max_age=SESSION_MAX_AGE)), None
        except BadSignature:
            pass
    token = secrets.token_urlsafe(32)
    return token, serializer.dumps(token)


def set_csrf_cookie(request: Request, response: Response, signed: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        signed,
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


def check_csrf(expected: str | None, given: str | None) -> None:
    """Raise a 403 unless ``given`` equals ``expected`` (constant-time comparison)."""
    if not expected or not given or not secrets.compare_digest(expected.encode(), given.encode()):
        raise HTTPException(
            status_code=403, detail="CSRF check failed: reload the page and submit the form again"
        )


def check_anonymous_csrf(request: Request, given: str | None) -> None:
    """CSRF check of a form posted before sign-in (against the ``aggregator_csrf`` cookie)."""
    cookie = request.cookies.get(CSRF_COOKIE)
    expected = None
    if cookie:
        try:
            expected = str(_serializer(request, "csrf").loads(cookie, max_age=SESSION_MAX_AGE))
        except BadSignature:
            expected = None
    check_csrf(expected, given)
