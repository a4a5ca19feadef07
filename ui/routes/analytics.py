"""The analytics dashboard and its CSV downloads."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
