"""Security headers on every answer (issue 14, finding 12), as pure ASGI middleware.

* ``Content-Security-Policy``: the pages run only this origin's scripts (the keyboard's; no
  inline script) and load nothing from elsewhere:
  ``default-src 'none'``, styles from this origin and inline (the templates' ``<style>``
  blocks), images from this origin and ``data:`` only -- so no remote image (a tracking
  pixel) is ever loaded by a page -- forms post to this origin only, no framing
  (``frame-ancestors 'none'``), no ``<base>``. ``/docs`` and ``/redoc`` (Swagger UI and ReDoc,
  served from this package) also get this origin's and inline scripts.
* ``X-Content-Type-Options: nosniff``, ``Referrer-Policy: same-origin`` (links to papers and
  posts do not leak the page's address, which may hold a feed token), ``X-Frame-Options: DENY``.
* ``Strict-Transport-Security: max-age=31536000`` when the request came over HTTPS, directly
  or per a trusted proxy's ``X-Forwarded-Proto`` (:func:`aggregator.api.client_keys.forwarded_https`).
"""

from __future__ import annotations

from typing import Any

from aggregator.api.client_keys import IPNetwork, forwarded_https

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'"
)
DOCS_PREFIXES = ("/docs", "/redoc", "/static-offline-docs")
HSTS = b"max-age=31536000"


class SecurityHeaders:
    """Add the headers above to every HTTP answer that does not set them itself."""

    def __init__(self, app: Any, proxies: tuple[IPNetwork, ...] = ()) -> None:
        self.app, self.proxies = app, proxies
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
        ]
        self._page = [(b"content-security-policy", PAGE_CSP.encode()), *common]
        self._docs = [(b"content-security-policy", DOCS_CSP.encode()), *common]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self._docs if scope.get("path", "").startswith(DOCS_PREFIXES) else self._page
        if forwarded_https(scope, self.proxies):
            extra = [*extra, (b"strict-transport-security", HSTS)]

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in extra if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
