# syntax=docker/dockerfile:1
# Serialink: build the Cython wheel (and wheels of every dependency) in one stage, run it from a
# slim image as a non-root user in the other. CI builds the same wheel with the same command
# and starts the same entrypoint (tests/test_deployment.py), and lints this file with hadolint.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim-bookworm AS runtime
# The data directory (the VOLUME below) exists in the image and belongs to the runtime user:
# Docker seeds a new volume from it, so the resolver can write its store, keys and metrics.
RUN groupadd --system --gid 10001 serialink \
    && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /srv/serialink serialink \
    && install -d -o 10001 -g 10001 -m 0750 /srv/serialink/var
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/serialink-*.whl \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /srv/serialink
ENV SERIALINK_DATA_DIR=/srv/serialink/var \
    SERIALINK_HOST=0.0.0.0 \
    SERIALINK_PORT=8080 \
    PYTHONUNBUFFERED=1
VOLUME ["/srv/serialink/var"]
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u, sys; sys.exit(u.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["serialink"]
CMD ["serve"]
