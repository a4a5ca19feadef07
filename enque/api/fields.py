"""Serializer fields every ``/v1`` input shares."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

# The largest id or ticket number a client may send: exact in JSON (2**53) and inside every
# integer column ids are looked up in, so an absurd number is a 400 naming the field rather
# than a database overflow (a 500 on SQLite).
MAX_ID = 2**53


def id_field(**kwargs: Any) -> serializers.IntegerField:
    """An object's id (or a ticket's number) in a request: a positive integer up to MAX_ID."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)
