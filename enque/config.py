"""Helpers the settings module uses to read its environment.

Kept apart from ``settings.py`` so they can be tested without reloading settings.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

LOG_LEVELS = {
    "debug": "DEBUG",
    "info": "INFO",
    "warn": "WARNING",
    "warning": "WARNING",
    "error": "ERROR",
}

# Every secret the deployment needs, with how a development machine generates one.
GENERATED_SECRETS = {
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
    "JWT_SECRET": lambda: secrets.token_urlsafe(50),
    # 32 random bytes, url-safe base64: an AES-256 key.
    "DATABASE_ENCRYPTION_KEY": lambda: secrets.token_urlsafe(32),
}


def log_level(value: str) -> str:
    try:
        return LOG_LEVELS[value.strip().lower()]
    except KeyError:
        raise ImproperlyConfigured(
            f"LOG_LEVEL={value!r} is not one of debug, info, warn, error."
        ) from None


def read_secrets_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip()
    return values


def development_secrets(path: Path) -> dict[str, str]:
    """Return the development secrets, generating (once) the ones that are missing.

    They live in an untracked file so that a restart keeps sessions, tokens and
    encrypted columns readable.
    """
    values = read_secrets_file(path)
    missing = [name for name in GENERATED_SECRETS if not values.get(name)]
    if missing:
        for name in missing:
            values[name] = GENERATED_SECRETS[name]()
        path.parent.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{key}={value}\n" for key, value in sorted(values.items()))
        path.write_text(
            "# Generated for local development by enque/config.py. Never commit.\n" + body
        )
        path.chmod(0o600)
    return values


def require_secret(name: str, value: str | None) -> str:
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. With DEBUG off every secret must come from the "
            f"environment: set {name}."
        )
    return value


# django-ratelimit's rate syntax: a count, "/", an optional multiplier and a unit
# (s, m, h, d): "100/m", "10/15m", "5000/h".
_RATE_RE = re.compile(r"^\d+/\d*[smhd]$")


def rate_limit(name: str, value: str) -> str:
    value = value.strip()
    if not _RATE_RE.match(value):
        raise ImproperlyConfigured(
            f"{name}={value!r} is not a rate such as 100/m, 10/15m or 5000/h."
        )
    return value


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL (for a CSP source), or "" for an empty one."""
    if not url:
        return ""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ImproperlyConfigured(f"{url!r} is not an absolute URL.")
    return f"{parts.scheme}://{parts.netloc}"
