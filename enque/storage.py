"""File storage on S3-compatible services (AWS S3, Cloudflare R2, MinIO).

django-storages' ``S3Storage`` with one correction, selected by settings when
``AWS_STORAGE_BUCKET_NAME`` is set. Objects are private (no public URL works) and handed out
through signed URLs that expire after ``AWS_QUERYSTRING_EXPIRE`` seconds.
"""

from __future__ import annotations

from typing import Any

from storages.backends.s3 import S3Storage


class PrivateS3Storage(S3Storage):
    """Stores the bytes exactly as received, typed with the type Enque decided.

    django-storages guesses ``ContentEncoding`` from the file name, so ``logs.tar.gz``
    would be stored as ``Content-Encoding: gzip`` and a browser would silently unpack it
    on download. An attachment is never transfer-encoded: the encoding is dropped.
    ``ContentType`` comes from ``content.content_type`` when the caller set it (the
    attachment service sets the type it sniffed from the bytes), else from the name.
    """

    def _get_write_parameters(self, name: str, content: Any = None) -> dict[str, Any]:
        params = super()._get_write_parameters(name, content)
        if "ContentEncoding" not in self.object_parameters:
            params.pop("ContentEncoding", None)
        return params
