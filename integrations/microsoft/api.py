"""``/v1/mailboxes/microsoft/*``: an admin connects a Microsoft 365 mailbox.

``authorize`` (admin, with the JWT) answers Microsoft's consent URL and sets an HttpOnly
cookie binding the flow to the admin's browser. Microsoft redirects that browser to
``callback``, which needs no token: the flow — kept server-side under its single-use
``state`` — names the workspace and admin, and the cookie proves it is the same browser.
(A caller that does send its token there must be that same admin.) Connecting an address
again renews its grant and clears "reconnect needed".
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.permissions import IsAdminRole, IsWorkspaceMember, request_agent
from enque.api.viewsets import EnqueAPIView
from integrations.microsoft import config, oauth
from integrations.microsoft.callbacks import (
    BINDING_COOKIE,
    CallbackQuery,
    auth_response,
    binding_cookie,
    set_binding_cookie,
)
from integrations.microsoft.mailboxes import mailbox_connect_finish, mailbox_connect_start
from integrations.models import MailboxProvider, SyncStatus


class AuthorizeQuery(serializers.Serializer):
    email_address = serializers.EmailField(max_length=254)
    shared = serializers.BooleanField(
        required=False, default=False, help_text="A shared mailbox, reached as /users/{address}."
    )
    integration = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The workspace's Microsoft app to use; the server's default app if omitted.",
    )


class MailboxAuthorizationOutput(serializers.Serializer):
    authorization_url = serializers.URLField(help_text="Send the admin's browser here.")
    state = serializers.CharField(help_text="Comes back on the callback; works once.")


class ConnectedMailboxOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email_address = serializers.EmailField()
    provider = serializers.ChoiceField(choices=MailboxProvider.choices)
    is_shared_mailbox = serializers.BooleanField()
    sync_status = serializers.ChoiceField(choices=SyncStatus.choices)


class MicrosoftMailboxAuthorizeView(EnqueAPIView):
    permission_classes = (IsWorkspaceMember, IsAdminRole)
    query_serializer_class = AuthorizeQuery
    output_serializer_class = MailboxAuthorizationOutput

    @extend_schema(
        summary="Start connecting a Microsoft 365 mailbox",
        description="Admins only. Delegated consent for Mail.ReadWrite, Mail.Send and "
        "offline access; the answer's URL is where the admin signs in (for a shared "
        "mailbox: as a delegate with Full Access and Send As).",
    )
    def get(self, request: Request) -> Response:
        query = self.query
        binding = oauth.new_binding()
        url, state = mailbox_connect_start(
            workspace=request.workspace,
            actor=request.agent,
            email_address=query["email_address"],
            is_shared_mailbox=query["shared"],
            integration_id=query.get("integration"),
            redirect_uri=config.redirect_uri(config.API_MAILBOX_CALLBACK),
            binding=binding,
        )
        response = self.output({"authorization_url": url, "state": state})
        set_binding_cookie(response, binding, path=config.API_MAILBOX_CALLBACK)
        return response


class MicrosoftMailboxCallbackView(EnqueAPIView):
    permission_classes = (AllowAny,)
    query_serializer_class = CallbackQuery
    output_serializer_class = ConnectedMailboxOutput

    @extend_schema(
        summary="Finish connecting a Microsoft 365 mailbox",
        description="Microsoft redirects here. A bad, expired or replayed `state` is a 400 "
        "`invalid_state`; a consent Microsoft refused is a 400 `microsoft_error`.",
    )
    def get(self, request: Request) -> Response:
        query = self.query
        mailbox = mailbox_connect_finish(
            state=query["state"],
            binding=binding_cookie(request._request),
            auth_response=auth_response(query),
            actor=request_agent(request),
        )
        response = self.output(mailbox)
        response.delete_cookie(BINDING_COOKIE, path=config.API_MAILBOX_CALLBACK)
        return response


urlpatterns = [
    path(
        "mailboxes/microsoft/authorize",
        MicrosoftMailboxAuthorizeView.as_view(),
        name="mailbox-microsoft-authorize",
    ),
    path(
        "mailboxes/microsoft/callback",
        MicrosoftMailboxCallbackView.as_view(),
        name="mailbox-microsoft-callback",
    ),
]
