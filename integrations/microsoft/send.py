"""Sending a complete RFC 5322 message through Microsoft Graph.

Graph's JSON ``sendMail`` cannot carry ``In-Reply-To``/``References`` or our Message-ID, so
the MIME goes as it is, base64-encoded with ``Content-Type: text/plain``. A MIME body is
limited to about 4 MB; attachments larger than that travel apart: the message becomes a
draft, each attachment is uploaded through an upload session in chunks, and the draft is
sent.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator, Sequence
from urllib.parse import urlsplit

import requests

from integrations.errors import MailError, PermanentMailError, TransientMailError
from integrations.microsoft.graph import TIMEOUT, GraphClient
from integrations.models import MailboxConnection
from tickets.models import TicketAttachment

logger = logging.getLogger(__name__)

# Upload sessions take byte ranges in multiples of 320 KiB, at most 4 MB per request.
CHUNK_UNIT = 320 * 1024
CHUNK_SIZE = 10 * CHUNK_UNIT
MIME_HEADERS = {"Content-Type": "text/plain"}


def send_mime(
    mailbox: MailboxConnection,
    mime: bytes,
    large_attachments: Sequence[TicketAttachment] = (),
) -> str:
    """Send ``mime`` from ``mailbox``; return Graph's message id when it gives one, else "".

    Raises ReconnectNeeded, TransientMailError or PermanentMailError.
    """
    client = GraphClient(mailbox)
    body = base64.b64encode(bytes(mime))
    if not large_attachments:
        client.post(client.url("/sendMail"), data=body, headers=MIME_HEADERS)
        return ""

    draft = client.post(client.url("/messages"), data=body, headers=MIME_HEADERS).json()
    draft_id = str(draft.get("id") or "")
    if not draft_id:
        raise PermanentMailError("Microsoft Graph created the draft without an id.")
    message_path = client.message_path(draft_id)
    try:
        for attachment in large_attachments:
            _upload(client, message_path, attachment)
        client.post(client.url(f"{message_path}/send"))
    except MailError:
        # The next attempt starts from a new draft: do not leave this one in Drafts.
        _discard_draft(client, message_path)
        raise
    return draft_id


def _chunks(attachment: TicketAttachment) -> Iterator[bytes]:
    with attachment.file.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def _upload(client: GraphClient, message_path: str, attachment: TicketAttachment) -> None:
    size = attachment.size or attachment.file.size
    session = client.post(
        client.url(f"{message_path}/attachments/createUploadSession"),
        json={
            "AttachmentItem": {
                "attachmentType": "file",
                "name": attachment.filename,
                "size": size,
                "contentType": attachment.content_type or "application/octet-stream",
            }
        },
    ).json()
    upload_url = str(session.get("uploadUrl") or "")
    if urlsplit(upload_url).scheme != "https":
        raise PermanentMailError("Microsoft Graph returned no usable upload URL.")
    start = 0
    for chunk in _chunks(attachment):
        end = start + len(chunk) - 1
        # The upload URL carries its own credential: no Authorization header (Graph's
        # documentation says sending one makes the PUT fail).
        try:
            response = requests.put(
                upload_url,
                data=chunk,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(chunk)),
                    "Content-Range": f"bytes {start}-{end}/{size}",
                },
                timeout=TIMEOUT,
            )
        except requests.RequestException as exc:
            raise TransientMailError(f"Uploading {attachment.filename} failed: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientMailError(
                f"Uploading {attachment.filename} failed (HTTP {response.status_code})."
            )
        if response.status_code >= 400:
            raise PermanentMailError(
                f"Microsoft refused the attachment {attachment.filename} "
                f"(HTTP {response.status_code}): {response.text[:200]}"
            )
        start = end + 1
    if start != size:
        raise PermanentMailError(
            f"The attachment {attachment.filename} has {start} bytes, not the {size} recorded."
        )


def _discard_draft(client: GraphClient, message_path: str) -> None:
    try:
        client.request("DELETE", client.url(message_path))
    except MailError:
        logger.warning("could not delete the unsent Graph draft", exc_info=True)
