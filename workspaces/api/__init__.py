"""``/v1`` endpoints of the workspaces app: auth (``auth``), workspaces (``workspaces``) and
agents (``agents``), with their serializers (``serializers``). Routed by enque/api/urls.py."""
