# aggregator: `aggregator run` (API + scheduler) on 0.0.0.0:8000.
# The server caps request headers (64 KiB, AGGREGATOR_HTTP_MAX_HEADER_BYTES), the time to send
# them (10 s, AGGREGATOR_HTTP_HEADER_TIMEOUT_SECONDS) and open connections (1000 per process,
# AGGREGATOR_HTTP_MAX_CONNECTIONS): see aggregator/api/server_limits.py and docs/security.md.
# SQLite on the /data volume by default; give AGGREGATOR_DATABASE_URL=postgresql://... for PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AGGREGATOR_HOST=0.0.0.0 \
    AGGREGATOR_PORT=8000 \
    AGGREGATOR_DATABASE_URL=sqlite:////data/aggregator.db \
    AGGREGATOR_FEEDS_FILE=/app/feeds.toml

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY aggregator ./aggregator
COPY migrations ./migrations
RUN pip install --no-cache-dir -c requirements.lock . && useradd --create-home --uid 1000 aggregator \
    && mkdir -p /data && chown aggregator /data
COPY feeds.toml ./feeds.toml

USER aggregator
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["aggregator", "run"]
