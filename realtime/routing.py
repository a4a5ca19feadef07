"""Websocket routes, mounted by ``enque/asgi.py`` under ``AuthMiddlewareStack``."""

from django.urls import re_path

from realtime.consumers import NotFoundConsumer, RealtimeConsumer

websocket_urlpatterns = [
    re_path(r"^(?:ws/)?realtime/?$", RealtimeConsumer.as_asgi()),
    # Anything else is refused at the handshake instead of raising "No route found".
    re_path(r"", NotFoundConsumer.as_asgi()),
]
