"""Logs and metrics.

Logs: plain text by default, one JSON object per line with ``AGGREGATOR_LOG_FORMAT=json``
(python-json-logger), at ``AGGREGATOR_LOG_LEVEL``.

Metrics (Prometheus, prometheus_client): served at ``GET /metrics`` by the API, and by
``aggregator worker`` on ``AGGREGATOR_METRICS_PORT`` (loopback) since its counters live in
the worker process. Names follow the Prometheus naming guide (base units: seconds, bytes).
"""

from __future__ import annotations

import logging
import sys

from prometheus_client import Counter, Gauge, Histogram

FETCHES = Counter(
    "aggregator_fetches_total",
    "Feed fetches by HTTP status ('error' when no answer) and outcome",
    ["status", "outcome"],
)
FETCH_ERRORS = Counter("aggregator_fetch_errors_total", "Failed feed fetches, by feed kind", ["kind"])
FETCH_LATENCY = Histogram(
    "aggregator_fetch_duration_seconds",
    "Wall time of one feed fetch, request to last byte",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120),
)
ITEMS_INGESTED = Counter("aggregator_items_ingested_total", "New items stored", ["kind"])
SCHEDULER_LAG = Gauge(
    "aggregator_scheduler_lag_seconds", "How late the last scheduled job started after its due time", ["job"]
)
EMAIL_SENDS = Counter("aggregator_email_sends_total", "Weekly email send attempts by result", ["result"])
PAPERS_ENRICHED = Counter(
    "aggregator_papers_enriched_total",
    "Papers asked for by id_list from the arXiv API after an RSS ingest, by result (answered, missing)",
    ["result"],
)
READER_STATE_READS = Counter(
    "aggregator_reader_state_reads_total",
    "Statements reading readers' digest state (GET /api/me/digest): one per lone request, one for"
    " several requests of the same window made at the same time (coalesced)",
)
READER_STATE_LOOKUPS = Counter(
    "aggregator_reader_state_lookups_total", "Readers' digest states read by those statements"
)
ENRICH_PENDING = Gauge("aggregator_enrich_pending", "Papers awaiting their arXiv comment after a pass")


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    """Configure the root logger once: ``fmt`` is "text" or "json"."""
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("httpx", "apscheduler", "alembic"):  # one line per request/tick is noise
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
