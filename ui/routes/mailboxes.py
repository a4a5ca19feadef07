"""Settings pages for mailboxes: IMAP/SMTP, sync status, sync now."""

from django.urls import URLPattern, path

from ui.views import mailboxes

urlpatterns: list[URLPattern] = [
    path("settings/mailboxes", mailboxes.mailbox_list, name="settings_mailboxes"),
    path("settings/mailboxes/new", mailboxes.mailbox_new, name="settings_mailbox_new"),
    path("settings/mailboxes/<int:pk>", mailboxes.mailbox_detail, name="settings_mailbox"),
    path(
        "settings/mailboxes/<int:pk>/delete",
        mailboxes.mailbox_delete,
        name="settings_mailbox_delete",
    ),
    path("settings/mailboxes/<int:pk>/sync", mailboxes.mailbox_sync, name="settings_mailbox_sync"),
]
