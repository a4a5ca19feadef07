"""Request body parsers for ``/v1``: JSON, with a size cap.

DRF reads a JSON body straight from the request stream, bypassing Django's
DATA_UPLOAD_MAX_MEMORY_SIZE check, so without this a client could make a process parse
any amount of JSON. Bodies over the cap (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default)
are refused with a 413 ``request_too_large`` before a byte is parsed. File uploads
(multipart) have their own cap, MAX_ATTACHMENT_SIZE, enforced by the attachments API.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework import parsers

from enque.api.errors import RequestTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        if limit is not None and request is not None:
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                raise RequestTooLarge()
        return super().parse(stream, media_type, parser_context)
