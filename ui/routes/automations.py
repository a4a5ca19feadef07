"""Settings pages for automations and workflows: the rule editor and its dry run."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
