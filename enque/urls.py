from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from enque import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # The REST API (enque/api/urls.py): every app's viewsets, the schema and the docs.
    path("v1/", include("enque.api.urls")),
    # Until the agent UI lands, the admin is the way in.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]

# Requests under /v1/ that no view answers still get the JSON error envelope; every other
# path keeps Django's HTML pages.
handler400 = "enque.api.errors.handler400"
handler403 = "enque.api.errors.handler403"
handler404 = "enque.api.errors.handler404"
handler500 = "enque.api.errors.handler500"
