# The citybots app for production: webhook mode behind a load balancer, with
# PostgreSQL and Redis given by DATABASE_URL / REDIS_URL (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY citybots citybots
COPY bots bots
COPY flows flows
COPY services services
COPY admin admin
COPY geofence geofence
COPY nlu nlu
COPY scripts scripts
RUN python scripts/fetch_leaflet.py && pip install --no-cache-dir . && useradd --system citybots
USER citybots
ENV ADMIN_HOST=0.0.0.0 ADMIN_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz')"
CMD ["sh", "-c", "citybots db migrate && exec citybots run"]
