"""The agent UI's routes, mounted at the site root (enque/urls.py)."""

from django.urls import path

from ui.routes import analytics, automations, mailboxes, microsoft, settings
from ui.views import attachments, auth, inbox, people, ticket_new, tickets

app_name = "ui"

urlpatterns = [
    # Signing in and out (no agent_view: these are for visitors).
    path("login", auth.login_view, name="login"),
    path("logout", auth.logout_view, name="logout"),
    path("password-reset", auth.password_reset, name="password_reset"),
    # The link emailed by workspaces.services.password_reset_request (UI and API alike).
    path("password-reset/confirm", auth.password_reset_confirm, name="password_reset_confirm"),
    path("workspace/switch", auth.switch_workspace, name="switch_workspace"),
    # The inbox.
    path("", inbox.inbox, name="inbox"),
    path("inbox/counts", inbox.inbox_counts, name="inbox_counts"),
    path("tickets/bulk", inbox.bulk, name="bulk"),
    path("views", inbox.saved_view_create, name="saved_view_create"),
    path("views/<int:pk>/delete", inbox.saved_view_delete, name="saved_view_delete"),
    # A ticket.
    path("tickets/new", ticket_new.ticket_new, name="ticket_new"),
    path("tickets/new/customers", ticket_new.customer_suggestions, name="ticket_new_customers"),
    path("tickets/deleted", ticket_new.deleted_tickets, name="tickets_deleted"),
    path("tickets/<int:number>", tickets.ticket_page, name="ticket"),
    path("tickets/<int:number>/live", tickets.ticket_live, name="ticket_live"),
    path("tickets/<int:number>/reply", tickets.ticket_reply, name="ticket_reply"),
    path("tickets/<int:number>/update", tickets.ticket_update, name="ticket_update"),
    path("tickets/<int:number>/tags", tickets.ticket_tags, name="ticket_tags"),
    path("tickets/<int:number>/merge", tickets.ticket_merge, name="ticket_merge"),
    path("tickets/<int:number>/subject", tickets.ticket_subject, name="ticket_subject"),
    path("tickets/<int:number>/delete", tickets.ticket_delete, name="ticket_delete"),
    path("tickets/<int:number>/restore", tickets.ticket_restore, name="ticket_restore"),
    path("tickets/<int:number>/canned/<int:pk>", tickets.canned_render, name="canned_render"),
    path("scheduled/<int:pk>/cancel", tickets.scheduled_cancel, name="scheduled_cancel"),
    # Attachments.
    path("attachments", attachments.upload, name="attachment_upload"),
    path("attachments/<int:pk>", attachments.download, name="attachment_download"),
    path("attachments/<int:pk>/inline", attachments.inline, name="attachment_inline"),
    # Customers and companies.
    path("customers", people.customer_list, name="customers"),
    path("customers/new", people.customer_new, name="customer_new"),
    path("customers/<int:pk>", people.customer_detail, name="customer"),
    path("companies", people.company_list, name="companies"),
    path("companies/new", people.company_new, name="company_new"),
    path("companies/<int:pk>", people.company_detail, name="company"),
]

# Each area of the UI owns its routes' module (ui/routes/), all in the "ui" namespace.
urlpatterns += [
    *settings.urlpatterns,
    *automations.urlpatterns,
    *mailboxes.urlpatterns,
    *microsoft.urlpatterns,
    *analytics.urlpatterns,
]
