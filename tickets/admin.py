"""Admin for tickets, their thread and history, and the settings agents use on them.

A ticket changes only through ``tickets.services``: the change form's save calls
``ticket_update`` (or ``ticket_create`` on the add page), the tag inline calls it with the
new tag set, and the list actions call ``ticket_set_status`` / ``ticket_assign`` /
``ticket_delete`` / ``ticket_restore``, each as the acting admin's agent in the ticket's
workspace (``enque.admin_base.acting_actor``), so every change leaves ``TicketEvent`` rows
and reaches realtime and automations like any other. History, comments, bodies,
attachments and the number counter are read-only here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.text import Truncator

from enque.admin_base import (
    ReadOnlyMixin,
    TenantAdmin,
    TenantAdminForm,
    TenantStackedInline,
    TenantTabularInline,
    acting_actor,
    copy_saved_state,
    kept_rows,
    mark_formset_saved,
    related_filter,
    workspace_filter,
)
from enque.errors import EnqueError
from tickets.actors import Actor
from tickets.models import (
    CannedReply,
    Category,
    Comment,
    SavedView,
    ScheduledComment,
    ScheduledCommentStatus,
    Tag,
    Ticket,
    TicketAttachment,
    TicketBody,
    TicketChannel,
    TicketCountDelta,
    TicketCounter,
    TicketEvent,
    TicketStatus,
    TicketTag,
)
from tickets.services import (
    scheduled_comment_cancel,
    ticket_assign,
    ticket_create,
    ticket_delete,
    ticket_restore,
    ticket_set_status,
    ticket_update,
)
from workspaces.models import Agent

# The ticket fields the change form edits; each goes through ``ticket_update``.
SERVICE_FIELDS = ("subject", "status", "priority", "assignee", "team", "category")
# Bulk actions act ticket by ticket (one transaction and one set of events each); a bigger
# selection belongs in a management command or the API.
MAX_BULK_TICKETS = 500


def _ticket_number_search(queryset: QuerySet, term: str, lookup: str) -> QuerySet | None:
    """``123`` or ``#123`` finds that ticket number (an indexed equality, not a LIKE)."""
    term = term.strip().lstrip("#")
    if term.isdigit():
        return queryset.filter(**{lookup: int(term)})
    return None


def _actor_label(agent: Agent | None, customer: Any, fallback: str) -> str:
    if agent is not None:
        return agent.name
    if customer is not None:
        return str(customer)
    return fallback


# --- Settings rows -------------------------------------------------------------------------


@admin.register(Category)
class CategoryAdmin(TenantAdmin):
    list_display = ("name", "description", "workspace")
    list_filter = (workspace_filter(),)
    list_select_related = ("workspace",)
    search_fields = ("name",)


@admin.register(Tag)
class TagAdmin(TenantAdmin):
    """Deleting a tag takes it off every ticket at once, without a history row per ticket
    (a tag is a label, not a ticket field); rename it instead to keep history readable."""

    list_display = ("name", "color", "workspace")
    list_filter = (workspace_filter(),)
    list_select_related = ("workspace",)
    search_fields = ("name",)

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> Any:
        # The ticket-tag links are read-only on their own page, which would otherwise make
        # a used tag impossible to delete; removing them is what deleting a tag means.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(TicketTag._meta.verbose_name)
        return deleted, counts, perms_needed, protected


@admin.register(CannedReply)
class CannedReplyAdmin(TenantAdmin):
    list_display = ("title", "category", "owner", "usage_count", "workspace")
    list_filter = (workspace_filter(), related_filter("category"))
    list_select_related = ("workspace", "category", "owner__user")
    search_fields = ("title", "body")
    readonly_fields = ("usage_count",)


@admin.register(SavedView)
class SavedViewAdmin(TenantAdmin):
    """Ticket list filters; an empty owner shares the view with the whole workspace."""

    list_display = ("name", "owner", "shared", "position", "workspace")
    list_filter = (workspace_filter(), ("owner", admin.EmptyFieldListFilter))
    list_select_related = ("owner__user", "workspace")
    search_fields = ("name",)

    @admin.display(description="shared", boolean=True)
    def shared(self, obj: SavedView) -> bool:
        return obj.is_shared


@admin.register(TicketCounter)
class TicketCounterAdmin(ReadOnlyMixin, TenantAdmin):
    """The number sequence, owned by ``allocate_ticket_number``; shown, never edited."""

    list_display = ("workspace", "last_number", "updated_at")
    list_filter = (workspace_filter(),)
    list_select_related = ("workspace",)


@admin.register(TicketCountDelta)
class TicketCountDeltaAdmin(ReadOnlyMixin, TenantAdmin):
    """The inbox counts' delta rows, written by triggers (tickets.counts); shown, never edited."""

    list_display = ("workspace", "status", "assignee_id", "team_id", "mailbox_id", "n")
    list_filter = (workspace_filter(), "status")
    list_select_related = ("workspace",)


# --- Ticket inlines ------------------------------------------------------------------------


class TicketBodyInline(ReadOnlyMixin, TenantStackedInline):
    model = TicketBody
    fields = readonly_fields = ("text", "html")
    verbose_name = verbose_name_plural = "original message"


class CommentInline(ReadOnlyMixin, TenantTabularInline):
    model = Comment
    fields = readonly_fields = ("created_at", "author", "is_internal", "via", "excerpt")
    verbose_name_plural = "thread"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("author_agent__user", "author_customer")

    @admin.display(description="author")
    def author(self, obj: Comment) -> str:
        return _actor_label(obj.author_agent, obj.author_customer, obj.get_author_type_display())

    @admin.display(description="text")
    def excerpt(self, obj: Comment) -> str:
        return Truncator(obj.body_text).chars(400)


def _attachment_link(obj: TicketAttachment) -> str:
    url = reverse("admin:tickets_ticketattachment_download", args=[obj.pk])
    return format_html('<a href="{}">Download</a>', url)


class TicketAttachmentInline(ReadOnlyMixin, TenantTabularInline):
    model = TicketAttachment
    fk_name = "ticket"
    fields = readonly_fields = ("filename", "content_type", "size_display", "is_inline", "download")

    @admin.display(description="size")
    def size_display(self, obj: TicketAttachment) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="file")
    def download(self, obj: TicketAttachment) -> str:
        return _attachment_link(obj)


def _ticket_editable(ticket: Ticket | None) -> bool:
    # The services refuse changes to deleted and merged tickets; the page says so up front.
    return ticket is None or (ticket.deleted_at is None and ticket.merged_into_id is None)


class TicketTagInline(TenantTabularInline):
    """Edited as a set and saved with ``ticket_update(tags=...)``, so changes are history."""

    model = TicketTag
    fields = ("tag",)
    autocomplete_fields = ("tag",)
    verbose_name = "tag"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("tag")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _ticket_editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _ticket_editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _ticket_editable(obj) and super().has_delete_permission(request, obj)


class TicketEventInline(ReadOnlyMixin, TenantTabularInline):
    model = TicketEvent
    fields = readonly_fields = ("created_at", "kind", "field", "old_value", "new_value", "actor")
    verbose_name_plural = "history"

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("actor_agent__user", "actor_customer")

    @admin.display(description="by")
    def actor(self, obj: TicketEvent) -> str:
        return _actor_label(obj.actor_agent, obj.actor_customer, obj.get_actor_type_display())


# --- Tickets -------------------------------------------------------------------------------


class TicketStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("live", "Live"), ("merged", "Merged"), ("deleted", "Deleted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "live":
            return queryset.filter(deleted_at__isnull=True, merged_into__isnull=True)
        if self.value() == "merged":
            return queryset.filter(merged_into__isnull=False)
        if self.value() == "deleted":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


class TicketAddForm(TenantAdminForm):
    body = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text="The first message, posted as a public reply by you (or by the system when "
        "you are not an agent of that workspace).",
    )
    tag_names = forms.CharField(
        label="Tags", required=False, help_text="Comma-separated; missing tags are created."
    )

    class Meta:
        model = Ticket
        fields = (
            "workspace",
            "customer",
            "subject",
            "channel",
            "priority",
            "assignee",
            "team",
            "category",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].initial = TicketChannel.WEB


class TicketChangeForm(TenantAdminForm):
    def clean_subject(self) -> str:
        subject = " ".join(self.cleaned_data["subject"].split())
        if not subject:
            raise forms.ValidationError("A ticket needs a subject.")
        return subject


class ReassignForm(forms.Form):
    assignee = forms.ModelChoiceField(
        queryset=Agent.objects.none(), required=False, empty_label="— Nobody (unassign) —"
    )

    def __init__(self, *args: Any, workspace_id: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["assignee"]
        field.queryset = (
            Agent.objects.for_workspace(workspace_id)
            .filter(is_active=True)
            .select_related("user")
            .order_by("display_name", "user__name", "user__email")
        )
        field.label_from_instance = lambda agent: agent.name


@admin.register(Ticket)
class TicketAdmin(TenantAdmin):
    """Tickets can be added here: the add form calls ``ticket_create`` with a first message,
    like the agent UI. Editing goes through ``ticket_update``; customer, channel and mailbox
    are fixed once a ticket exists. Tickets are never hard-deleted here: use the soft-delete
    and restore actions (hard deletion would also erase the history)."""

    change_form = TicketChangeForm
    list_display = (
        "number_display",
        "subject",
        "status",
        "priority",
        "customer",
        "assignee",
        "team",
        "updated_at",
        "state",
        "workspace",
    )
    list_display_links = ("number_display", "subject")
    list_filter = (
        workspace_filter(),
        "status",
        "priority",
        "channel",
        TicketStateFilter,
        related_filter("assignee"),
        related_filter("team"),
        related_filter("category"),
    )
    list_select_related = ("workspace", "customer", "assignee__user", "team")
    search_fields = ("subject", "customer__email")
    search_help_text = (
        "A number (123 or #123) opens that ticket; words search the subject and the "
        "customer's email."
    )
    autocomplete_fields = ("customer", "assignee", "team", "category")
    # Counting every ticket of every workspace on each page load is not worth it.
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = (
        "close_tickets",
        "resolve_tickets",
        "reassign_tickets",
        "soft_delete_tickets",
        "restore_tickets",
    )
    inlines = (
        TicketBodyInline,
        CommentInline,
        TicketAttachmentInline,
        TicketTagInline,
        TicketEventInline,
    )
    fieldsets = (
        (None, {"fields": ("workspace", "number", "subject", "status", "priority")}),
        ("Assignment", {"fields": ("assignee", "team", "category")}),
        ("Origin", {"fields": ("customer", "company", "channel", "mailbox", "merged_into")}),
        (
            "Clocks",
            {
                "classes": ("collapse",),
                "fields": (
                    "created_at",
                    "updated_at",
                    "first_response_at",
                    "first_response_due_at",
                    "sla_due_at",
                    "last_customer_reply_at",
                    "last_agent_reply_at",
                    "resolved_at",
                    "closed_at",
                    "deleted_at",
                ),
            },
        ),
    )
    add_fieldsets = (
        (None, {"fields": ("workspace", "customer", "subject", "body", "channel", "priority")}),
        ("Assignment", {"fields": ("assignee", "team", "category", "tag_names")}),
    )
    readonly_on_change = (
        "number",
        "customer",
        "company",
        "channel",
        "mailbox",
        "merged_into",
        "created_at",
        "updated_at",
        "first_response_at",
        "first_response_due_at",
        "sla_due_at",
        "last_customer_reply_at",
        "last_agent_reply_at",
        "resolved_at",
        "closed_at",
        "deleted_at",
    )

    @admin.display(description="#", ordering="number")
    def number_display(self, obj: Ticket) -> str:
        return f"#{obj.number}"

    @admin.display(description="state")
    def state(self, obj: Ticket) -> str:
        if obj.deleted_at:
            return "deleted"
        if obj.merged_into_id:
            return "merged"
        return ""

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        by_number = _ticket_number_search(queryset, search_term, "number")
        if by_number is not None:
            return by_number, False
        return super().get_search_results(request, queryset, search_term)

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        kwargs["form"] = TicketAddForm if obj is None else self.change_form
        return super().get_form(request, obj, **kwargs)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = super().get_readonly_fields(request, obj)
        if obj is not None:
            readonly = [*readonly, *self.readonly_on_change]
        return readonly

    def get_inlines(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.inlines

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "assignee":
            # ticket_update refuses deactivated agents; so does the form, with a message.
            field.queryset = field.queryset.filter(is_active=True)
        return field

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return _ticket_editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Ticket, form: Any, change: bool) -> None:
        self.check_workspace(request, obj)
        actor = acting_actor(request, obj.workspace_id)
        data = form.cleaned_data
        if not change:
            ticket = ticket_create(
                workspace=data["workspace"],
                actor=actor,
                subject=data["subject"],
                customer=data["customer"],
                body_text=data["body"],
                channel=data["channel"],
                priority=data["priority"],
                assignee=data.get("assignee"),
                team=data.get("team"),
                category=data.get("category"),
                tags=[t for t in (data.get("tag_names") or "").split(",") if t.strip()],
            )
            copy_saved_state(ticket, obj)
            return
        changes = {name: data[name] for name in SERVICE_FIELDS if name in form.changed_data}
        if changes:
            ticket_update(ticket=obj, actor=actor, **changes)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not TicketTag:
            # The other inlines are read-only: nothing to save.
            return super().save_formset(request, form, formset, change)
        if formset.has_changed():
            ticket = form.instance
            ticket_update(
                ticket=ticket,
                actor=acting_actor(request, ticket.workspace_id),
                tags=[row["tag"].name for row in kept_rows(formset)],
            )
        mark_formset_saved(formset)
        return None

    # --- Actions ---

    def _apply(
        self,
        request: HttpRequest,
        queryset: QuerySet,
        verb: str,
        change: Callable[[Ticket, Actor], Any],
    ) -> None:
        """Run one service call per ticket, each in its own transaction; report results."""
        if queryset.count() > MAX_BULK_TICKETS:
            self.message_user(
                request, f"Select at most {MAX_BULK_TICKETS} tickets at a time.", messages.ERROR
            )
            return
        changed = unchanged = 0
        failed: list[str] = []
        for ticket in queryset.select_related(None).order_by("pk"):
            try:
                result = change(ticket, acting_actor(request, ticket.workspace_id))
            except EnqueError as exc:
                failed.append(f"#{ticket.number} ({ticket.workspace_id}): {exc.message}")
                continue
            if result == []:
                unchanged += 1
            else:
                changed += 1
        if changed:
            self.message_user(request, f"{verb} {changed} ticket(s).", messages.SUCCESS)
        if unchanged:
            self.message_user(request, f"{unchanged} ticket(s) needed no change.", messages.INFO)
        for line in failed:
            self.message_user(request, f"Not changed: {line}", messages.ERROR)

    @admin.action(description="Close selected tickets")
    def close_tickets(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request,
            queryset,
            "Closed",
            lambda t, actor: ticket_set_status(ticket=t, actor=actor, status=TicketStatus.CLOSED),
        )

    @admin.action(description="Resolve selected tickets")
    def resolve_tickets(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request,
            queryset,
            "Resolved",
            lambda t, actor: ticket_set_status(ticket=t, actor=actor, status=TicketStatus.RESOLVED),
        )

    @admin.action(description="Soft-delete selected tickets (restorable)")
    def soft_delete_tickets(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request,
            queryset.filter(deleted_at__isnull=True),
            "Deleted",
            lambda t, actor: ticket_delete(ticket=t, actor=actor),
        )

    @admin.action(description="Restore selected deleted tickets")
    def restore_tickets(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._apply(
            request,
            queryset.filter(deleted_at__isnull=False),
            "Restored",
            lambda t, actor: ticket_restore(ticket=t, actor=actor),
        )

    @admin.action(description="Reassign selected tickets…")
    def reassign_tickets(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        workspace_ids = list(
            queryset.order_by().values_list("workspace_id", flat=True).distinct()[:2]
        )
        if len(workspace_ids) != 1:
            self.message_user(
                request, "Select tickets of one workspace to reassign them.", messages.ERROR
            )
            return None
        if queryset.count() > MAX_BULK_TICKETS:
            self.message_user(
                request, f"Select at most {MAX_BULK_TICKETS} tickets at a time.", messages.ERROR
            )
            return None
        workspace_id = workspace_ids[0]
        acting_actor(request, workspace_id)  # refuses anyone who may not act there
        form = ReassignForm(
            request.POST if "apply" in request.POST else None, workspace_id=workspace_id
        )
        if form.is_bound and form.is_valid():
            assignee = form.cleaned_data["assignee"]
            self._apply(
                request,
                queryset,
                "Reassigned",
                lambda t, actor: ticket_assign(ticket=t, actor=actor, assignee=assignee),
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Reassign tickets",
            "subtitle": None,
            "opts": self.opts,
            "tickets": queryset.select_related("assignee__user").order_by("number"),
            "form": form,
            "action_name": "reassign_tickets",
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/tickets/ticket/reassign.html", context)


# --- The thread and history on their own pages ---------------------------------------------


@admin.register(TicketTag)
class TicketTagAdmin(ReadOnlyMixin, TenantAdmin):
    """Edit a ticket's tags on the ticket page (that path records history)."""

    list_display = ("ticket", "tag", "workspace", "created_at")
    list_filter = (workspace_filter(), related_filter("tag"))
    list_select_related = ("ticket", "tag", "workspace")
    show_full_result_count = False

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        by_number = _ticket_number_search(queryset, search_term, "ticket__number")
        if by_number is not None:
            return by_number, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(TicketBody)
class TicketBodyAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ("ticket", "workspace", "created_at")
    list_filter = (workspace_filter(),)
    list_select_related = ("ticket", "workspace")
    search_fields = ("=ticket__number",)
    show_full_result_count = False


@admin.register(Comment)
class CommentAdmin(ReadOnlyMixin, TenantAdmin):
    """The thread is written by the services only (replies, notes, mail)."""

    list_display = ("ticket", "author", "is_internal", "via", "created_at", "workspace")
    list_filter = (workspace_filter(), "is_internal", "via", "author_type")
    list_select_related = ("ticket", "workspace", "author_agent__user", "author_customer")
    search_fields = ("body_text",)
    search_help_text = "A number (123 or #123) lists that ticket's thread; words search the text."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="author")
    def author(self, obj: Comment) -> str:
        return _actor_label(obj.author_agent, obj.author_customer, obj.get_author_type_display())

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        by_number = _ticket_number_search(queryset, search_term, "ticket__number")
        if by_number is not None:
            return by_number, False
        return super().get_search_results(request, queryset, search_term)


@admin.register(ScheduledComment)
class ScheduledCommentAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = ("ticket", "author", "send_at", "status", "attempts", "is_internal", "workspace")
    list_filter = (workspace_filter(), "status", "is_internal")
    list_select_related = ("ticket", "author__user", "workspace")
    actions = ("cancel_scheduled",)
    show_full_result_count = False

    @admin.action(description="Cancel selected scheduled replies")
    def cancel_scheduled(self, request: HttpRequest, queryset: QuerySet) -> None:
        done, failed = 0, []
        for scheduled in queryset.filter(status=ScheduledCommentStatus.PENDING):
            try:
                scheduled_comment_cancel(
                    scheduled=scheduled, actor=acting_actor(request, scheduled.workspace_id)
                )
                done += 1
            except EnqueError as exc:
                failed.append(f"{scheduled}: {exc.message}")
        if done:
            self.message_user(request, f"Cancelled {done} scheduled reply(ies).", messages.SUCCESS)
        for line in failed:
            self.message_user(request, line, messages.ERROR)


@admin.register(TicketAttachment)
class TicketAttachmentAdmin(ReadOnlyMixin, TenantAdmin):
    list_display = (
        "filename",
        "content_type",
        "size_display",
        "ticket",
        "created_at",
        "download",
        "workspace",
    )
    list_filter = (workspace_filter(), "is_inline")
    list_select_related = ("ticket", "workspace")
    search_fields = ("filename", "=sha256")
    readonly_fields = ("download",)
    show_full_result_count = False

    @admin.display(description="size", ordering="size")
    def size_display(self, obj: TicketAttachment) -> str:
        return filesizeformat(obj.size)

    @admin.display(description="file")
    def download(self, obj: TicketAttachment) -> str:
        return _attachment_link(obj)

    def get_urls(self) -> list[Any]:
        opts = self.opts
        return [
            path(
                "<path:object_id>/download/",
                self.admin_site.admin_view(self.download_view),
                name=f"{opts.app_label}_{opts.model_name}_download",
            ),
            *super().get_urls(),
        ]

    def download_view(self, request: HttpRequest, object_id: str) -> FileResponse:
        attachment = self.get_object(request, unquote(object_id))
        if attachment is None or not self.has_view_permission(request, attachment):
            raise Http404("No such attachment.")
        try:
            handle = attachment.file.open("rb")
        except (FileNotFoundError, ValueError):
            raise Http404("The file is missing from storage.") from None
        # Always a download, never rendered inline: an attachment may be hostile HTML.
        return FileResponse(
            handle,
            as_attachment=True,
            filename=attachment.filename,
            content_type=attachment.content_type or "application/octet-stream",
        )


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyMixin, TenantAdmin):
    """History: read-only for everyone, superusers included."""

    list_display = (
        "created_at",
        "ticket",
        "kind",
        "field",
        "old_value",
        "new_value",
        "actor",
        "workspace",
    )
    list_filter = (workspace_filter(), "kind", "actor_type")
    list_select_related = ("ticket", "workspace", "actor_agent__user", "actor_customer")
    search_fields = ("field",)
    search_help_text = "A number (123 or #123) lists that ticket's history."
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER

    @admin.display(description="by")
    def actor(self, obj: TicketEvent) -> str:
        return _actor_label(obj.actor_agent, obj.actor_customer, obj.get_actor_type_display())

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> Any:
        by_number = _ticket_number_search(queryset, search_term, "ticket__number")
        if by_number is not None:
            return by_number, False
        return super().get_search_results(request, queryset, search_term)
