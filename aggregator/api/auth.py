"""Who is asking: the bearer-token dependency of ``/api/me/*``, the signed session cookie of the
HTML pages, and CSRF tokens for their forms.

* API: ``Authorization: Bearer TOKEN`` (the API token of ``aggregator users add`` or
  ``POST /api/readers``). Missing or unknown → 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).
* Pages: ``/signin`` exchanges the API token for a session cookie signed with itsdangerous
  (HMAC-SHA1 over the payload with a key derived from the secret key, salt per purpose),
  valid ``SESSION_MAX_AGE`` seconds, ``HttpOnly``, ``SameSite=Lax``, ``Secure`` over HTTPS.
  The payload holds the reader id, a fingerprint of their token hash and a CSRF token.
* CSRF: every POST form carries ``csrf_token``, compared in constant time with the one in the
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

from aggregator.accounts import readers
from aggregator.api.client_keys import forwarded_https, parse_proxies
from aggregator.api.deps import SessionDep
from aggregator.store.secrets import load_or_create_secret
from aggregator.store.tables import Reader

SESSION_COOKIE = "aggregator_session"
CSRF_COOKIE = "aggregator_csrf"
#: Seconds a session cookie stays valid: 30 days.
SESSION_MAX_AGE = 30 * 24 * 3600

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


def _fingerprint(reader: Reader) -> str:
    return reader.token_hash[:16]


def web_session(request: Request, session: SessionDep) -> WebSession | None:
    """The session of the request's cookie, or None (no cookie, bad signature, expired, or the
    reader is gone)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    try:
        data: Any = _serializer(request, "session").loads(cookie, max_age=SESSION_MAX_AGE)
        reader_id, fingerprint, csrf = int(data["r"]), str(data["f"]), str(data["c"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    reader = session.get(Reader, reader_id)
    if reader is None or not secrets.compare_digest(_fingerprint(reader), fingerprint):
        return None
    return WebSession(reader.id, reader.email, csrf)


WebSessionDep = Annotated[WebSession | None, Depends(web_session)]


def _secure(request: Request) -> bool:
    """HTTPS directly, or per a trusted proxy (``AGGREGATOR_TRUSTED_PROXIES``)."""
    proxies = parse_proxies(request.app.state.settings.trusted_proxies)
    return forwarded_https(request.scope, proxies)


def start_session(request: Request, response: Response, reader: Reader) -> None:
    """Sign ``reader`` in: set the session cookie (with a fresh CSRF token) on ``response``."""
    payload = {"r": reader.id, "f": _fingerprint(reader), "c": secrets.token_urlsafe(32)}
    response.set_cookie(
        SESSION_COOKIE,
        _serializer(request, "session").dumps(payload),
        max_age=SESSION_MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )
    response.delete_cookie(CSRF_COOKIE, path="/")


def end_session(response: Response) -> None:
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
