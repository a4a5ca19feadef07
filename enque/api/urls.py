"""Everything under ``/v1``. Apps add their viewsets to ``router`` here, one line each, so
the whole API surface reads in one file:

    router.register("tickets", TicketViewSet, basename="ticket")

Paths have no trailing slash (``/v1/tickets/12``), as the original service's.
"""

from __future__ import annotations

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from enque.api.errors import api_not_found
from tickets.api.attachments import AttachmentViewSet
from tickets.api.export import TicketExportViewSet
from tickets.api.saved_views import SavedViewViewSet
from tickets.api.views import ScheduledCommentViewSet, TicketViewSet
from tickets.settings_api import CannedReplyViewSet, CategoryViewSet, TagViewSet
from workspaces.api import auth
from workspaces.api.agents import AgentViewSet
from workspaces.api.workspaces import WorkspaceViewSet
from workspaces.people_api.agents import AgentViewSet as PeopleAgentViewSet
from workspaces.people_api.agents import TeamViewSet
from workspaces.people_api.customers import CompanyViewSet, CustomerViewSet
from workspaces.people_api.signatures import SignatureViewSet

router = SimpleRouter(trailing_slash=False)
router.register("workspaces", WorkspaceViewSet, basename="workspace")
router.register("agents", AgentViewSet, basename="agent")
# People and settings (workspaces.people_api, tickets.settings_api). The agents list, role
# changes and (de)activation share the "agents" prefix with the invitation above.
router.register("agents", PeopleAgentViewSet, basename="people-agent")
router.register("teams", TeamViewSet, basename="team")
router.register("customers", CustomerViewSet, basename="customer")
router.register("companies", CompanyViewSet, basename="company")
router.register("signatures", SignatureViewSet, basename="signature")
router.register("categories", CategoryViewSet, basename="category")
router.register("tags", TagViewSet, basename="tag")
router.register("canned-replies", CannedReplyViewSet, basename="canned-reply")
# Tickets, their thread, saved views, the export stream and attachments (tickets.api).
router.register("tickets", TicketViewSet, basename="ticket")
router.register("scheduled-comments", ScheduledCommentViewSet, basename="scheduled-comment")
router.register("views", SavedViewViewSet, basename="saved-view")
router.register("export", TicketExportViewSet, basename="export")
router.register("attachments", AttachmentViewSet, basename="attachment")

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("docs/redoc", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    *auth.urlpatterns,
    *router.urls,
    # Keep last: any other /v1 path is a 404 in the error envelope.
    re_path(r"^(?P<path>.*)$", api_not_found, name="api-not-found"),
]
