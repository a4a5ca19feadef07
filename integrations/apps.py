from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"

    def ready(self) -> None:
        # Importing the module registers its Celery tasks (integrations.outbound.*, routed
        # to the mail_out queue); the listener mails public replies after their commit.
        from integrations import outbound
        from tickets import hooks

        hooks.subscribe(outbound.on_ticket_change)
