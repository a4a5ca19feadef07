"""``/v1/attachments``: upload a file ahead of a ticket or reply, read its metadata, download it.

Uploads are ``multipart/form-data`` with one ``file`` part. The size cap
(``settings.MAX_ATTACHMENT_SIZE``) is enforced three times, each as early as it can be:
from ``Content-Length`` before the body is read at all, by an upload handler while the body
streams in (a chunked request has no length), and by ``attachment_upload`` while it hashes
the file. Over the cap: 413 in the error envelope.

Downloads are always ``Content-Disposition: attachment`` with the stored (sniffed) type and
``nosniff``: a file never renders in our origin. On S3 the answer is a redirect to a signed
URL valid for ``AWS_QUERYSTRING_EXPIRE`` seconds (the storage's setting, 5 minutes by
default) rather than bytes proxied through the web process.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler
from django.db.models import QuerySet
from django.http import FileResponse, HttpResponseBase, HttpResponseRedirect
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import status
from rest_framework.decorators import action
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from enque.api.viewsets import WorkspaceScopedViewSet
from enque.errors import NotFound
from tickets import selectors, services
from tickets.actors import Actor
from tickets.api.serializers import AttachmentOutput, AttachmentUploadInput
from tickets.models import TicketAttachment
from workspaces.models import Workspace

# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def too_large() -> services.AttachmentTooLarge:
    return services.AttachmentTooLarge(
        f"The file is larger than the limit of {settings.MAX_ATTACHMENT_SIZE} bytes.",
        field="file",
    )


class SizeLimitUploadHandler(FileUploadHandler):
    """Stops a multipart upload as soon as a file passes the cap (first in the chain)."""

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        if start + len(raw_data) > settings.MAX_ATTACHMENT_SIZE:
            raise too_large()
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the exact name as an
    RFC 5987 ``filename*``."""
    fallback = filename.encode("ascii", "replace").decode("ascii").replace("?", "_")
    fallback = fallback.replace("\\", "_").replace('"', "_")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _protect(response: HttpResponseBase) -> HttpResponseBase:
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


@extend_schema_view(retrieve=extend_schema(summary="An attachment's metadata"))
class AttachmentViewSet(WorkspaceScopedViewSet):
    model = TicketAttachment
    http_method_names = ["get", "post", "head", "options"]
    input_serializer_class = AttachmentUploadInput
    output_serializer_class = AttachmentOutput
    # The one body this viewset takes is an upload (GETs parse nothing).
    parser_classes = [MultiPartParser]
    # Light agents attach files to their internal notes.
    light_agent_actions = frozenset({"create"})

    def get_workspace_queryset(self, workspace: Workspace) -> QuerySet[TicketAttachment]:
        return selectors.attachment_list(workspace=workspace)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if self.action == "create":
            # Refuse an oversized body before anything reads it (authentication included:
            # reading is what costs).
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > settings.MAX_ATTACHMENT_SIZE + MULTIPART_OVERHEAD:
                raise too_large()
            request.upload_handlers.insert(0, SizeLimitUploadHandler(request._request))
        super().initial(request, *args, **kwargs)

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        # A download is bytes, whatever the client's Accept says.
        return super().perform_content_negotiation(
            request, force=force or self.action == "download"
        )

    @extend_schema(
        summary="Upload a file",
        description="multipart/form-data with a `file` part. The answer's `id` goes into a "
        "ticket's or reply's `attachment_ids`. The name is sanitised; the content type is "
        "sniffed from the bytes (the client's claim is ignored). 413 over the size limit.",
        request={"multipart/form-data": AttachmentUploadInput},
        responses={201: AttachmentOutput},
    )
    def create(self, request: Request) -> Response:
        data = self.validated_input()
        attachment = services.attachment_upload(
            workspace=self.workspace, actor=Actor.for_agent(self.agent), file=data["file"]
        )
        attachment.ticket_number = None  # a new upload is on no ticket yet
        return self.output(attachment, status=status.HTTP_201_CREATED)

    def retrieve(self, request: Request, pk: str) -> Response:
        return self.output(self.get_object())

    @extend_schema(
        summary="Download an attachment",
        description="The bytes (as an attachment, never rendered inline), or on S3 a 302 to "
        "a short-lived signed URL.",
        responses={
            # The stored (sniffed) type of the file: image/png, application/pdf, ...
            (200, "*/*"): OpenApiResponse(
                OpenApiTypes.BINARY, description="The file, with its own content type."
            ),
            302: OpenApiResponse(description="Redirect to a signed storage URL (S3)."),
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> HttpResponseBase:
        attachment = self.get_object()
        disposition = content_disposition(attachment.filename)
        storage = attachment.file.storage
        if getattr(storage, "querystring_auth", False):
            url = storage.url(
                attachment.file.name,
                parameters={
                    "ResponseContentDisposition": disposition,
                    "ResponseContentType": attachment.content_type,
                },
            )
            return _protect(HttpResponseRedirect(url))
        try:
            handle = attachment.file.open("rb")
        except FileNotFoundError:
            raise NotFound("The file of this attachment is missing.") from None
        response = FileResponse(handle, content_type=attachment.content_type)
        response["Content-Disposition"] = disposition
        return _protect(response)
