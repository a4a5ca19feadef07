"""``/v1`` endpoints for people: customers and companies (``customers``), agents and teams
(``agents``), signatures (``signatures``), with their serializers (``serializers``).
Routed by enque/api/urls.py; auth, workspaces and invitations live in ``workspaces.api``."""
