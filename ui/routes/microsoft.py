"""Microsoft 365: "Sign in with Microsoft" and connecting a mailbox (OAuth callbacks)."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
