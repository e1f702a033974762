"""The one clock of the package: timezone-aware UTC. Modules bind ``utcnow`` at import, so a
test can pin one module's clock with ``monkeypatch.setattr(module, "utcnow", ...)``."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now, in UTC (an aware datetime)."""
    return dt.datetime.now(dt.UTC)
