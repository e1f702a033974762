"""The pages' static files (``aggregator/static``: style.css, keys.js), served at ``/static``."""

from __future__ import annotations

from pathlib import Path

from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

__all__ = ["STATIC_DIR", "StaticFiles"]
