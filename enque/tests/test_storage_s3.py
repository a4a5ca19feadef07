"""Attachments on S3-compatible storage, against moto's S3 server (a real HTTP endpoint).

Upload through the API -> a private object in the bucket with the sniffed type and the
size; download -> 302 to a signed URL that fetches the bytes and carries its expiry.
Alice is an admin of workspace A, Bob an agent there, Charlie the admin of workspace B.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from enque.storage import PrivateS3Storage
from enque.testing import S3Server
from tickets.models import TicketAttachment
from workspaces.models import Agent

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8
GZIP = b"\x1f\x8b\x08\x00" + b"\x00" * 60


def upload(api: APIClient, data: bytes, name: str, claimed: str) -> dict[str, Any]:
    file = SimpleUploadedFile(name, data, content_type=claimed)
    response = api.post("/v1/attachments", {"file": file}, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_the_bucket_is_the_default_storage(s3_bucket: str) -> None:
    assert isinstance(default_storage, PrivateS3Storage)
    assert default_storage.bucket_name == s3_bucket


def test_an_upload_lands_in_the_bucket_with_its_type_and_size(
    client_for: Any, bob: Agent, s3_bucket: str, moto_s3: S3Server
) -> None:
    body = upload(client_for(bob), PNG, "screenshot.png", claimed="text/html")

    attachment = TicketAttachment.objects.get(pk=body["id"])
    head = moto_s3.client().head_object(Bucket=s3_bucket, Key=attachment.file.name)
    # The type sniffed from the bytes, not the client's "text/html".
    assert head["ContentType"] == "image/png" == body["content_type"]
    assert head["ContentLength"] == len(PNG) == body["size"]
    assert attachment.file.name.startswith(f"attachments/{bob.workspace_id}/")


def test_objects_are_private(
    client_for: Any, bob: Agent, s3_bucket: str, moto_s3: S3Server
) -> None:
    body = upload(client_for(bob), PNG, "screenshot.png", claimed="image/png")
    key = TicketAttachment.objects.get(pk=body["id"]).file.name

    grants = moto_s3.client().get_object_acl(Bucket=s3_bucket, Key=key)["Grants"]
    # Only the owner: no AllUsers / AuthenticatedUsers grant.
    assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
    assert all(grant["Grantee"]["Type"] == "CanonicalUser" for grant in grants)
    unsigned = requests.get(f"{moto_s3.endpoint_url}/{s3_bucket}/{key}", timeout=10)
    assert unsigned.status_code == 403


def test_a_compressed_file_is_stored_as_is_without_a_content_encoding(
    client_for: Any, bob: Agent, s3_bucket: str, moto_s3: S3Server
) -> None:
    # django-storages would guess "Content-Encoding: gzip" from the name, and browsers
    # would then unpack the customer's logs.tar.gz on download.
    body = upload(client_for(bob), GZIP, "logs.tar.gz", claimed="application/gzip")

    key = TicketAttachment.objects.get(pk=body["id"]).file.name
    head = moto_s3.client().head_object(Bucket=s3_bucket, Key=key)
    assert "ContentEncoding" not in head
    assert head["ContentLength"] == len(GZIP)


def test_download_redirects_to_a_short_lived_signed_url_that_fetches_the_bytes(
    client_for: Any, bob: Agent, s3_bucket: str, moto_s3: S3Server, settings: Any
) -> None:
    api = client_for(bob)
    body = upload(api, PNG, "screen shot.png", claimed="image/png")
    expire = settings.STORAGES["default"]["OPTIONS"]["querystring_expire"]

    response = api.get(f"/v1/attachments/{body['id']}/download")

    assert response.status_code == 302
    assert response["Cache-Control"] == "private, no-store"
    url = response["Location"]
    assert url.startswith(f"{moto_s3.endpoint_url}/{s3_bucket}/attachments/")
    fetched = requests.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == PNG
    assert fetched.headers["Content-Type"] == "image/png"
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="screen')
    # moto does not enforce expiry; S3, R2 and MinIO refuse the URL once X-Amz-Date +
    # X-Amz-Expires has passed. Both are part of the signature.
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == [str(expire)]
    assert expire <= 300
    signed_at = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.UTC
    )
    assert abs((dt.datetime.now(dt.UTC) - signed_at).total_seconds()) < 60
    assert "host" in query["X-Amz-SignedHeaders"][0]


def test_charlie_gets_404_for_an_attachment_of_workspace_a(
    client_for: Any, bob: Agent, charlie: Agent, s3_bucket: str
) -> None:
    body = upload(client_for(bob), PNG, "screenshot.png", claimed="image/png")

    response = client_for(charlie).get(f"/v1/attachments/{body['id']}/download")

    assert response.status_code == 404
    assert "Location" not in response


def test_the_storage_keeps_a_type_set_by_the_caller_and_guesses_otherwise(
    s3_bucket: str, moto_s3: S3Server
) -> None:
    typed = ContentFile(b"{}", name="data.bin")
    typed.content_type = "application/json"
    untyped = ContentFile(b"%PDF-1.7", name="report.pdf")

    typed_key = default_storage.save("x/data.bin", typed)
    untyped_key = default_storage.save("x/report.pdf", untyped)

    client = moto_s3.client()
    assert client.head_object(Bucket=s3_bucket, Key=typed_key)["ContentType"] == (
        "application/json"
    )
    assert client.head_object(Bucket=s3_bucket, Key=untyped_key)["ContentType"] == (
        "application/pdf"
    )
