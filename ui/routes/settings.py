"""Settings pages (admins): workspace, agents, teams, categories, tags, canned replies, SLA."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
