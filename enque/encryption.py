"""Encryption at rest: AES-256-GCM with a key id, so keys can rotate.

A value is stored as a self-describing token::

    enc:v1:<key_id>:<url-safe base64 of nonce (12 bytes) + ciphertext + GCM tag (16 bytes)>

The key id says which key sealed the value, so a retired key stays usable for reading
(``DATABASE_ENCRYPTION_OLD_KEYS``) while ``rotate_encryption_keys`` re-encrypts everything
under the current one. The caller's ``context`` (for a model field,
``"<app_label>.<ModelName>.<field>"``) is the GCM associated data: it is not stored, but a
token copied into another column, row type or purpose fails authentication there.

``EncryptedTextField`` (bottom of this module) is the model-field adapter over
``encrypt``/``decrypt``. It lives here so there is one import path for code and for
migrations (``enque.encryption.EncryptedTextField``); moving it later would rewrite every
migration that mentions it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core import checks
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.models.lookups import Exact, IsNull
from django.dispatch import receiver

__all__ = [
    "TOKEN_PREFIX",
    "DecryptionError",
    "EncryptedTextField",
    "current_key_id",
    "decrypt",
    "encrypt",
    "is_encrypted",
    "needs_rotation",
    "token_key_id",
]

TOKEN_VERSION = "v1"  # noqa: S105 -- a format tag, not a password
TOKEN_PREFIX = f"enc:{TOKEN_VERSION}:"
KEY_SETTINGS = (
    "DATABASE_ENCRYPTION_KEY",
    "DATABASE_ENCRYPTION_KEY_ID",
    "DATABASE_ENCRYPTION_OLD_KEYS",
)

_NONCE_SIZE = 12  # 96 bits: the size GCM is specified for; anything else gets hashed.
_TAG_SIZE = 16
_KEY_SIZE = 32  # AES-256
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,16}")
_HEX_KEY_RE = re.compile(r"[0-9a-fA-F]{64}")
# Shape only; authenticity is GCM's job. Key ids cannot contain ":", so the split is exact.
# The payload is at least a nonce and a tag (28 bytes, 38 base64 characters).
_TOKEN_RE = re.compile(r"enc:v1:([A-Za-z0-9_-]{1,16}):([A-Za-z0-9_-]{38,}={0,2})")


class DecryptionError(Exception):
    """A value could not be decrypted. Never carries the plaintext or the key.

    ``code`` is one of ``malformed_token``, ``unknown_key_id``, ``authentication_failed``
    (tampered, wrong context, or a different key under a reused id).
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class _Keyring:
    current_id: str
    ciphers: dict[str, AESGCM]


_keyring: _Keyring | None = None
_keyring_lock = threading.Lock()


@receiver(setting_changed)
def _reset_keyring(*, setting: str, **kwargs: Any) -> None:
    # override_settings / pytest-django's `settings` fixture swap keys in tests.
    global _keyring
    if setting in KEY_SETTINGS:
        _keyring = None


def _decode_key(value: str, variable: str) -> bytes:
    """Decode one key string. Errors name ``variable`` and never echo the value."""
    value = value.strip()
    if not value:
        raise ImproperlyConfigured(f"{variable} is empty; it must hold a 32-byte AES key.")
    raw: bytes | None = None
    if _HEX_KEY_RE.fullmatch(value):
        raw = bytes.fromhex(value)
    else:
        # url-safe (what secrets.token_urlsafe(32) makes, unpadded) or standard base64:
        # fold both alphabets into one and restore the padding before a strict decode.
        folded = value.replace("-", "+").replace("_", "/").rstrip("=")
        try:
            raw = base64.b64decode(folded + "=" * (-len(folded) % 4), validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != _KEY_SIZE:
        # `from None`: the decoder's own error must not be chained onto ours in tracebacks.
        raise ImproperlyConfigured(
            f"{variable} is not a valid AES-256 key: it must be 32 random bytes as url-safe "
            "base64 (python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
            "standard base64, or 64 hex characters."
        ) from None
    return raw


def _check_key_id(key_id: str, variable: str) -> str:
    key_id = key_id.strip()
    if not _KEY_ID_RE.fullmatch(key_id):
        raise ImproperlyConfigured(
            f"{variable} has an invalid key id: use 1 to 16 characters of A-Z, a-z, 0-9, "
            "'_' or '-'."
        )
    return key_id


def _load_keyring() -> _Keyring:
    current_id = _check_key_id(
        getattr(settings, "DATABASE_ENCRYPTION_KEY_ID", "") or "",
        "DATABASE_ENCRYPTION_KEY_ID",
    )
    current = _decode_key(
        getattr(settings, "DATABASE_ENCRYPTION_KEY", "") or "",
        "DATABASE_ENCRYPTION_KEY",
    )
    keys = {current_id: current}
    old = getattr(settings, "DATABASE_ENCRYPTION_OLD_KEYS", "") or ""
    for position, entry in enumerate(old.split(","), start=1):
        if not entry.strip():
            continue  # tolerate "a:…," and an empty variable
        variable = f"DATABASE_ENCRYPTION_OLD_KEYS (entry {position})"
        key_id, sep, key = entry.partition(":")
        if not sep:
            raise ImproperlyConfigured(f"{variable} is not of the form id:key.")
        key_id = _check_key_id(key_id, variable)
        raw = _decode_key(key, variable)
        if key_id in keys and keys[key_id] != raw:
            # Two keys under one id would make every token of that id ambiguous.
            raise ImproperlyConfigured(f"{variable} reuses key id {key_id!r} with a different key.")
        keys[key_id] = raw
    return _Keyring(current_id, {kid: AESGCM(raw) for kid, raw in keys.items()})


def _get_keyring() -> _Keyring:
    global _keyring
    keyring = _keyring
    if keyring is None:
        with _keyring_lock:
            if _keyring is None:
                _keyring = _load_keyring()
            keyring = _keyring
    return keyring


def current_key_id() -> str:
    return _get_keyring().current_id


def encrypt(plaintext: str, *, context: str = "") -> str:
    """Seal ``plaintext`` under the current key; ``context`` must match on decryption."""
    if not isinstance(plaintext, str):
        raise TypeError(f"encrypt() takes str, not {type(plaintext).__name__}")
    keyring = _get_keyring()
    # A fresh random nonce each time: GCM's security rests on never reusing a nonce under
    # one key, and 2**-32 collision odds hold up to ~2**32 values per key (NIST SP 800-38D).
    nonce = os.urandom(_NONCE_SIZE)
    sealed = keyring.ciphers[keyring.current_id].encrypt(
        nonce, plaintext.encode("utf-8"), context.encode("utf-8")
    )
    payload = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return f"{TOKEN_PREFIX}{keyring.current_id}:{payload}"


def _parse(token: str) -> tuple[str, bytes]:
    match = _TOKEN_RE.fullmatch(token) if isinstance(token, str) else None
    if match is None:
        raise DecryptionError("malformed_token", "The value is not an Enque encryption token.")
    key_id, payload = match.groups()
    try:
        blob = base64.urlsafe_b64decode(payload)
    except (binascii.Error, ValueError):
        raise DecryptionError("malformed_token", "The token's payload is not base64.") from None
    if len(blob) < _NONCE_SIZE + _TAG_SIZE:
        raise DecryptionError("malformed_token", "The token's payload is truncated.")
    return key_id, blob


def decrypt(token: str, *, context: str = "") -> str:
    """Open a token from ``encrypt``; raise ``DecryptionError``, never return garbage."""
    key_id, blob = _parse(token)
    cipher = _get_keyring().ciphers.get(key_id)
    if cipher is None:
        raise DecryptionError(
            "unknown_key_id",
            f"The value was encrypted with key id {key_id!r}, which is neither "
            "DATABASE_ENCRYPTION_KEY_ID nor in DATABASE_ENCRYPTION_OLD_KEYS.",
        )
    try:
        plaintext = cipher.decrypt(blob[:_NONCE_SIZE], blob[_NONCE_SIZE:], context.encode("utf-8"))
    except InvalidTag:
        raise DecryptionError(
            "authentication_failed",
            f"The value (key id {key_id!r}) failed authentication: it was altered, belongs "
            "to another context, or its key id names a different key.",
        ) from None
    return plaintext.decode("utf-8")


def is_encrypted(value: object) -> bool:
    """Whether ``value`` has the shape of a token (authenticity is checked by ``decrypt``)."""
    return isinstance(value, str) and _TOKEN_RE.fullmatch(value) is not None


def token_key_id(token: str) -> str:
    """The key id a token names; ``DecryptionError`` if it is not a token."""
    return _parse(token)[0]


def needs_rotation(token: str) -> bool:
    """Whether the token was sealed under a key other than the current one."""
    return token_key_id(token) != current_key_id()


@checks.register(checks.Tags.security)
def check_encryption_keys(**kwargs: Any) -> list[checks.CheckMessage]:
    # Surface a bad key at start-up (`manage.py check`, runserver, migrate) rather than on
    # the first mailbox sync that needs a password.
    try:
        _load_keyring()
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="enque.E001")]
    return []


class _EmptyOnlyExact(Exact):
    """``field=""`` works ("no password set"); any other value cannot match.

    Every encryption uses a fresh nonce, so the same plaintext never produces the same
    column value twice: an equality test against a plaintext (or another column) would
    silently match nothing. Refuse it loudly instead.
    """

    def get_prep_lookup(self) -> Any:
        if hasattr(self.rhs, "resolve_expression") or self.rhs != "":
            raise FieldError(
                f"{self.lhs.output_field.encryption_context} is encrypted: it can be "
                "filtered only with isnull or an exact empty string, not by value."
            )
        return super().get_prep_lookup()


class EncryptedTextField(models.TextField):
    """Text stored as an AES-256-GCM token (``enque.encryption``), plaintext in Python.

    The GCM associated data is ``"<app_label>.<ModelName>.<field name>"``, so a token
    copied into another column does not decrypt. Renaming the model, its app or the field
    therefore changes the context: pass ``context="<the old one>"`` when renaming, so
    stored values stay readable. ``""`` and ``None`` are stored as they are, so "no
    password set" stays visible and filterable.
    """

    description = "Text encrypted at rest (AES-256-GCM)"

    def __init__(self, *args: Any, context: str | None = None, **kwargs: Any) -> None:
        self._explicit_context = context
        self._context: str | None = context
        super().__init__(*args, **kwargs)

    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:
        super().contribute_to_class(cls, name, **kwargs)
        # Called again on each concrete subclass of an abstract model (with a copy of the
        # field) and on migration-state models, so every table gets its own context.
        if self._explicit_context is None:
            self._context = f"{cls._meta.app_label}.{cls._meta.object_name}.{self.name}"

    @property
    def encryption_context(self) -> str:
        if self._context is None:
            raise ImproperlyConfigured(
                "EncryptedTextField has no context until it is added to a model."
            )
        return self._context

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        # Only an explicit context belongs in migrations; the derived one follows the model.
        if self._explicit_context is not None:
            kwargs["context"] = self._explicit_context
        return name, path, args, kwargs

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value, context=self.encryption_context)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        # DecryptionError propagates: a wrong key or altered column must not turn into a
        # silently wrong password or token.
        return decrypt(value, context=self.encryption_context)

    def get_lookup(self, lookup_name: str) -> type[models.Lookup] | None:
        # Ciphertext supports no ordering, matching or transforms; unsupported names make
        # the ORM raise "Unsupported lookup '<name>' for EncryptedTextField".
        if lookup_name == "exact":
            return _EmptyOnlyExact
        if lookup_name == "isnull":
            return IsNull
        return None

    def get_transform(self, lookup_name: str) -> type[models.Transform] | None:
        return None

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if self.primary_key or self.unique or self.db_index:
            # Random nonces make equal plaintexts differ: an index or uniqueness on the
            # ciphertext is useless and suggests a guarantee that does not hold.
            errors.append(
                checks.Error(
                    "EncryptedTextField cannot be a primary key, unique or indexed.",
                    obj=self,
                    id="enque.E002",
                )
            )
        return errors
