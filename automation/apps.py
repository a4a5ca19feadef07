from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"

    def ready(self) -> None:
        from automation import engine, notifications, sla
        from tickets import hooks

        # After commit, in this order: due times first (rules may test them), then the
        # rules, then notifications (which then see what the rules changed).
        hooks.subscribe(sla.on_ticket_change)
        hooks.subscribe(engine.on_ticket_change)
        hooks.subscribe(notifications.on_ticket_change)
