# memberbot: one `memberbot serve` process (HTTP API, health, metrics; chat webhooks as they land).
# Build: docker build -t memberbot .
# Run:   docker run -p 8080:8080 -v memberbot-data:/data memberbot
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md babel.cfg ./
COPY bot ./bot
COPY handlers ./handlers
COPY storage ./storage
COPY locales ./locales

# Compile the gettext catalogs first, so the .mo files ship inside the installed package
# (without them the bot still works, compiling each .po in memory at start-up).
RUN pip install "babel>=2.14,<3" \
    && pybabel compile -d locales -D messages \
    && pip install . \
    && cd / && rm -rf /src

# Unprivileged user; its home /data is the working directory, so the default SQLite file
# (./memberbot.db) and an optional ./memberbot.toml rules file live there.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /data memberbot
USER memberbot
WORKDIR /data
VOLUME ["/data"]

ENV MEMBERBOT_HTTP_HOST=0.0.0.0 \
    MEMBERBOT_HTTP_PORT=8080
EXPOSE 8080

# slim has no curl: ask /healthz (database and cache reachable) with Python itself.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('MEMBERBOT_HTTP_PORT', '8080'), timeout=4)"]

CMD ["memberbot", "serve"]
