"""Encryption at rest: the AES-GCM tokens, the model field, and key rotation."""

from __future__ import annotations

import base64
import secrets
from io import StringIO

import pytest
from django.core.exceptions import FieldError, ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.models import F

from enque import encryption
from enque.encryption import (
    DecryptionError,
    EncryptedTextField,
    decrypt,
    encrypt,
    is_encrypted,
    needs_rotation,
    token_key_id,
)
from integrations.models import (
    MailboxConnection,
    MailboxProvider,
    MicrosoftIntegration,
    MicrosoftToken,
)

KEY_A = secrets.token_urlsafe(32)
KEY_B = secrets.token_urlsafe(32)
CONTEXT = "integrations.MailboxConnection.imap_password"


@pytest.fixture(autouse=True)
def key_a(settings):
    # pytest-django's `settings` sends setting_changed, which drops the cached keyring.
    settings.DATABASE_ENCRYPTION_KEY = KEY_A
    settings.DATABASE_ENCRYPTION_KEY_ID = "a"
    settings.DATABASE_ENCRYPTION_OLD_KEYS = ""
    return settings


def rotate_to_b(settings, *, keep_a: bool = True) -> None:
    settings.DATABASE_ENCRYPTION_KEY = KEY_B
    settings.DATABASE_ENCRYPTION_KEY_ID = "b"
    settings.DATABASE_ENCRYPTION_OLD_KEYS = f"a:{KEY_A}" if keep_a else ""


def payload(token: str) -> bytes:
    return base64.urlsafe_b64decode(token.split(":", 3)[3])


def with_payload(token: str, blob: bytes) -> str:
    head = token.rsplit(":", 1)[0]
    return f"{head}:{base64.urlsafe_b64encode(blob).decode()}"


# --- Tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "plaintext",
    [
        "hunter2",
        "",
        "pässwörd 🔑 密码 \x00 with a NUL",
        "x" * 200_000,  # an MSAL token cache can be tens of kilobytes
    ],
    ids=["ascii", "empty", "unicode", "long"],
)
def test_round_trip(plaintext):
    token = encrypt(plaintext, context=CONTEXT)

    assert decrypt(token, context=CONTEXT) == plaintext
    assert is_encrypted(token)
    assert plaintext == "" or plaintext not in token


def test_token_format():
    token = encrypt("hunter2", context=CONTEXT)

    prefix, version, key_id, _ = token.split(":", 3)
    assert (prefix, version, key_id) == ("enc", "v1", "a")
    # 12-byte nonce + ciphertext (as long as the plaintext) + 16-byte tag.
    assert len(payload(token)) == 12 + len(b"hunter2") + 16
    assert token_key_id(token) == "a"


def test_every_encryption_uses_a_fresh_nonce():
    tokens = [encrypt("same", context=CONTEXT) for _ in range(50)]

    assert len(set(tokens)) == 50
    assert len({payload(t)[:12] for t in tokens}) == 50


@pytest.mark.parametrize("position", [0, 11, 12, -17, -1], ids=lambda p: f"byte{p}")
def test_tampered_token_is_refused(position):
    token = encrypt("hunter2", context=CONTEXT)
    blob = bytearray(payload(token))
    blob[position] ^= 0x01  # nonce, first ciphertext byte, tag

    with pytest.raises(DecryptionError) as excinfo:
        decrypt(with_payload(token, bytes(blob)), context=CONTEXT)

    assert excinfo.value.code == "authentication_failed"


@pytest.mark.parametrize(
    "value",
    ["hunter2", "enc:v1:a:", "enc:v1:a:AAAA", "enc:v2:a:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", ""],
)
def test_malformed_token_is_refused(value):
    with pytest.raises(DecryptionError) as excinfo:
        decrypt(value, context=CONTEXT)

    assert excinfo.value.code == "malformed_token"
    assert not is_encrypted(value)


def test_wrong_context_is_refused():
    token = encrypt("hunter2", context=CONTEXT)

    with pytest.raises(DecryptionError) as excinfo:
        decrypt(token, context="integrations.MailboxConnection.smtp_password")

    assert excinfo.value.code == "authentication_failed"
    assert "hunter2" not in str(excinfo.value)


def test_unknown_key_id_is_refused():
    token = encrypt("hunter2", context=CONTEXT).replace("enc:v1:a:", "enc:v1:zz:")

    with pytest.raises(DecryptionError) as excinfo:
        decrypt(token, context=CONTEXT)

    assert excinfo.value.code == "unknown_key_id"
    assert "'zz'" in str(excinfo.value)


def test_key_id_relabelled_to_another_known_key_is_refused(settings):
    rotate_to_b(settings)
    token = encrypt("hunter2", context=CONTEXT).replace("enc:v1:b:", "enc:v1:a:")

    with pytest.raises(DecryptionError) as excinfo:
        decrypt(token, context=CONTEXT)

    assert excinfo.value.code == "authentication_failed"


# --- Key configuration -----------------------------------------------------------------


def test_key_encodings_are_interchangeable(settings):
    raw = secrets.token_bytes(32)
    encodings = [
        base64.urlsafe_b64encode(raw).decode().rstrip("="),  # secrets.token_urlsafe(32)
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(raw).decode(),
        raw.hex(),
        raw.hex().upper(),
    ]
    settings.DATABASE_ENCRYPTION_KEY = encodings[0]
    token = encrypt("hunter2", context=CONTEXT)

    for encoded in encodings[1:]:
        settings.DATABASE_ENCRYPTION_KEY = encoded
        assert decrypt(token, context=CONTEXT) == "hunter2"


SECRET_MARK = "SeKr1tVaLuE"


@pytest.mark.parametrize(
    ("setting", "value", "named"),
    [
        ("DATABASE_ENCRYPTION_KEY", "", "DATABASE_ENCRYPTION_KEY"),
        ("DATABASE_ENCRYPTION_KEY", SECRET_MARK, "DATABASE_ENCRYPTION_KEY"),
        ("DATABASE_ENCRYPTION_KEY", SECRET_MARK + "!*" + "A" * 40, "DATABASE_ENCRYPTION_KEY"),
        (
            "DATABASE_ENCRYPTION_KEY",
            base64.urlsafe_b64encode(SECRET_MARK.encode() * 3)[:42].decode(),  # 31 bytes
            "DATABASE_ENCRYPTION_KEY",
        ),
        (
            "DATABASE_ENCRYPTION_KEY",
            base64.b64encode(SECRET_MARK.encode() * 3).decode(),  # 33 bytes
            "DATABASE_ENCRYPTION_KEY",
        ),
        ("DATABASE_ENCRYPTION_KEY_ID", "has space", "DATABASE_ENCRYPTION_KEY_ID"),
        ("DATABASE_ENCRYPTION_KEY_ID", "k" * 17, "DATABASE_ENCRYPTION_KEY_ID"),
        ("DATABASE_ENCRYPTION_OLD_KEYS", SECRET_MARK, "DATABASE_ENCRYPTION_OLD_KEYS"),
        ("DATABASE_ENCRYPTION_OLD_KEYS", f"old:{SECRET_MARK}", "DATABASE_ENCRYPTION_OLD_KEYS"),
        ("DATABASE_ENCRYPTION_OLD_KEYS", f"a:{KEY_B}", "DATABASE_ENCRYPTION_OLD_KEYS"),
        ("DATABASE_ENCRYPTION_OLD_KEYS", f"bad id:{KEY_B}", "DATABASE_ENCRYPTION_OLD_KEYS"),
    ],
)
def test_bad_key_configuration_names_the_variable_not_the_value(settings, setting, value, named):
    setattr(settings, setting, value)

    with pytest.raises(ImproperlyConfigured) as excinfo:
        encrypt("hunter2")

    message = str(excinfo.value)
    assert named in message
    for secret in (SECRET_MARK, KEY_A, KEY_B):
        assert secret not in message
    if value:
        assert value not in message
    # Nothing chained that a traceback would print either.
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ or excinfo.value.__context__ is None
    # The same problem shows up in `manage.py check`.
    [error] = encryption.check_encryption_keys()
    assert error.id == "enque.E001"
    assert named in error.msg


def test_old_keys_tolerate_blanks_and_repeat_the_current_key(settings):
    rotate_to_b(settings)
    token = encrypt("hunter2", context=CONTEXT)
    settings.DATABASE_ENCRYPTION_OLD_KEYS = f" a:{KEY_A} , ,b:{KEY_B},"

    assert decrypt(token, context=CONTEXT) == "hunter2"
    assert encryption.check_encryption_keys() == []


def test_rotation_keeps_old_tokens_readable(settings):
    old = encrypt("hunter2", context=CONTEXT)
    assert not needs_rotation(old)

    rotate_to_b(settings)

    assert decrypt(old, context=CONTEXT) == "hunter2"
    assert needs_rotation(old)
    new = encrypt("hunter2", context=CONTEXT)
    assert token_key_id(new) == "b"
    assert not needs_rotation(new)

    rotate_to_b(settings, keep_a=False)
    with pytest.raises(DecryptionError) as excinfo:
        decrypt(old, context=CONTEXT)
    assert excinfo.value.code == "unknown_key_id"


# --- The model field -------------------------------------------------------------------


def test_field_context_is_app_label_model_and_field_name():
    field = MailboxConnection._meta.get_field("imap_password")

    assert field.encryption_context == "integrations.MailboxConnection.imap_password"
    assert (
        MailboxConnection._meta.get_field("smtp_password").encryption_context
        == "integrations.MailboxConnection.smtp_password"
    )
    assert (
        MicrosoftToken._meta.get_field("token_cache").encryption_context
        == "integrations.MicrosoftToken.token_cache"
    )


def test_field_deconstructs_without_its_derived_context():
    # Migrations must not change when nothing changed: the derived context stays out of
    # them, an explicit one (kept across a rename) goes in.
    name, path, args, kwargs = MailboxConnection._meta.get_field("imap_password").deconstruct()

    assert (name, path, args, kwargs) == (
        "imap_password",
        "enque.encryption.EncryptedTextField",
        [],
        {"blank": True},
    )
    pinned = EncryptedTextField(blank=True, context="integrations.Mailbox.password")
    assert pinned.deconstruct()[3] == {"blank": True, "context": "integrations.Mailbox.password"}
    assert pinned.encryption_context == "integrations.Mailbox.password"


def test_unbound_field_has_no_context():
    with pytest.raises(ImproperlyConfigured):
        EncryptedTextField().get_prep_value("hunter2")


def test_field_refuses_index_and_uniqueness():
    assert [e.id for e in EncryptedTextField(unique=True).check()] == ["enque.E002"]
    assert [e.id for e in EncryptedTextField(db_index=True).check()] == ["enque.E002"]


@pytest.mark.parametrize(
    "lookup", ["icontains", "startswith", "contains", "iexact", "in", "gt", "regex", "lower"]
)
def test_value_lookups_are_refused(lookup):
    with pytest.raises(FieldError, match=lookup):
        MailboxConnection.objects.filter(**{f"imap_password__{lookup}": ["x"]})


@pytest.mark.parametrize("value", ["hunter2", F("smtp_password")], ids=["value", "column"])
def test_exact_lookup_on_a_value_is_refused(value):
    with pytest.raises(FieldError, match="isnull or an exact empty string"):
        MailboxConnection.objects.filter(imap_password=value)


# --- In the database -------------------------------------------------------------------


def make_mailbox(workspace, address, **kwargs):
    return MailboxConnection.objects.create(
        workspace=workspace, provider=MailboxProvider.IMAP, email_address=address, **kwargs
    )


def raw_row(obj, *field_names):
    """The stored column values, read past the ORM (no from_db_value)."""
    meta = obj._meta
    qn = connection.ops.quote_name
    columns = ", ".join(qn(meta.get_field(name).column) for name in field_names)
    with connection.cursor() as cursor:
        # Identifiers come from model metadata, the value is a parameter.
        cursor.execute(
            f"SELECT {columns} FROM {qn(meta.db_table)} WHERE {qn(meta.pk.column)} = %s",  # noqa: S608
            [obj.pk],
        )
        return cursor.fetchone()


def test_values_are_ciphertext_at_rest(workspace_a):
    mailbox = make_mailbox(
        workspace_a, "help@acme.test", imap_password="imap-pässwörd 🔑", smtp_password=""
    )
    token = MicrosoftToken.objects.create(
        workspace=workspace_a, mailbox=mailbox, token_cache='{"RefreshToken": {"secret": "rt-123"}}'
    )
    integration = MicrosoftIntegration.objects.create(
        workspace=workspace_a, client_id="app-1", client_secret="client-secret-value"
    )

    imap_raw, smtp_raw = raw_row(mailbox, "imap_password", "smtp_password")
    [cache_raw] = raw_row(token, "token_cache")
    [secret_raw] = raw_row(integration, "client_secret")

    for raw, plaintext in [
        (imap_raw, "imap-p"),
        (cache_raw, "rt-123"),
        (cache_raw, "RefreshToken"),
        (secret_raw, "client-secret"),
    ]:
        assert raw.startswith("enc:v1:a:")
        assert plaintext not in raw
    # "No password set" stays visible as such.
    assert smtp_raw == ""
    mailbox = MailboxConnection.objects.get(pk=mailbox.pk)
    assert mailbox.imap_password == "imap-pässwörd 🔑"
    assert mailbox.smtp_password == ""
    assert MicrosoftToken.objects.get(pk=token.pk).token_cache == (
        '{"RefreshToken": {"secret": "rt-123"}}'
    )
    assert MicrosoftIntegration.objects.values_list("client_secret", flat=True).get() == (
        "client-secret-value"
    )


def test_empty_and_isnull_filters_work(workspace_a):
    with_password = make_mailbox(workspace_a, "a@acme.test", imap_password="x")
    without_password = make_mailbox(workspace_a, "b@acme.test")

    assert list(MailboxConnection.objects.filter(imap_password="")) == [without_password]
    assert list(MailboxConnection.objects.exclude(imap_password="")) == [with_password]
    assert not MailboxConnection.objects.filter(imap_password__isnull=True).exists()


def test_queryset_update_encrypts(workspace_a):
    mailbox = make_mailbox(workspace_a, "a@acme.test")

    MailboxConnection.objects.filter(pk=mailbox.pk).update(imap_password="updated")

    [raw] = raw_row(mailbox, "imap_password")
    assert raw.startswith("enc:v1:a:")
    assert "updated" not in raw
    assert decrypt(raw, context=CONTEXT) == "updated"


def test_ciphertext_copied_to_another_column_does_not_decrypt(workspace_a):
    mailbox = make_mailbox(workspace_a, "a@acme.test", imap_password="hunter2")
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(MailboxConnection._meta.db_table)} "  # noqa: S608 -- identifiers only
            f"SET {qn('smtp_password')} = {qn('imap_password')} WHERE id = %s",
            [mailbox.pk],
        )

    with pytest.raises(DecryptionError) as excinfo:
        MailboxConnection.objects.get(pk=mailbox.pk)

    assert excinfo.value.code == "authentication_failed"


# --- Rotation --------------------------------------------------------------------------


def rotate(*args):
    stdout, stderr = StringIO(), StringIO()
    call_command("rotate_encryption_keys", *args, stdout=stdout, stderr=stderr)
    return stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def under_key_a(workspace_a):
    """Rows written under key "a": two mailboxes (one without passwords) and a token."""
    mailbox = make_mailbox(
        workspace_a, "help@acme.test", imap_password="imap-secret", smtp_password="smtp-secret"
    )
    empty = make_mailbox(workspace_a, "empty@acme.test")
    token = MicrosoftToken.objects.create(
        workspace=workspace_a, mailbox=mailbox, token_cache='{"AccessToken": {}}'
    )
    return mailbox, empty, token


def test_rotation_re_encrypts_under_the_current_key(settings, under_key_a):
    mailbox, empty, token = under_key_a
    updated_at = MailboxConnection.objects.get(pk=mailbox.pk).updated_at
    rotate_to_b(settings)

    # Before the command: still readable through the old key, and flagged for rotation.
    [old_imap] = raw_row(mailbox, "imap_password")
    assert needs_rotation(old_imap)
    assert MailboxConnection.objects.get(pk=mailbox.pk).imap_password == "imap-secret"

    out, err = rotate("--batch-size", "1")  # one row per batch: walks the keyset pages

    assert "integrations.MailboxConnection: re-encrypted 2 values " in out
    assert "(imap_password: 1, smtp_password: 1)" in out
    assert "integrations.MicrosoftToken: re-encrypted 1 values (token_cache: 1)" in out
    assert err == ""
    imap_raw, smtp_raw = raw_row(mailbox, "imap_password", "smtp_password")
    [cache_raw] = raw_row(token, "token_cache")
    for raw in (imap_raw, smtp_raw, cache_raw):
        assert token_key_id(raw) == "b"
        assert not needs_rotation(raw)
    assert raw_row(empty, "imap_password", "smtp_password") == ("", "")
    # Key "a" can now be retired.
    rotate_to_b(settings, keep_a=False)
    mailbox = MailboxConnection.objects.get(pk=mailbox.pk)
    assert (mailbox.imap_password, mailbox.smtp_password) == ("imap-secret", "smtp-secret")
    assert MicrosoftToken.objects.get(pk=token.pk).token_cache == '{"AccessToken": {}}'
    # update(), not save(): auto_now did not fire.
    assert mailbox.updated_at == updated_at

    # Idempotent: a second run finds nothing to do.
    out, _ = rotate()
    assert "integrations.MailboxConnection: re-encrypted 0 values" in out
    assert raw_row(mailbox, "imap_password", "smtp_password") == (imap_raw, smtp_raw)


def test_rotation_dry_run_writes_nothing(settings, under_key_a):
    mailbox, _, token = under_key_a
    before = raw_row(mailbox, "imap_password", "smtp_password")
    rotate_to_b(settings)

    out, _ = rotate("--dry-run")

    assert "Dry run" in out
    assert "integrations.MailboxConnection: would re-encrypt 2 values" in out
    assert "integrations.MicrosoftToken: would re-encrypt 1 values" in out
    assert raw_row(mailbox, "imap_password", "smtp_password") == before
    assert token_key_id(raw_row(token, "token_cache")[0]) == "a"


def test_rotation_reports_unreadable_values_and_leaves_them(settings, under_key_a):
    mailbox, empty, _ = under_key_a
    # A value from a key nobody configured any more, next to values that can rotate.
    stray = encrypt("lost", context="integrations.MailboxConnection.imap_password")
    stray = stray.replace("enc:v1:a:", "enc:v1:gone:")
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(MailboxConnection._meta.db_table)} "  # noqa: S608 -- identifiers only
            f"SET {qn('imap_password')} = %s WHERE id = %s",
            [stray, empty.pk],
        )
    rotate_to_b(settings)

    stdout, stderr = StringIO(), StringIO()
    with pytest.raises(CommandError, match="1 values could not be decrypted"):
        call_command("rotate_encryption_keys", stdout=stdout, stderr=stderr)

    assert f"integrations.MailboxConnection pk={empty.pk} imap_password: unknown_key_id" in (
        stderr.getvalue()
    )
    assert "lost" not in stderr.getvalue()
    assert raw_row(empty, "imap_password") == (stray,)
    assert token_key_id(raw_row(mailbox, "imap_password")[0]) == "b"
