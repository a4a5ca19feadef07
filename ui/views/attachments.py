"""Uploading files for a reply, and reading the files of tickets, with the session.

An upload goes through ``attachment_upload`` (size cap, sanitised name, sniffed type) and
answers its id, which the reply form then sends in ``attachment_ids``. Reading reuses the
API's answer shape: a download is always ``Content-Disposition: attachment`` with
``nosniff`` and a sandboxing CSP; only raster images (by their sniffed type) are also
served inline, for the ``<img>`` of an email's inline pictures. On S3 both are redirects
to a short-lived signed URL.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseRedirect,
    JsonResponse,
)
from django.template.defaultfilters import filesizeformat
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_POST

from enque.errors import EnqueError
from tickets import selectors, services
from tickets.actors import Actor
from tickets.api.attachments import (
    MULTIPART_OVERHEAD,
    SizeLimitUploadHandler,
    _protect,
    content_disposition,
)
from tickets.models import TicketAttachment
from ui.session import agent_view
from ui.thread import INLINE_IMAGE_TYPES, attachment_url

# Files one reply may carry in its own body (the form's "Attach" without JavaScript).
MAX_FILES_PER_REQUEST = 10


def size_limited_upload(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Refuse an oversized upload as early as the API does (tickets/api/attachments.py):
    from Content-Length before the body is read, then by an upload handler while it streams
    in — not after Django has spooled a gigabyte to a temporary file.

    The handler must be in place before anything reads ``request.POST``, and the CSRF check
    is such a reader: hence csrf_exempt outside, with the very same check (csrf_protect)
    applied inside, after the handler is installed.
    """
    protected = csrf_protect(view)

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limit = settings.MAX_ATTACHMENT_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > limit * MAX_FILES_PER_REQUEST + MULTIPART_OVERHEAD:
            return _too_large()
        request.upload_handlers.insert(0, SizeLimitUploadHandler(request))
        try:
            return protected(request, *args, **kwargs)
        except services.AttachmentTooLarge:
            return _too_large()

    return wrapper


def _too_large() -> HttpResponse:
    limit = filesizeformat(settings.MAX_ATTACHMENT_SIZE).replace("\xa0", " ")
    return JsonResponse({"error": f"A file is larger than the limit of {limit}."}, status=413)


@size_limited_upload
@require_POST
@agent_view
def upload(request: HttpRequest) -> HttpResponse:
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "Choose a file."}, status=400)
    try:
        attachment = services.attachment_upload(
            workspace=request.workspace, actor=Actor.for_agent(request.agent), file=upload
        )
    except EnqueError as exc:
        return JsonResponse({"error": exc.message}, status=exc.status_code)
    return JsonResponse(
        {
            "id": attachment.pk,
            "filename": attachment.filename,
            "size": attachment.size,
            "size_label": filesizeformat(attachment.size),
            "content_type": attachment.content_type,
            "url": attachment_url(attachment),
        },
        status=201,
    )


def _attachment(request: HttpRequest, pk: int) -> TicketAttachment:
    attachment = selectors.attachment_list(workspace=request.workspace).filter(pk=pk).first()
    if attachment is None:
        raise Http404
    return attachment


def _serve(attachment: TicketAttachment, *, inline: bool) -> HttpResponseBase:
    disposition = content_disposition(attachment.filename)
    if inline:
        disposition = "inline" + disposition[len("attachment") :]
    storage = attachment.file.storage
    if getattr(storage, "querystring_auth", False):
        parameters: dict[str, Any] = {
            "ResponseContentDisposition": disposition,
            "ResponseContentType": attachment.content_type,
        }
        return _protect(
            HttpResponseRedirect(storage.url(attachment.file.name, parameters=parameters))
        )
    try:
        handle = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404 from None
    response = FileResponse(handle, content_type=attachment.content_type)
    response["Content-Disposition"] = disposition
    return _protect(response)


@require_GET
@agent_view
def download(request: HttpRequest, pk: int) -> HttpResponseBase:
    return _serve(_attachment(request, pk), inline=False)


@require_GET
@agent_view
def inline(request: HttpRequest, pk: int) -> HttpResponseBase:
    attachment = _attachment(request, pk)
    return _serve(attachment, inline=attachment.content_type in INLINE_IMAGE_TYPES)
