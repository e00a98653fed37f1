# The citybots app for production: webhook mode behind Caddy (see docker-compose.yml),
# PostgreSQL and Redis given by DATABASE_URL / REDIS_URL.
#
# The code is installed by root into site-packages and is read-only for the app, which
# runs as the user `citybots`; DATA_DIR=/data (a volume owned by that user) is the only
# place it writes. Leaflet (the panel's map library) comes from the npm registry and the
# hotline's classifier is trained here, at build time, so a start never trains it.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY citybots citybots
COPY bots bots
COPY flows flows
COPY presentation presentation
COPY services services
COPY admin admin
COPY geofence geofence
COPY nlu nlu
COPY scripts scripts
RUN python scripts/fetch_leaflet.py \
    && pip install . \
    && citybots nlu train --bundle \
    && cd / && rm -rf /src

RUN useradd --system --user-group --home-dir /data --shell /usr/sbin/nologin citybots \
    && install -d -o citybots -g citybots -m 0700 /data
USER citybots
WORKDIR /data
VOLUME /data
ENV DATA_DIR=/data ADMIN_HOST=0.0.0.0 ADMIN_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
CMD ["sh", "-c", "citybots db migrate && exec citybots run"]
