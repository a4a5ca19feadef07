from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from enque import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    # Until the agent UI lands, the admin is the way in.
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
]
