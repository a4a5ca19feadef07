"""Version tokens in the shared cache, for caches that must never serve what a write changed.

Readers key what they cache by the current token of a scope (a workspace's rules, its ticket
panel lists); writers replace the token, once at once and once after their transaction
commits, so that no process keeps what a concurrent reader loaded mid-transaction. A cache
that is down yields no token (``None``): callers then read the database.
"""

from __future__ import annotations

import logging
import uuid

from django.core.cache import cache
from django.db import transaction
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)


def current_token(key: str) -> str | None:
    """The token under ``key``, made if there is none; ``None`` when the cache is down."""
    try:
        token = cache.get(key)
        if token is None:
            token = uuid.uuid4().hex
            if not cache.add(key, token, timeout=None):
                token = cache.get(key)
    except (RedisError, OSError):
        logger.warning("the cache is unreachable; %s is read from the database", key)
        return None
    return token


def replace_token(key: str) -> None:
    """Make everything cached under the old token stale, now and after the commit."""

    def replace() -> None:
        try:
            cache.set(key, uuid.uuid4().hex, timeout=None)
        except (RedisError, OSError):
            logger.warning("could not replace the cache token %s", key)

    replace()
    transaction.on_commit(replace)
