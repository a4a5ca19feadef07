"""Settings pages for mailboxes: IMAP/SMTP, sync status, sync now."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
