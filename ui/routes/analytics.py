"""The analytics dashboard and its CSV downloads."""

from django.urls import URLPattern, path

from ui.views import analytics

urlpatterns: list[URLPattern] = [
    path("dashboard", analytics.dashboard, name="dashboard"),
    # One fixed path per download (no path parameter: nothing here names an object); the
    # agent and team tables are for owners and admins.
    *(
        path(
            f"dashboard/{report}.csv",
            analytics.dashboard_csv,
            {"report": report},
            name=f"dashboard_csv_{report}",
        )
        for report in analytics.CSV_REPORTS
    ),
]
