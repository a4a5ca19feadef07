from django.apps import AppConfig


class UiConfig(AppConfig):
    """The agent UI: server-rendered pages (templates/ui/) enhanced with htmx (static/)."""

    name = "ui"
    verbose_name = "Agent UI"

    def ready(self) -> None:
        from ui.panel import connect_signals

        connect_signals()
