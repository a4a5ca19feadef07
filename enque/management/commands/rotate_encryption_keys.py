"""Re-encrypt every ``EncryptedTextField`` value under the current key.

Rotation: set the new key as ``DATABASE_ENCRYPTION_KEY`` / ``DATABASE_ENCRYPTION_KEY_ID``,
move the old one into ``DATABASE_ENCRYPTION_OLD_KEYS`` ("id:key"), deploy, run this
command, then drop the old key once it reports nothing left. Safe to re-run and to
interrupt: only values not yet under the current key id are read, and each batch commits
on its own.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, router, transaction
from django.db.models import ExpressionWrapper, F, Q, TextField

from enque.encryption import (
    TOKEN_PREFIX,
    DecryptionError,
    EncryptedTextField,
    current_key_id,
    decrypt,
)


def encrypted_fields(model: type[models.Model]) -> list[EncryptedTextField]:
    # Local fields only: with multi-table inheritance the parent's table is walked as the
    # parent model, so no column is rotated twice.
    return [f for f in model._meta.local_concrete_fields if isinstance(f, EncryptedTextField)]


def _raw(field: EncryptedTextField) -> ExpressionWrapper:
    # The column seen as plain text: no from_db_value, so we read the token itself.
    return ExpressionWrapper(F(field.attname), output_field=TextField())


class Command(BaseCommand):
    help = "Re-encrypt encrypted columns whose key id is not DATABASE_ENCRYPTION_KEY_ID."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Report what would change; write nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=500,
            help="Rows per transaction (default 500).",
        )

    def handle(self, *args: Any, dry_run: bool, batch_size: int, **options: Any) -> None:
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        key_id = current_key_id()
        self.stdout.write(f"{'Dry run: ' if dry_run else ''}re-encrypting under key id {key_id!r}.")
        failures = 0
        for model in apps.get_models():
            fields = encrypted_fields(model)
            # Proxies share their concrete model's table; unmanaged tables may be views.
            if not fields or model._meta.proxy or not model._meta.managed:
                continue
            counts, failed = self._rotate_model(model, fields, key_id, dry_run, batch_size)
            failures += failed
            verb = "would re-encrypt" if dry_run else "re-encrypted"
            detail = ", ".join(f"{f.name}: {counts[f.name]}" for f in fields)
            self.stdout.write(
                f"{model._meta.label}: {verb} {sum(counts.values())} values ({detail})"
                + (f", {failed} unreadable" if failed else "")
            )
        if failures:
            # Unreadable values are left untouched; fail so the operator does not retire a
            # key that something still depends on (or misses a corrupted column).
            raise CommandError(f"{failures} values could not be decrypted and were left unchanged.")

    def _rotate_model(
        self,
        model: type[models.Model],
        fields: list[EncryptedTextField],
        key_id: str,
        dry_run: bool,
        batch_size: int,
    ) -> tuple[Counter[str], int]:
        current_prefix = f"{TOKEN_PREFIX}{key_id}:"
        annotations = {f"_raw_{f.attname}": _raw(f) for f in fields}
        # Rows holding at least one non-empty value under another key id (or no valid
        # token at all); the database does the filtering, so a run after a completed one
        # reads nothing.
        stale = Q()
        for alias in annotations:
            stale |= (
                ~Q(**{f"{alias}__isnull": True})
                & ~Q(**{alias: ""})
                & ~Q(**{f"{alias}__startswith": current_prefix})
            )
        queryset = model._base_manager.annotate(**annotations).filter(stale).order_by("pk")
        using = router.db_for_write(model)
        counts: Counter[str] = Counter()
        failed = 0
        last_pk: Any = None
        while True:
            batch_qs = queryset if last_pk is None else queryset.filter(pk__gt=last_pk)
            with transaction.atomic(using=using):
                # Locked in primary-key order so a concurrent token refresh cannot land
                # between our read and our write (on SQLite the IMMEDIATE transaction
                # serialises writers instead).
                rows = list(
                    batch_qs.using(using)
                    .select_for_update()
                    .values_list("pk", *annotations)[:batch_size]
                )
                for pk, *raw_values in rows:
                    changes: dict[str, str] = {}
                    for field, raw in zip(fields, raw_values, strict=True):
                        if not raw or raw.startswith(current_prefix):
                            continue
                        try:
                            plaintext = decrypt(raw, context=field.encryption_context)
                        except DecryptionError as exc:
                            failed += 1
                            self.stderr.write(
                                f"{model._meta.label} pk={pk} {field.name}: {exc.code}"
                            )
                            continue
                        # update() runs get_prep_value, which encrypts under the current key.
                        changes[field.attname] = plaintext
                        counts[field.name] += 1
                    if changes and not dry_run:
                        # update(), not save(): no signals, no auto_now, no other columns.
                        model._base_manager.using(using).filter(pk=pk).update(**changes)
            if len(rows) < batch_size:
                return counts, failed
            last_pk = rows[-1][0]
