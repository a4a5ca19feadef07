from django.contrib import admin
from django.urls import include, path

from enque import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # The REST API (enque/api/urls.py): every app's viewsets, the schema and the docs.
    path("v1/", include("enque.api.urls")),
    # The agent UI (ui/urls.py): sign-in, inbox, tickets, customers and companies.
    path("", include("ui.urls")),
]

# Requests under /v1/ that no view answers still get the JSON error envelope; every other
# path keeps Django's HTML pages.
handler400 = "enque.api.errors.handler400"
handler403 = "enque.api.errors.handler403"
handler404 = "enque.api.errors.handler404"
handler500 = "enque.api.errors.handler500"
