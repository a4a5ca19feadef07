"""Everything under ``/v1``. Apps add their viewsets to ``router`` here, one line each, so
the whole API surface reads in one file:

    router.register("tickets", TicketViewSet, basename="ticket")

Paths have no trailing slash (``/v1/tickets/12``), as the original service's.
"""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.decorators import csp_update
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from automation.api.macros import MacroViewSet
from automation.api.notifications import NotificationPreferenceViewSet, NotificationViewSet
from automation.api.rules import AutomationViewSet, WorkflowViewSet
from automation.api.schedules import BusinessHoursViewSet, SLAPolicyViewSet, TicketSLAViewSet
from enque.api.errors import api_not_found
from integrations.api import MailboxViewSet
from integrations.microsoft import api as microsoft_mailboxes
from tickets.api.analytics import AnalyticsViewSet
from tickets.api.attachments import AttachmentViewSet
from tickets.api.export import TicketExportViewSet
from tickets.api.saved_views import SavedViewViewSet
from tickets.api.views import ScheduledCommentViewSet, TicketViewSet
from tickets.settings_api import CannedReplyViewSet, CategoryViewSet, TagViewSet
from workspaces.api import auth
from workspaces.api import microsoft as microsoft_signin
from workspaces.api.agents import AgentViewSet
from workspaces.api.workspaces import WorkspaceViewSet
from workspaces.people_api.agents import AgentViewSet as PeopleAgentViewSet
from workspaces.people_api.agents import TeamViewSet
from workspaces.people_api.customers import CompanyViewSet, CustomerViewSet
from workspaces.people_api.signatures import SignatureViewSet

# The API docs pages load Swagger UI / ReDoc from drf-spectacular's default CDN, with an
# inline style (and ReDoc an inline script, Google fonts and a blob: worker): the site's
# Content-Security-Policy (settings) is widened for these two pages only. They render the
# schema, never user content.
DOCS_CDN = "https://cdn.jsdelivr.net"
docs_csp = csp_update(
    {
        "script-src": [DOCS_CDN, UNSAFE_INLINE],
        "style-src": [DOCS_CDN, UNSAFE_INLINE, "https://fonts.googleapis.com"],
        "img-src": [DOCS_CDN],
        "font-src": ["https://fonts.gstatic.com"],
        "worker-src": ["blob:"],
    }
)

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
# Reports: /v1/analytics/overview, timeseries, heatmap, agents, teams (tickets.api.analytics).
router.register("analytics", AnalyticsViewSet, basename="analytics")
# Rules, SLA, macros and notifications (automation.api).
router.register("workflows", WorkflowViewSet, basename="workflow")
router.register("automations", AutomationViewSet, basename="automation")
router.register("business-hours", BusinessHoursViewSet, basename="business-hours")
router.register("sla-policies", SLAPolicyViewSet, basename="sla-policy")
router.register("macros", MacroViewSet, basename="macro")
router.register("notifications", NotificationViewSet, basename="notification")
# Mailboxes: IMAP/SMTP and Microsoft 365, sync state, sync now (integrations.api).
router.register("mailboxes", MailboxViewSet, basename="mailbox")

urlpatterns = [
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs",
        docs_csp(SpectacularSwaggerView.as_view(url_name="api-schema")),
        name="api-docs",
    ),
    path(
        "docs/redoc",
        docs_csp(SpectacularRedocView.as_view(url_name="api-schema")),
        name="api-redoc",
    ),
    *auth.urlpatterns,
    # Microsoft 365: sign-in and mailbox consent (before the router's mailboxes/<id>).
    *microsoft_signin.urlpatterns,
    *microsoft_mailboxes.urlpatterns,
    # Single objects, not lists (automation.api): their own routes.
    re_path(
        r"^tickets/(?P<number>[0-9]+)/sla$",
        TicketSLAViewSet.as_view({"get": "show"}),
        name="ticket-sla",
    ),
    path(
        "notification-preferences",
        NotificationPreferenceViewSet.as_view({"get": "show", "patch": "change"}),
        name="notification-preferences",
    ),
    *router.urls,
    # Keep last: any other /v1 path is a 404 in the error envelope.
    re_path(r"^(?P<path>.*)$", api_not_found, name="api-not-found"),
]
