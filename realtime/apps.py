from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "realtime"

    def ready(self) -> None:
        from realtime import log_filters
        from realtime.publish import publish
        from tickets import hooks

        # Ticket services announce changes through tickets.hooks; publish runs on commit.
        hooks.subscribe(publish)
        # Websocket handshakes carry ?token=…; the server's request lines must not.
        log_filters.install()
