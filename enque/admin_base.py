"""Shared plumbing of the Django admin: tenant scoping, write-only secrets, read-only history.

Who sees what
-------------
Superusers see every workspace. Any other staff user sees only the workspaces where they are
an active owner or admin ``Agent`` (of an active workspace): ``administered_workspace_ids``.
For tenant rows that role *is* the permission: Django's per-model permissions are not
consulted for them (they would be a second permission system, out of step with the roles
the API enforces). A plain agent (role ``agent`` or ``light``) who happens to be staff sees
nothing. Out-of-scope objects are simply absent from every queryset, so their change page
redirects like a missing object.

Every ``TenantAdmin`` and tenant inline:

- filters ``get_queryset`` to the user's workspaces;
- limits every foreign-key choice to those workspaces, and on a change page to the
  object's own workspace;
- validates that every related object chosen belongs to the row's workspace (the form
  check below covers raw-id and autocomplete widgets too, and superusers);
- shows ``workspace`` read-only once a row exists, and refuses to save a row of a
  workspace the user does not administer;
- turns a domain error raised by a service (``enque.errors.EnqueError``) during a save into
  an error message, with the whole save rolled back.

Secrets
-------
``EncryptedTextField`` columns are never loaded by the admin (deferred in every queryset, so
neither plaintext nor ciphertext reaches a page), never a readonly field, and never a model
form field. Where an admin may set one, ``secret_form`` declares a write-only password input
of the same name: blank keeps the stored value, a "clear" box empties it, and
``secret_status`` shows "set" / "not set" from an annotation computed in SQL.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable, Mapping
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import InlineModelAdmin
from django.core.exceptions import NON_FIELD_ERRORS, PermissionDenied
from django.db import models
from django.db.models import BooleanField, Case, Value, When
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from enque.encryption import EncryptedTextField
from enque.errors import EnqueError
from tickets.actors import Actor
from workspaces.models import Agent, AgentRole, TenantModel, Workspace

ADMIN_ROLES = (AgentRole.OWNER, AgentRole.ADMIN)

# Related-object lists in filters are capped: a superuser's "assignee" filter across every
# workspace would otherwise render every agent of the deployment.
FILTER_CHOICES_LIMIT = 200

_SCOPE_ATTR = "_enque_admin_workspace_ids"
_AGENTS_ATTR = "_enque_admin_agents"


# --- Scope -----------------------------------------------------------------------------------


def administered_workspace_ids(request: HttpRequest) -> frozenset[int] | None:
    """The workspaces this admin user may see; ``None`` means all (superuser).

    One query per request, cached on the request.
    """
    user = request.user
    if not user.is_active or not user.is_staff:
        return frozenset()
    if user.is_superuser:
        return None
    cached = getattr(request, _SCOPE_ATTR, None)
    if cached is None:
        cached = frozenset(
            Agent.objects.filter(
                user=user, is_active=True, role__in=ADMIN_ROLES, workspace__is_active=True
            ).values_list("workspace_id", flat=True)
        )
        setattr(request, _SCOPE_ATTR, cached)
    return cached


def in_scope(request: HttpRequest, workspace_id: int | None) -> bool:
    scope = administered_workspace_ids(request)
    if scope is None:
        return True
    return workspace_id is not None and workspace_id in scope


def scope_queryset(
    request: HttpRequest, queryset: models.QuerySet, field: str = "workspace_id"
) -> models.QuerySet:
    scope = administered_workspace_ids(request)
    if scope is None:
        return queryset
    return queryset.filter(**{f"{field}__in": scope})


def admin_agent(request: HttpRequest, workspace_id: int) -> Agent | None:
    """The requesting user's active owner/admin agent in the workspace, if any (cached)."""
    cache: dict[int, Agent | None] = getattr(request, _AGENTS_ATTR, None) or {}
    setattr(request, _AGENTS_ATTR, cache)
    if workspace_id not in cache:
        cache[workspace_id] = (
            Agent.objects.filter(
                workspace_id=workspace_id, user=request.user, is_active=True, role__in=ADMIN_ROLES
            )
            .select_related("user")
            .first()
        )
    return cache[workspace_id]


def acting_actor(request: HttpRequest, workspace_id: int) -> Actor:
    """Who an admin's change is recorded as: their admin agent in that workspace, else the
    system for a superuser who is no admin there. Anyone else may not act."""
    agent = admin_agent(request, workspace_id)
    if agent is not None:
        return Actor.for_agent(agent)
    if request.user.is_superuser:
        return Actor.system()
    raise PermissionDenied


def is_tenant_model(model: type[models.Model] | None) -> bool:
    return model is not None and issubclass(model, TenantModel)


def workspace_id_of(obj: object) -> int | None:
    if isinstance(obj, Workspace):
        return obj.pk
    return getattr(obj, "workspace_id", None)


def secret_field_names(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedTextField)]


def without_secrets(queryset: models.QuerySet) -> models.QuerySet:
    """The queryset with its model's encrypted columns deferred (never read, never decrypted)."""
    secrets = secret_field_names(queryset.model)
    return queryset.defer(*secrets) if secrets else queryset


def with_related_without_secrets(queryset: models.QuerySet) -> models.QuerySet:
    """Join each forward relation whose target holds secrets (a ticket's mailbox, a token's
    mailbox...), minus those secrets, so showing the related row never decrypts them."""
    for field in queryset.model._meta.concrete_fields:
        if not field.is_relation or not (field.many_to_one or field.one_to_one):
            continue
        secrets = secret_field_names(field.related_model)
        if secrets:
            queryset = queryset.select_related(field.name).defer(
                *[f"{field.name}__{name}" for name in secrets]
            )
    return queryset


def secret_flag(name: str) -> str:
    """The annotation that says whether a secret column holds a value."""
    return f"secret_is_set_{name}"


def clean_timezone_name(value: str) -> str:
    """Form validation for the time-zone fields of workspaces and business hours."""
    value = value.strip()
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise forms.ValidationError(
            "Unknown time zone; use an IANA name such as Europe/Berlin or UTC."
        ) from None
    return value


# --- List filters ------------------------------------------------------------------------------


class WorkspaceListFilter(admin.RelatedFieldListFilter):
    """The workspaces in the user's scope; hidden when there is only one."""

    def field_choices(self, field, request, model_admin):
        workspaces = scope_queryset(request, Workspace.objects.all(), "pk")
        return [(w.pk, w.name) for w in workspaces.order_by("name")[:FILTER_CHOICES_LIMIT]]


class TenantRelatedListFilter(admin.RelatedFieldListFilter):
    """Related objects of the workspace chosen in the workspace filter, else of the user's
    workspaces; never another tenant's names. One query."""

    workspace_param = "workspace__id__exact"

    def field_choices(self, field, request, model_admin):
        related = field.related_model
        queryset = without_secrets(scope_queryset(request, related._default_manager.all()))
        selected = request.GET.get(self.workspace_param, "")
        if selected.isdigit():
            queryset = queryset.filter(workspace_id=int(selected))
        if related is Agent:
            queryset = queryset.select_related("user")
        ordering = self.field_admin_ordering(field, request, model_admin)
        if ordering:
            queryset = queryset.order_by(*ordering)
        return [(obj.pk, str(obj)) for obj in queryset[:FILTER_CHOICES_LIMIT]]


def workspace_filter(path: str = "workspace") -> tuple[str, type[admin.ListFilter]]:
    return (path, WorkspaceListFilter)


def related_filter(path: str) -> tuple[str, type[admin.ListFilter]]:
    return (path, TenantRelatedListFilter)


# --- Forms -------------------------------------------------------------------------------------


class TenantAdminForm(forms.ModelForm):
    """Refuses references to another workspace's objects, and validates per-tenant unique
    constraints (which include ``workspace``, a field these forms often do not show)."""

    def row_workspace_id(self) -> int | None:
        if "workspace" in self.fields:
            workspace = self.cleaned_data.get("workspace")
            return workspace.pk if workspace else None
        return self.instance.workspace_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        workspace_id = self.row_workspace_id()
        if workspace_id is None:
            return cleaned
        for name, value in list(cleaned.items()):
            field = self.fields.get(name)
            if (
                value is None
                or name == "workspace"
                or not isinstance(field, forms.ModelChoiceField)
            ):
                continue
            related = field.queryset.model
            if not is_tenant_model(related):
                continue
            values = value if isinstance(value, models.QuerySet) else [value]
            if any(v.workspace_id != workspace_id for v in values):
                self.add_error(name, f"Choose a {related._meta.verbose_name} of this workspace.")
        return cleaned

    def _get_validation_exclusions(self) -> set[str]:
        exclude = super()._get_validation_exclusions()
        # The workspace is known (set by the form, the instance, or the inline's parent):
        # let constraints such as (workspace, lower(name)) be checked before the database
        # refuses them with an IntegrityError.
        if getattr(self.instance, "workspace_id", None) is not None:
            exclude.discard("workspace")
        # Secrets are never loaded, so never validated from the instance.
        exclude.update(secret_field_names(self._meta.model))
        return exclude

    def _update_errors(self, errors: Any) -> None:
        # An error on a field this form does not show (the workspace of an inline row)
        # becomes a form-wide error instead of a crash.
        if hasattr(errors, "error_dict"):
            hidden = [
                f for f in errors.error_dict if f != NON_FIELD_ERRORS and f not in self.fields
            ]
            for name in hidden:
                errors.error_dict.setdefault(NON_FIELD_ERRORS, []).extend(
                    errors.error_dict.pop(name)
                )
        super()._update_errors(errors)


class SecretFieldsFormMixin:
    """Write-only inputs for encrypted columns (see ``secret_form``)."""

    secret_fields: tuple[str, ...] = ()

    def save(self, commit: bool = True) -> models.Model:
        for name in self.secret_fields:
            value = self.cleaned_data.get(name) or ""
            if value:
                setattr(self.instance, name, value)
            elif self.cleaned_data.get(f"{name}_clear"):
                setattr(self.instance, name, "")
            # Else the column stays deferred, and Model.save() writes only loaded fields.
        return super().save(commit)


def secret_form(
    model: type[models.Model],
    fields: Mapping[str, str],
    base: type[forms.ModelForm] = TenantAdminForm,
) -> type[forms.ModelForm]:
    """A model form with a write-only password input per encrypted column: ``fields`` maps
    each column to its label ("IMAP password").

    The model columns stay excluded (``TenantScopedMixin.get_exclude``), so the form neither
    reads nor renders them; the declared inputs of the same name are applied in ``save``.
    """
    attrs: dict[str, Any] = {"secret_fields": tuple(fields)}
    for name, label in fields.items():
        model._meta.get_field(name)  # fail at import on a typo, not on the first save
        attrs[name] = forms.CharField(
            label=f"New {label}",
            required=False,
            strip=False,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text="Stored encrypted and never shown. Leave blank to keep the current value.",
        )
        attrs[f"{name}_clear"] = forms.BooleanField(
            label=f"Clear the stored {label}", required=False
        )
    return type(f"{model.__name__}SecretsForm", (SecretFieldsFormMixin, base), attrs)


def secret_status(name: str, description: str) -> Callable[[Any, models.Model], str]:
    """A display method: "set" / "not set" for an encrypted column, without decrypting it."""

    @admin.display(description=description)
    def display(self: Any, obj: models.Model) -> str:
        flag = getattr(obj, secret_flag(name), None)
        if flag is None:
            if obj.pk is None:
                return "not set"
            flag = type(obj)._default_manager.filter(pk=obj.pk).exclude(**{name: ""}).exists()
        return "set" if flag else "not set"

    return display


class TenantInlineFormSet(BaseInlineFormSet):
    """Inline rows belong to their parent's workspace; ``workspace`` is not a form field."""

    def _construct_form(self, i: int, **kwargs: Any) -> forms.Form:
        form = super()._construct_form(i, **kwargs)
        if self.instance is not None and getattr(self.instance, "workspace_id", None):
            form.instance.workspace_id = self.instance.workspace_id
        return form


def mark_formset_saved(formset: forms.BaseFormSet) -> None:
    """For a formset whose rows a service wrote: the admin's change message reads these."""
    formset.new_objects = []
    formset.changed_objects = []
    formset.deleted_objects = []


def kept_rows(formset: forms.BaseFormSet) -> list[dict[str, Any]]:
    """The cleaned data of the rows an admin kept (filled in, not marked for deletion)."""
    rows = []
    for form in formset.forms:
        if not hasattr(form, "cleaned_data") or not form.cleaned_data:
            continue
        if formset.can_delete and formset._should_delete_form(form):
            continue
        rows.append(form.cleaned_data)
    return rows


# --- The scoped admins -----------------------------------------------------------------------


class TenantScopedMixin:
    """Scoping shared by model admins and inlines of tenant models."""

    def _tenant_permission(self, request: HttpRequest, obj: object | None) -> bool:
        scope = administered_workspace_ids(request)
        if not scope and scope is not None:
            return False
        return obj is None or in_scope(request, workspace_id_of(obj))

    def has_module_permission(self, request: HttpRequest) -> bool:
        if request.user.is_superuser:
            return super().has_module_permission(request)
        return self._tenant_permission(request, None)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._tenant_permission(request, obj)

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # ModelAdmin: (request); InlineModelAdmin: (request, parent_obj).
        if request.user.is_superuser:
            return super().has_add_permission(request, *args)
        return self._tenant_permission(request, args[0] if args else None)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._tenant_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._tenant_permission(request, obj)

    def get_queryset(self, request: HttpRequest) -> models.QuerySet:
        queryset = scope_queryset(request, super().get_queryset(request))
        # The changelist applies list_select_related only to a queryset without any
        # select_related; the join below adds one, so apply the list's joins here too.
        joins = getattr(self, "list_select_related", None)
        if isinstance(joins, list | tuple) and joins:
            queryset = queryset.select_related(*joins)
        queryset = with_related_without_secrets(queryset)
        secrets = secret_field_names(self.model)
        if secrets:
            # Never load a secret: a flag computed in SQL says whether one is stored.
            queryset = queryset.defer(*secrets).annotate(
                **{
                    secret_flag(name): Case(
                        When(**{name: ""}, then=Value(False)),
                        default=Value(True),
                        output_field=BooleanField(),
                    )
                    for name in secrets
                }
            )
        return queryset

    def get_exclude(self, request: HttpRequest, obj: Any = None) -> list[str]:
        exclude = list(super().get_exclude(request, obj) or [])
        if isinstance(self, InlineModelAdmin):
            exclude.append("workspace")
        # Encrypted columns are never model form fields (see ``secret_form``).
        return [*exclude, *secret_field_names(self.model)]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        secrets = set(secret_field_names(self.model))
        return [name for name in readonly if name not in secrets]

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        fieldsets = super().get_fieldsets(request, obj)
        secrets = set(secret_field_names(self.model))
        if not secrets:
            return fieldsets
        # A view-only page renders every listed field read-only, from the instance: drop the
        # write-only inputs there, so a secret can never be displayed.
        editable = obj is None or self.has_change_permission(request, obj)
        hidden = set() if editable else secrets | {f"{s}_clear" for s in secrets}
        result = []
        for title, options in fieldsets:
            names = [f for f in options.get("fields", ()) if f not in hidden]
            if names:
                result.append((title, {**options, "fields": names}))
        return result

    def limit_related_queryset(
        self, request: HttpRequest, related: type[models.Model], queryset: models.QuerySet
    ) -> models.QuerySet:
        if related is Workspace:
            return scope_queryset(request, queryset, "pk")
        if is_tenant_model(related):
            queryset = without_secrets(scope_queryset(request, queryset))
        if related is Agent:
            # An agent's label is its user's name.
            queryset = queryset.select_related("user")
        return queryset

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if isinstance(db_field, models.URLField):
            # A bare "hooks.example.com" means https (Django 6's default, chosen now).
            kwargs.setdefault("assume_scheme", "https")
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if "queryset" not in kwargs:
            queryset = self.get_field_queryset(None, db_field, request)
            if queryset is None:
                queryset = related._default_manager.all()
            kwargs["queryset"] = queryset
        kwargs["queryset"] = self.limit_related_queryset(request, related, kwargs["queryset"])
        if related is Workspace:
            scope = administered_workspace_ids(request)
            if scope is not None and len(scope) == 1:
                kwargs.setdefault("initial", next(iter(scope)))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        related = db_field.related_model
        if "queryset" not in kwargs:
            queryset = self.get_field_queryset(None, db_field, request)
            if queryset is None:
                queryset = related._default_manager.all()
            kwargs["queryset"] = queryset
        kwargs["queryset"] = self.limit_related_queryset(request, related, kwargs["queryset"])
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def narrow_choices_to_workspace(
        self, form_class: type[forms.BaseForm], workspace_id: int
    ) -> None:
        """On an existing row, offer only the row's own workspace's objects."""
        for field in form_class.base_fields.values():
            queryset = getattr(field, "queryset", None)
            if queryset is not None and is_tenant_model(queryset.model):
                field.queryset = queryset.filter(workspace_id=workspace_id)


class TenantAdmin(TenantScopedMixin, admin.ModelAdmin):
    """The base of every admin of a tenant model (see the module docstring)."""

    form = TenantAdminForm

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = super().get_readonly_fields(request, obj)
        # A row never moves to another tenant: every reference it holds would dangle.
        if obj is not None and "workspace" not in readonly:
            readonly = ["workspace", *readonly]
        return readonly

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and getattr(obj, "workspace_id", None):
            self.narrow_choices_to_workspace(form_class, obj.workspace_id)
        return form_class

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        self.check_workspace(request, obj)
        super().save_model(request, obj, form, change)

    def check_workspace(self, request: HttpRequest, obj: Any) -> None:
        if not in_scope(request, workspace_id_of(obj)):
            raise PermissionDenied

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        parent = form.instance
        if is_tenant_model(formset.model) and hasattr(parent, "workspace_id"):
            for inline_form in formset.forms:
                if inline_form.instance.workspace_id not in (None, parent.workspace_id):
                    raise PermissionDenied
                inline_form.instance.workspace_id = parent.workspace_id
        super().save_formset(request, form, formset, change)

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except EnqueError as exc:
            # Raised by a service inside the view's transaction, which has rolled back:
            # nothing of this save was written. Say why, and show the form again.
            self.message_user(request, exc.message, messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class TenantInlineMixin(TenantScopedMixin):
    form = TenantAdminForm
    formset = TenantInlineFormSet
    extra = 0

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any):
        formset_class = super().get_formset(request, obj, **kwargs)
        if obj is not None and getattr(obj, "workspace_id", None):
            self.narrow_choices_to_workspace(formset_class.form, obj.workspace_id)
        return formset_class


class TenantTabularInline(TenantInlineMixin, admin.TabularInline):
    pass


class TenantStackedInline(TenantInlineMixin, admin.StackedInline):
    pass


class ReadOnlyMixin:
    """History and machine state: visible to whoever may see the workspace, changed by no
    one here (superusers included). Combine before ``TenantAdmin`` or a tenant inline."""

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def copy_saved_state(source: models.Model, target: models.Model) -> None:
    """Make the admin's unsaved ``target`` the row a service created as ``source``."""
    for field in source._meta.concrete_fields:
        setattr(target, field.attname, getattr(source, field.attname))
    target._state.adding = False
    target._state.db = source._state.db
